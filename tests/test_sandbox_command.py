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
