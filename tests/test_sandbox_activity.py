"""Sandbox room sessions, members and events, driven through the loopback control API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import SandboxSpace
from tests.fixtures_sandbox import Api, errors_by_attribute

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")


def control(
    api: Api, path: str, body: dict | None = None, method: str = "POST"
) -> requests.Response:
    """Call the sandbox's control API (loopback, no auth)."""
    return requests.request(method, f"{api.base}/__sandbox__/{path}", json=body, timeout=10)


def walk(api: Api, url: str) -> list[dict]:
    """Every item of a list, following links.next."""
    items = []
    while url:
        page = api.get(url)
        assert page.status_code == 200, page.text
        items += page.json()["data"]
        url = page.json()["links"].get("next")
    return items


def test_a_session_starts_members_come_and_go_and_it_ends(api):
    room = api.post("/api/video/rooms", json={"name": "standup", "max_members": 5}).json()
    started = control(api, "sessions", {"room_name": "standup", "members": ["Ada", "Linus"]})
    assert started.status_code == 200, started.text
    session = started.json()
    assert session["room_id"] == room["id"] and session["name"] == "standup"
    assert session["status"] == "in-progress" and session["end_time"] is None
    live = api.get("/api/video/room_sessions?status=in-progress").json()["data"]
    assert [s["id"] for s in live] == [session["id"]]
    joined = control(api, f"sessions/{session['id']}/join", {"name": "Grace"}).json()
    assert joined["leave_time"] is None and joined["duration"] is None
    left = control(api, f"sessions/{session['id']}/leave", {"name": "Ada"}).json()
    assert left["name"] == "Ada" and left["leave_time"] >= left["join_time"]
    assert isinstance(left["duration"], int)
    members = api.get(f"/api/video/room_sessions/{session['id']}/members").json()["data"]
    assert [m["name"] for m in members] == ["Ada", "Linus", "Grace"]
    assert [m["leave_time"] is None for m in members] == [False, True, True]
    ended = control(api, f"sessions/{session['id']}/end").json()
    assert ended["status"] == "completed" and ended["end_time"] >= ended["start_time"]
    assert isinstance(ended["duration"], int)
    summary = api.get(f"/api/video/room_sessions/{session['id']}").json()
    assert summary["status"] == "completed" and "cost_in_dollars" not in summary
    members = api.get(f"/api/video/room_sessions/{session['id']}/members").json()["data"]
    assert all(m["leave_time"] and m["duration"] is not None for m in members)
    listed = api.get(f"/api/video/room_sessions?room_id={room['id']}").json()["data"]
    assert listed[0]["cost_in_dollars"] == round(sum(m["cost_in_dollars"] for m in members), 4)
    assert api.get("/api/video/room_sessions?status=in-progress").json()["data"] == []
    events = api.get(f"/api/video/room_sessions/{session['id']}/events").json()["data"]
    names = [event["name"] for event in events]
    assert names[0] == "room.started" and names[-1] == "room.ended"
    assert names.count("member.joined") == 3 and names.count("member.left") == 3
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
    assert {e["room_id"] for e in events} == {room["id"]}
    assert api.get(f"/api/video/room_sessions/{session['id']}/recordings").json()["data"] == []
    again = control(api, f"sessions/{session['id']}/join", {"name": "Late"})
    assert again.status_code == 400 and "ended" in again.json()["error"]


def test_a_session_in_a_conference_by_id_and_one_on_the_fly(api, sandbox):
    conference = api.post("/api/video/conferences", json={"display_name": "All hands"}).json()
    in_conference = control(api, "sessions", {"room_id": conference["id"]}).json()
    assert in_conference["room_id"] == conference["id"]
    assert in_conference["name"] == conference["name"]
    on_the_fly = control(api, "sessions", {"room_name": "made_by_a_token"}).json()
    assert on_the_fly["room_id"] is None and on_the_fly["name"] == "made_by_a_token"
    live = control(api, "sessions", method="GET").json()["live"]
    assert [s["id"] for s in live] == [in_conference["id"], on_the_fly["id"]]
    by_name = api.get("/api/video/room_sessions?room_name=made_by_a_token").json()["data"]
    assert [s["id"] for s in by_name] == [on_the_fly["id"]]
    matching = api.get("/api/video/room_sessions?room_name_matches=by_a_tok").json()["data"]
    assert [s["id"] for s in matching] == [on_the_fly["id"]]
    control(api, f"sessions/{on_the_fly['id']}/join", {"name": "Guest"})
    events = api.get(f"/api/video/room_sessions/{on_the_fly['id']}/events").json()["data"]
    assert len({e["room_id"] for e in events}) == 1 and events[0]["room_id"]
    logs_before = sandbox.state()["logs"]
    for started in (in_conference, on_the_fly):
        assert control(api, f"sessions/{started['id']}/end").status_code == 200
    assert sandbox.state()["logs"] == logs_before + 2
    types = {log["room_name"]: log["type"] for log in walk(api, "/api/video/logs")}
    assert types == {
        conference["name"]: "video_conference_session",
        "made_by_a_token": "video_room_session",
    }


def test_control_refuses_what_cannot_happen(api):
    api.post("/api/video/rooms", json={"name": "tiny", "max_members": 1})
    assert control(api, "sessions", {}).status_code == 400
    assert control(api, "sessions", {"room_name": "no spaces allowed"}).status_code == 400
    assert control(api, "sessions", {"room_name": "tiny", "members": "Ada"}).status_code == 400
    assert control(api, "sessions", {"room_name": "tiny", "bogus": 1}).status_code == 400
    missing = "4d7f1c9e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
    assert control(api, "sessions", {"room_id": missing}).status_code == 404
    session = control(api, "sessions", {"room_name": "tiny", "members": ["Ada"]}).json()
    assert control(api, "sessions", {"room_name": "tiny"}).status_code == 400  # one at a time
    full = control(api, f"sessions/{session['id']}/join", {"name": "Bob"})
    assert full.status_code == 400 and "full" in full.json()["error"]
    assert control(api, f"sessions/{session['id']}/leave", {"name": "Bob"}).status_code == 400
    assert control(api, f"sessions/{missing}/end").status_code == 404
    assert control(api, f"sessions/{session['id']}/end", method="GET").status_code == 405
    listed = control(api, "sessions", method="GET").json()
    assert listed == {"live": [{"id": session["id"], "name": "tiny"}]}


def test_the_control_api_is_loopback_only(sandbox, sandbox_server):
    from http.server import BaseHTTPRequestHandler

    from sandbox.handler import SandboxHandler

    assert issubclass(SandboxHandler, BaseHTTPRequestHandler)
    handler = SandboxHandler.__new__(SandboxHandler)
    handler.client_address = ("203.0.113.9", 5000)
    handler.server = type("S", (), {"sandbox": sandbox_server})()
    reply = handler.control("POST", "/__sandbox__/sessions/x/end", b"{}")
    assert reply.status == 403
    reply = handler.control("GET", "/__sandbox__/media/recordings/x.mp4", b"")
    assert reply.status == 403


def test_session_filters_are_checked(api):
    response = api.get("/api/video/room_sessions?room_id=nope&status=live")
    assert errors_by_attribute(response) == {
        "room_id": "Room id must be a valid UUID",
        "status": "Status is not included in the list",
    }
    missing = "4d7f1c9e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
    assert api.get(f"/api/video/room_sessions/{missing}").status_code == 404
    for tail in ("members", "events", "recordings"):
        listed = api.get(f"/api/video/room_sessions/{missing}/{tail}")
        assert listed.status_code == 200 and listed.json()["data"] == []


def test_seeded_history_pages_newest_first_and_filters_by_room(api, sandbox):
    sandbox.seed(conferences=5, rooms=10, seed=2)
    sandbox.seed(sessions=700, seed=2)
    sessions = walk(api, "/api/video/room_sessions?page_size=250")
    assert len(sessions) == 700 and len({s["id"] for s in sessions}) == 700
    assert [s["start_time"] for s in sessions] == sorted(
        (s["start_time"] for s in sessions), reverse=True
    )
    assert all(s["status"] == "completed" for s in sessions)
    now = datetime.now(UTC)
    oldest = datetime.fromisoformat(sessions[-1]["start_time"].replace("Z", "+00:00"))
    assert now - timedelta(days=91) < oldest and sessions[0]["end_time"] < now.isoformat()
    assert any(s["room_id"] is None for s in sessions)
    room_id = next(s["room_id"] for s in sessions if s["room_id"] in sandbox.rooms)
    of_room = walk(api, f"/api/video/room_sessions?room_id={room_id}&page_size=7")
    assert of_room == [s for s in sessions if s["room_id"] == room_id]
    first = api.get("/api/video/room_sessions?page_size=100").json()
    next_query = parse_qs(urlsplit(first["links"]["next"]).query)
    assert next_query["page_number"] == ["1"]
    second = api.get(first["links"]["next"]).json()
    assert api.get(second["links"]["prev"]).json()["data"] == first["data"]
    members = api.get(f"/api/video/room_sessions/{sessions[0]['id']}/members").json()["data"]
    assert (
        members
        and round(sum(m["cost_in_dollars"] for m in members), 4) == (sessions[0]["cost_in_dollars"])
    )
    assert all(sessions[0]["start_time"] <= m["join_time"] <= m["leave_time"] for m in members)


def test_seeded_history_is_deterministic():
    until = datetime(2026, 6, 1, tzinfo=UTC)
    spaces = [SandboxSpace(), SandboxSpace(), SandboxSpace()]
    for space, seed in zip(spaces, (5, 5, 6), strict=True):
        space.seed(conferences=20, rooms=40, seed=seed)
        space.seed(sessions=300, seed=seed, until=until)
    first, second, other = spaces
    assert first.room_sessions == second.room_sessions
    assert first.room_sessions != other.room_sessions
    some = sorted(first.room_sessions)[:20]
    base = "http://x/api/video/room_sessions"
    assert [first.list_members(i, base) for i in some] == [
        second.list_members(i, base) for i in some
    ]
    # How fast a large history seeds and lists is measured by bench/sandbox_bench.py.
    page = first.list_sessions(base, "page_size=1000")
    assert len(page["data"]) == 300


def test_seed_and_clock_through_the_control_api(api, sandbox):
    state = control(api, "seed", {"rooms": 3, "sessions": 25, "seed": 1}).json()
    assert state["room_sessions"] == 25 and state["logs"] == 25
    assert control(api, "clock", {"advance": -1}).status_code == 400
    assert control(api, "clock", {"advance": 60}).json() == {"offset": 60.0}
    session = control(api, "sessions", {"room_name": "later"}).json()
    started = datetime.fromisoformat(session["start_time"].replace("Z", "+00:00"))
    assert started > datetime.now(UTC) + timedelta(seconds=30)


def test_control_reads_json_whatever_the_content_type_says(api):
    started = requests.post(
        f"{api.base}/__sandbox__/sessions",
        data='{"room_name": "curl_default"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert started.status_code == 200 and started.json()["name"] == "curl_default"
    broken = requests.post(f"{api.base}/__sandbox__/sessions", data="room_name=x", timeout=10)
    assert broken.status_code == 400


@pytest.mark.parametrize("kind", ["rooms", "conferences"])
def test_include_active_session_shows_the_live_session(api, kind):
    body = {"name": "live_one"} if kind == "rooms" else {"display_name": "Live one"}
    owner = api.post(f"/api/video/{kind}", json=body).json()
    api.post(f"/api/video/{kind}", json={"name": "idle_one", "display_name": "Idle"})
    session = control(api, "sessions", {"room_id": owner["id"], "members": ["Ada"]}).json()
    shown = api.get(f"/api/video/{kind}/{owner['id']}?include_active_session=true").json()
    active = shown["active_session"]
    assert active["id"] == session["id"] and active["status"] == "in-progress"
    assert "end_time" not in active  # the spec's ActiveSession has no nulls
    assert "active_session" not in api.get(f"/api/video/{kind}/{owner['id']}").json()
    listed = api.get(f"/api/video/{kind}?include_active_session=true").json()["data"]
    assert [("active_session" in o) for o in listed] == [True, False]
    control(api, f"sessions/{session['id']}/end")
    shown = api.get(f"/api/video/{kind}/{owner['id']}?include_active_session=true").json()
    assert "active_session" not in shown


@pytest.mark.parametrize("listing", ["members", "events", "recordings"])
@pytest.mark.parametrize("malformed", ["null,null", "not-a-uuid", "1234", "%20"])
def test_session_listings_refuse_an_id_that_is_not_a_uuid(api, listing, malformed):
    response = api.get(f"/api/video/room_sessions/{malformed}/{listing}")
    assert errors_by_attribute(response) == {"id": "Id must be a valid UUID"}


@pytest.mark.parametrize("listing", ["members", "events", "recordings"])
def test_session_listings_of_an_unknown_session_are_empty(api, listing):
    missing = "4d7f1c9e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
    response = api.get(f"/api/video/room_sessions/{missing}/{listing}")
    assert response.status_code == 200 and response.json()["data"] == []
