"""`manage.py sandbox_space` serves a seeded sandbox until SIGTERM, on loopback only."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[1]


def test_command_serves_until_sigterm_and_never_prints_the_token():
    token = "command-test-token-5d1e"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings_test", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox_space",
            "--port",
            "0",
            "--project-id",
            "cmd-project",
            "--api-token",
            token,
            "--seed-conferences",
            "7",
            "--seed-rooms",
            "3",
            "--seed-sessions",
            "40",
            "--live-sessions",
            "2",
            "--seed",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line + process.stderr.read()
        assert "7 conferences" in line and "3 rooms" in line and "42 sessions (2 live)" in line
        url = match.group(1)
        live = requests.get(
            f"{url}/api/video/room_sessions?status=in-progress",
            auth=("cmd-project", token),
            timeout=5,
        )
        assert len(live.json()["data"]) == 2
        listing = requests.get(
            f"{url}/api/video/conferences", auth=("cmd-project", token), timeout=5
        )
        assert listing.status_code == 200 and len(listing.json()["data"]) == 7
        assert requests.get(f"{url}/api/video/rooms", timeout=5).status_code == 401
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert token not in line + out + err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_command_refuses_remote_hosts(host):
    with pytest.raises(CommandError, match="--allow-remote"):
        call_command("sandbox_space", "--host", host, "--port", "0")


def test_command_requires_credentials(settings):
    settings.SIGNALWIRE_API_TOKEN = ""
    with pytest.raises(CommandError, match="API token"):
        call_command("sandbox_space", "--port", "0")


def test_command_needs_rooms_for_live_sessions():
    with pytest.raises(CommandError, match="needs as many seeded rooms"):
        call_command("sandbox_space", "--port", "0", "--live-sessions", "1")


def _conferences(url: str, auth: tuple[str, str]) -> dict[str, dict]:
    response = requests.get(f"{url}/api/video/conferences?page_size=100", auth=auth, timeout=5)
    assert response.status_code == 200, response.text
    return {conference["name"]: conference for conference in response.json()["data"]}


def _rooms(url: str, auth: tuple[str, str]) -> dict[str, dict]:
    response = requests.get(f"{url}/api/video/rooms?page_size=100", auth=auth, timeout=5)
    assert response.status_code == 200, response.text
    return {room["name"]: room for room in response.json()["data"]}


def test_command_serves_two_projects_with_their_own_credentials_and_data():
    token = "command-test-token-9b2c"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings_test", "PYTHONUNBUFFERED": "1"}
    env.pop("SANDBOX_SPACES", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox_space",
            "--port",
            "0",
            "--projects",
            "2",
            "--project-id",
            "cmd-project",
            "--api-token",
            token,
            "--seed-conferences",
            "9",
            "--seed-rooms",
            "9",
            "--seed-sessions",
            "30",
            "--live-sessions",
            "1",
            "--seed",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or "Press Ctrl-C" not in lines[-1]:  # it has seeded and serves
            line = process.stdout.readline()
            assert line, "".join(lines) + process.stderr.read()
            lines.append(line)
        served = [re.search(r"serving at (\S+) \(project (\S+), token ([^)]+)\)", x) for x in lines]
        assert [m.group(2, 3) for m in served if m] == [
            ("cmd-project", "as given, not shown"),
            ("sandbox-project-2", "sandbox-token-2"),
        ]
        assert all("9 conferences, 9 rooms, 31 sessions (1 live)" in x for x in lines[:2])
        url = served[0].group(1)
        assert served[1].group(1) == url
        first, second = ("cmd-project", token), ("sandbox-project-2", "sandbox-token-2")
        conferences_a, conferences_b = _conferences(url, first), _conferences(url, second)
        rooms_a, rooms_b = _rooms(url, first), _rooms(url, second)

        # Two Spaces that visibly differ: some names in both with other settings, some
        # names in one only, and never the same id or token.
        for mine, theirs in ((conferences_a, conferences_b), (rooms_a, rooms_b)):
            shared = mine.keys() & theirs.keys()
            assert shared and mine.keys() - theirs.keys() and theirs.keys() - mine.keys()
            differ = [name for name in shared if _settings(mine[name]) != _settings(theirs[name])]
            assert differ and len(differ) < len(shared)
            assert not {c["id"] for c in mine.values()} & {c["id"] for c in theirs.values()}
        tokens = [
            requests.get(
                f"{url}/api/video/conferences/{c['id']}/conference_tokens", auth=auth, timeout=5
            ).json()["data"]
            for auth, listing in ((first, conferences_a), (second, conferences_b))
            for c in listing.values()
        ]
        values = [token["token"] for listed in tokens for token in listed]
        assert len(values) == 36 == len(set(values))

        for auth in (("sandbox-project-2", token), ("cmd-project", "sandbox-token-2")):
            refused = requests.get(f"{url}/api/video/rooms", auth=auth, timeout=5)
            assert refused.status_code == 401
        projects = requests.get(f"{url}/__sandbox__/projects", timeout=5).json()["projects"]
        assert [p["project_id"] for p in projects] == ["cmd-project", "sandbox-project-2"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert token not in "".join(lines) + out + err


def _settings(payload: dict) -> dict:
    """What a conference or room is set to, without its id and stamps."""
    return {k: v for k, v in payload.items() if k not in ("id", "created_at", "updated_at")}


@pytest.mark.parametrize("projects", ["0", "51"])
def test_command_refuses_a_number_of_projects_out_of_range(projects):
    with pytest.raises(CommandError, match="--projects must be between 1 and 50"):
        call_command("sandbox_space", "--port", "0", "--projects", projects)


def test_command_takes_its_number_of_projects_from_the_setting(settings):
    settings.SANDBOX_SPACES = 0
    with pytest.raises(CommandError, match="--projects must be between 1 and 50"):
        call_command("sandbox_space", "--port", "0")
