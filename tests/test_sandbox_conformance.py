"""Every response the sandbox sends validates against SignalWire's OpenAPI description.

The description is found through SIGNALWIRE_OPENAPI_SPEC; the last tests here check that
setting: without it the tests that need it skip, each saying why, and nothing fails.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_B_PROJECT_ID
from tests.fixtures_sandbox import Api
from tests.spec_validation import (
    SPEC_ENV,
    SPEC_NOT_SET,
    SPEC_REQUIRED_ENV,
    find_operation,
    recording,
    validate_response,
)

needs_spec = pytest.mark.needs_spec

OTHER_ID = "2f0e4b6e-3c8e-4b7e-9a0f-1d2c3b4a5f6e"


def exercise(api: Api, sandbox, server, anonymous: Api | None = None) -> None:
    """Call every endpoint the portal uses, with successes and each kind of error.

    `anonymous` is the client whose requests are refused (default: one with no credentials).
    """
    anonymous = anonymous or Api(server, auth=None)
    sandbox.seed(conferences=12, rooms=12, seed=4)

    conference = api.post(
        "/api/video/conferences",
        json={
            "display_name": "Acme All-hands",
            "join_from": "2030-01-01",
            "dark_primary": "#010203",
        },
    ).json()
    api.post("/api/video/conferences", json={"display_name": "No name"})
    api.post("/api/video/conferences", json={"name": "bad name", "quality": "8k", "extra": 1})
    api.post("/api/video/conferences", data=b"{broken")
    anonymous.post("/api/video/conferences", json={"display_name": "x"})
    api.get("/api/video/conferences?page_size=5")
    pages = api.get("/api/video/conferences?page_size=5").json()
    api.get(pages["links"]["next"])
    api.get("/api/video/conferences?page_size=0")
    api.get("/api/video/conferences?page_token=nope")
    anonymous.get("/api/video/conferences")
    path = f"/api/video/conferences/{conference['id']}"
    api.get(path)
    api.get(f"/api/video/conferences/{OTHER_ID}")
    api.put(path, json={"display_name": "Renamed", "tone_on_entry_and_exit": False})
    api.put(path, json={"name": "nope"})
    api.put(f"/api/video/conferences/{OTHER_ID}", json={"display_name": "x"})
    api.put(path, data=b"[]")
    tokens = api.get(f"{path}/conference_tokens").json()["data"]
    api.get(f"{path}/conference_tokens?page_size=1")
    api.get(f"{path}/conference_tokens?page_size=abc")
    api.get(f"/api/video/conferences/{OTHER_ID}/conference_tokens")
    api.get(f"/api/video/conference_tokens/{tokens[0]['id']}")
    api.get(f"/api/video/conference_tokens/{OTHER_ID}")
    api.post(f"/api/video/conference_tokens/{tokens[1]['id']}/reset")
    api.post(f"/api/video/conference_tokens/{OTHER_ID}/reset")
    anonymous.post(f"/api/video/conference_tokens/{tokens[1]['id']}/reset")

    room = api.post(
        "/api/video/rooms", json={"name": "acme_lobby", "meta": {"a": [1]}, "max_members": 5}
    ).json()
    api.post("/api/video/rooms", json={"max_members": 0})
    api.post("/api/video/rooms", json={"name": "acme_lobby"})
    api.post("/api/video/rooms", data=b'"text"')
    api.get("/api/video/rooms")
    api.get("/api/video/rooms?page_size=1001")
    api.get(f"/api/video/rooms/{room['id']}")
    api.get("/api/video/rooms/acme_lobby")
    api.get("/api/video/rooms/missing_room")
    api.put(
        f"/api/video/rooms/{room['id']}", json={"display_name": "Lobby", "sync_audio_video": True}
    )
    api.put(f"/api/video/rooms/{room['id']}", json={"remove_at": "later"})
    api.put(f"/api/video/rooms/{OTHER_ID}", json={})
    api.post("/api/video/room_tokens", json={"room_name": "acme_lobby", "user_name": "Ann"})
    api.post("/api/video/room_tokens", json={"user_name": 5})
    api.post("/api/video/room_tokens", data=b"nope")
    anonymous.post("/api/video/room_tokens", json={"room_name": "x"})

    exercise_activity(api, anonymous, sandbox, room)

    sandbox.inject_fault(500, count=1)
    api.get("/api/video/rooms")
    sandbox.inject_fault(429, count=1, retry_after=1)
    api.get("/api/video/rooms")
    api.delete(f"/api/video/rooms/{room['id']}")
    api.delete(f"/api/video/rooms/{room['id']}")
    api.delete(path)
    api.delete(path)


def exercise_activity(api: Api, anonymous: Api, sandbox, room: dict) -> None:
    """Call the stream, session, recording and log endpoints, successes and errors."""
    streams = f"/api/video/rooms/{room['id']}/streams"
    stream = api.post(streams, json={"url": "rtmp://live.example/key"}).json()
    api.post(streams, json={"url": "http://nope"})
    api.post(streams, data=b"{")
    api.post(f"/api/video/rooms/{OTHER_ID}/streams", json={"url": "rtmp://x/y"})
    api.post(f"/api/video/conferences/{OTHER_ID}/streams", json={"url": "rtmp://x/y"})
    api.get(streams)
    anonymous.get(streams)
    api.put(f"/api/video/streams/{stream['id']}", json={"url": "rtmps://live.example/k2"})
    api.put(f"/api/video/streams/{stream['id']}", json={})
    api.get(f"/api/video/streams/{stream['id']}")
    api.delete(f"/api/video/streams/{stream['id']}")
    api.get(f"/api/video/streams/{stream['id']}")
    sandbox.seed(sessions=30, seed=4)
    live = sandbox.start_session(room_id=room["id"], members=["Ann"], record=True)
    api.get("/api/video/room_sessions?status=in-progress")
    api.get(f"/api/video/rooms/{room['id']}?include_active_session=true")
    sandbox.end_session(live["id"])
    api.get("/api/video/room_sessions?page_size=10")
    api.get("/api/video/room_sessions?status=done&room_id=x")
    api.get(f"/api/video/room_sessions/{live['id']}")
    api.get(f"/api/video/room_sessions/{OTHER_ID}")
    for tail in ("members", "events", "recordings"):
        api.get(f"/api/video/room_sessions/{live['id']}/{tail}")
        api.get(f"/api/video/room_sessions/{live['id']}/{tail}?page_size=0")
    recordings = api.get("/api/video/room_recordings?media_ttl=60").json()["data"]
    api.get("/api/video/room_recordings?media_ttl=-5")
    api.get(f"/api/video/room_recordings/{recordings[0]['id']}")
    api.get(f"/api/video/room_recordings/{recordings[0]['id']}/events")
    api.delete(f"/api/video/room_recordings/{recordings[0]['id']}")
    api.delete(f"/api/video/room_recordings/{recordings[0]['id']}")
    logs = api.get("/api/video/logs?include_deleted=true&page_size=1000").json()["data"]
    api.get("/api/video/logs?created_on=someday")
    api.get(f"/api/video/logs/{logs[0]['id']}")
    api.get(f"/api/video/logs/{OTHER_ID}")
    anonymous.get("/api/video/logs")


@needs_spec
def test_every_endpoint_answers_per_the_spec(api, sandbox, sandbox_server):
    with recording(sandbox_server.space) as recorder:
        exercise(api, sandbox, sandbox_server)
    statuses = {status for _, _, status, _ in recorder.responses}
    assert statuses >= {200, 204, 400, 401, 404, 422, 429, 500}
    assert len(recorder.responses) >= 45
    for method, path, status, body in recorder.responses:
        validate_response(method, path, status, body)
    assert recorder.problems() == []


@needs_spec
def test_every_logged_request_got_a_checked_response(api, sandbox, sandbox_server):
    with recording(sandbox_server.space) as recorder:
        exercise(api, sandbox, sandbox_server)
    logged = [(e["method"], e["path"], e["status"]) for e in sandbox.requests]
    answered = [(method, path, status) for method, path, status, _ in recorder.responses]
    assert logged == answered


@needs_spec
def test_a_large_seeded_listing_conforms(api, sandbox, sandbox_server):
    sandbox.seed(conferences=1500, rooms=1500, seed=11)
    with recording(sandbox_server.space) as recorder:
        for path in ("/api/video/conferences", "/api/video/rooms"):
            url = f"{path}?page_size=1000"
            while url:
                url = api.get(url).json()["links"].get("next")
    assert len(recorder.responses) == 4
    recorder.assert_valid()


@needs_spec
def test_the_second_project_answers_per_the_spec(api, api_b, sandbox, sandbox_b, sandbox_server):
    # A wrong token for B's project: B answers (401) and logs it, as it does the rest.
    refused = Api(sandbox_server, auth=(SANDBOX_B_PROJECT_ID, SANDBOX_API_TOKEN))
    with recording(sandbox_b) as recorder:
        exercise(api_b, sandbox_b, sandbox_server, anonymous=refused)
        sandbox_b.reset()
        sandbox_b.seed(conferences=1500, rooms=1500, sessions=200, seed=11, variant=1)
        for path in ("/api/video/conferences", "/api/video/rooms", "/api/video/room_sessions"):
            url = f"{path}?page_size=1000"
            while url:
                url = api_b.get(url).json()["links"].get("next")
    statuses = {status for _, _, status, _ in recorder.responses}
    assert statuses >= {200, 204, 400, 401, 404, 422, 429, 500}
    assert recorder.problems() == []
    logged = [(e["method"], e["path"], e["status"]) for e in sandbox_b.requests]
    answered = [(method, path, status) for method, path, status, _ in recorder.responses[-5:]]
    assert logged == answered  # the log since the reset: the five pages
    assert sandbox.requests == []


@needs_spec
def test_validator_catches_non_conforming_bodies(api):
    conference = api.post("/api/video/conferences", json={"display_name": "A"}).json()
    validate_response("GET", f"/api/video/conferences/{conference['id']}", 200, conference)
    broken_cases = []
    missing = copy.deepcopy(conference)
    del missing["meta"]
    broken_cases.append(missing)
    extra = {**conference, "surprise": True}
    broken_cases.append(extra)
    broken_cases.append({**conference, "created_at": "yesterday"})
    broken_cases.append({**conference, "id": "not-a-uuid"})
    broken_cases.append({**conference, "layout": "hexagon"})
    broken_cases.append({**conference, "enable_chat": None})
    for broken in broken_cases:
        with pytest.raises(AssertionError):
            validate_response("GET", f"/api/video/conferences/{conference['id']}", 200, broken)
    with pytest.raises(AssertionError, match="does not list"):
        validate_response("DELETE", f"/api/video/rooms/{conference['id']}", 422, {"errors": []})
    with pytest.raises(AssertionError, match="no body"):
        validate_response("DELETE", f"/api/video/rooms/{conference['id']}", 204, {"x": 1})
    with pytest.raises(jsonschema.ValidationError):
        validate_response("GET", "/api/video/rooms", 429, {"message": "slow down"})
    with pytest.raises(AssertionError):
        validate_response("GET", "/api/video/rooms", 401, {"error": "Nope"})
    # The stream operations list no 400, so none is let through.
    stream_path = f"/api/video/streams/{conference['id']}"
    with pytest.raises(AssertionError, match="does not list"):
        validate_response("PUT", stream_path, 400, {"error": "Bad Request"})


@needs_spec
def test_operations_resolve_like_the_spec():
    room_id = "2f0e4b6e-3c8e-4b7e-9a0f-1d2c3b4a5f6e"
    assert find_operation("GET", f"/api/video/rooms/{room_id}")[0] == "/api/video/rooms/{id}"
    assert find_operation("GET", "/api/video/rooms/lobby")[0] == "/api/video/rooms/{name}"
    assert find_operation("PUT", "/api/video/rooms/lobby")[0] == "/api/video/rooms/{id}"
    assert find_operation("GET", "/api/video/rooms?page_size=2")[0] == "/api/video/rooms"
    template, operation = find_operation("POST", f"/api/video/conference_tokens/{room_id}/reset")
    assert operation["operationId"] == "reset_conference_token"
    with pytest.raises(AssertionError):
        find_operation("PATCH", "/api/video/rooms")


# --- the setting that finds the description ---------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SPEC_MODULES = ["tests/test_sandbox_conformance.py", "tests/test_sandbox_fuzz.py"]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in a child process with the spec settings given (and no others)."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in (SPEC_ENV, SPEC_REQUIRED_ENV, "PYTEST_ADDOPTS")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_the_setting_spec_tests_skip_with_their_reason_and_nothing_fails():
    result = _pytest("-q", "-rs", "-m", "needs_spec", *SPEC_MODULES)
    assert result.returncode == 0, result.stdout + result.stderr
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all(line.endswith(SPEC_NOT_SET) for line in skips), result.stdout
    summary = result.stdout.splitlines()[-1]
    assert " skipped" in summary and "passed" not in summary and "error" not in summary


def test_a_missing_spec_fails_the_run_when_it_is_required():
    result = _pytest("-q", "--collect-only", *SPEC_MODULES, **{SPEC_REQUIRED_ENV: "1"})
    assert result.returncode != 0
    assert SPEC_NOT_SET in result.stdout + result.stderr


def test_a_setting_that_names_no_file_fails_the_run(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    result = _pytest("-q", "--collect-only", *SPEC_MODULES, **{SPEC_ENV: str(missing)})
    assert result.returncode != 0
    assert f"{SPEC_ENV} names no file: {missing}" in result.stdout + result.stderr
