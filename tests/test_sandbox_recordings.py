"""Sandbox room recordings: made when recording sessions end, with media links that expire."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
import requests

from sandbox import SandboxServer
from tests.fixtures_sandbox import Api, errors_by_attribute

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")


def control(api: Api, path: str, body: dict | None = None) -> requests.Response:
    """POST to the sandbox's control API."""
    return requests.post(f"{api.base}/__sandbox__/{path}", json=body, timeout=10)


def recorded_session(api: Api, **start) -> tuple[dict, dict]:
    """Run a session that records, end it; return (session, its recording)."""
    session = control(api, "sessions", {"members": ["Ada"], **start}).json()
    control(api, f"sessions/{session['id']}/end")
    recordings = api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"]
    assert len(recordings) == 1
    return session, recordings[0]


def test_a_room_that_records_gets_a_recording_when_its_session_ends(api):
    api.post("/api/video/rooms", json={"name": "webinar", "record_on_start": True})
    session = control(api, "sessions", {"room_name": "webinar", "members": ["Ada"]}).json()
    live = api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"]
    assert [(r["status"], r["uri"], r["finished_at"]) for r in live] == [("recording", None, None)]
    control(api, f"sessions/{session['id']}/end")
    (recording,) = api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"]
    assert recording["status"] == "completed" and recording["format"] == "video/mp4"
    assert recording["started_at"] <= recording["finished_at"]
    assert isinstance(recording["duration"], int) and recording["size_in_bytes"] > 0
    assert recording["cost_in_dollars"] > 0 and recording["uri"]
    assert api.get(f"/api/video/room_recordings/{recording['id']}").json()["id"] == recording["id"]
    assert [r["id"] for r in api.get("/api/video/room_recordings").json()["data"]] == [
        recording["id"]
    ]
    events = api.get(f"/api/video/room_recordings/{recording['id']}/events").json()["data"]
    assert [e["name"] for e in events] == ["recording.started", "recording.ended"]
    assert {e["room_recording_id"] for e in events} == {recording["id"]}
    session_events = api.get(f"/api/video/room_sessions/{session['id']}/events").json()["data"]
    assert "recording.ended" in [e["name"] for e in session_events]
    (log,) = api.get("/api/video/logs").json()["data"]
    assert {"description": "Video room recording", "charge": recording["cost_in_dollars"]} in (
        log["charge_details"]
    )


def test_record_on_start_off_records_nothing_unless_asked(api):
    api.post("/api/video/rooms", json={"name": "quiet"})
    session = control(api, "sessions", {"room_name": "quiet"}).json()
    control(api, f"sessions/{session['id']}/end")
    assert api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"] == []
    _, recording = recorded_session(api, room_name="quiet_asked", record=True)
    assert recording["status"] == "completed"
    session = control(api, "sessions", {"room_name": "still", "record": True}).json()
    control(api, f"sessions/{session['id']}/end", {"recording_status": "processing"})
    (processing,) = api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"]
    assert processing["status"] == "processing" and processing["uri"] is None


def test_the_uri_downloads_while_valid_and_is_refused_once_expired(api, sandbox):
    _, recording = recorded_session(api, room_name="rec", record=True)
    assert urlsplit(recording["uri"]).netloc == urlsplit(api.base).netloc
    download = requests.get(recording["uri"], timeout=10)
    assert download.status_code == 200 and download.headers["Content-Type"] == "video/mp4"
    assert download.content[4:8] == b"ftyp"
    assert requests.get(recording["uri"], timeout=10).content == download.content
    forged = recording["uri"].replace("signature=", "signature=x")
    assert requests.get(forged, timeout=10).status_code == 403
    assert control(api, "clock", {"advance": 901}).status_code == 200
    expired = requests.get(recording["uri"], timeout=10)
    assert expired.status_code == 403 and expired.json() == {"error": "Forbidden"}
    fresh = api.get(f"/api/video/room_recordings/{recording['id']}").json()["uri"]
    assert fresh != recording["uri"]
    assert requests.get(fresh, timeout=10).status_code == 200


def test_media_ttl_sets_how_long_a_link_lasts(api):
    _, recording = recorded_session(api, room_name="ttl", record=True)
    short = api.get(f"/api/video/room_recordings/{recording['id']}?media_ttl=0").json()["uri"]
    assert requests.get(short, timeout=10).status_code in (200, 403)  # valid to the second
    long = api.get("/api/video/room_recordings?media_ttl=7200").json()["data"][0]["uri"]
    control(api, "clock", {"advance": 3600})
    assert requests.get(short, timeout=10).status_code == 403
    assert requests.get(long, timeout=10).status_code == 200
    response = api.get(f"/api/video/room_recordings/{recording['id']}?media_ttl=-1")
    assert errors_by_attribute(response) == {
        "media_ttl": "Media ttl must be greater than or equal to 0"
    }
    response = api.get("/api/video/room_recordings?media_ttl=x")
    assert errors_by_attribute(response) == {"media_ttl": "Media ttl must be an integer"}


def test_deleting_a_recording(api):
    session, recording = recorded_session(api, room_name="gone", record=True)
    assert api.delete(f"/api/video/room_recordings/{recording['id']}").status_code == 204
    assert api.get(f"/api/video/room_recordings/{recording['id']}").status_code == 404
    assert api.delete(f"/api/video/room_recordings/{recording['id']}").status_code == 404
    assert requests.get(recording["uri"], timeout=10).status_code == 404
    assert api.get("/api/video/room_recordings").json()["data"] == []
    assert api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"] == []
    events = api.get(f"/api/video/room_recordings/{recording['id']}/events").json()
    assert events["data"] == []


def test_seeded_recordings_belong_to_recording_rooms_and_page_newest_first(api, sandbox):
    sandbox.seed(rooms=60, conferences=20, seed=3)
    sandbox.seed(sessions=600, seed=3)
    recordings, url = [], "/api/video/room_recordings?page_size=40"
    while url:
        page = api.get(url).json()
        recordings += page["data"]
        url = page["links"].get("next")
    assert len(recordings) == sandbox.state()["room_recordings"] > 10
    assert [r["started_at"] for r in recordings] == sorted(
        (r["started_at"] for r in recordings), reverse=True
    )
    for recording in recordings[:30]:
        session = sandbox.room_sessions[recording["room_session_id"]]
        assert session["record_on_start"] and session["status"] == "completed"
        assert recording["duration"] == session["duration"]
        assert recording["status"] in ("completed", "processing")
    assert all(r["uri"] for r in recordings if r["status"] == "completed")


def test_media_links_stay_out_of_the_log(caplog):
    server = SandboxServer(verbose=True).start()
    try:
        api = Api(server, auth=(server.project_id, server.api_token))
        _, recording = recorded_session(api, room_name="secret", record=True)
        with caplog.at_level(logging.INFO, logger="sandbox.server"):
            assert requests.get(recording["uri"], timeout=10).status_code == 200
    finally:
        server.stop()
    signature = recording["uri"].split("signature=")[1]
    assert "media/recordings" in caplog.text and signature not in caplog.text


def test_recording_events_refuse_an_id_that_is_not_a_uuid_and_list_nothing_for_unknown_ones(api):
    response = api.get("/api/video/room_recordings/null,null/events")
    assert errors_by_attribute(response) == {"id": "Id must be a valid UUID"}
    missing = api.get("/api/video/room_recordings/4d7f1c9e-2b3a-4c5d-8e9f-0a1b2c3d4e5f/events")
    assert missing.status_code == 200 and missing.json()["data"] == []
    # A single recording, whose operation lists a 404, answers it for any id that names none.
    assert api.get("/api/video/room_recordings/null,null").status_code == 404
