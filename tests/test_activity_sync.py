"""Room sessions and members mirrored from the sandbox Space: live refresh and history sync."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
import responses
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms import sync
from rooms.models import Room, RoomSession, SessionMember, SyncRun
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.sessions import member_fields
from rooms.sync import sessions

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")
ACTIVITY_TABLES = ("rooms_roomsession", "rooms_sessionmember")


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def control(server, path: str, body: dict | None = None) -> dict:
    """Drive the sandbox through its loopback control API, over HTTP."""
    answer = requests.post(f"{server.url}/__sandbox__/{path}", json=body or {}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def activity_writes(queries: list[dict]) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(WRITES)
        and any(table in q["sql"] for table in ACTIVITY_TABLES)
    ]


def session_requests(space) -> list[str]:
    return [e["path"] for e in space.requests if e["path"].startswith("/api/video/room_sessions")]


@pytest.fixture
def room(sandbox):
    """A room in the Space, mirrored locally."""
    sandbox.create_room({"name": "standup"})
    sync.sync_rooms()
    return Room.objects.get(name="standup")


def test_a_started_session_is_live_after_one_refresh_members_join_leave_and_it_ends(
    sandbox, sandbox_server, room
):
    started = control(
        sandbox_server, "sessions", {"room_name": "standup", "members": ["ann", "bo"]}
    )

    run = sessions.sessions_refresh_live()

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    live = RoomSession.objects.get(remote_id=started["id"])
    assert live.is_live and live.room == room and live.members_now == 2
    assert sorted(live.members.values_list("name", flat=True)) == ["ann", "bo"]

    control(sandbox_server, f"sessions/{started['id']}/join", {"name": "cy"})
    control(sandbox_server, f"sessions/{started['id']}/leave", {"name": "ann"})
    sessions.sessions_refresh_live()
    live.refresh_from_db()
    assert live.members_now == 2 and live.member_count == 3
    ann = live.members.get(name="ann")
    assert ann.leave_time is not None and ann.duration is not None

    control(sandbox_server, f"sessions/{started['id']}/end")
    sessions.sessions_refresh_live()
    live.refresh_from_db()
    assert live.status == "completed" and not live.is_live
    assert live.end_time is not None and live.members_now == 0
    assert live.cost_in_dollars is not None
    assert live.members.filter(leave_time__isnull=True).count() == 0


def test_a_session_of_a_room_made_on_the_fly_is_matched_by_name(sandbox, sandbox_server):
    # A room the Space does not know (yet): SignalWire's session has no room_id.
    Room.objects.bulk_create([Room(name="adhoc-room")])
    started = control(sandbox_server, "sessions", {"room_name": "adhoc-room", "members": ["x"]})
    assert started["room_id"] is None

    sessions.sessions_refresh_live()

    mirrored = RoomSession.objects.get(remote_id=started["id"])
    assert mirrored.room == Room.objects.get(name="adhoc-room")
    assert mirrored.remote_room_id == ""


def test_an_unchanged_live_refresh_writes_nothing(sandbox, sandbox_server, room):
    control(sandbox_server, "sessions", {"room_name": "standup", "members": ["ann"]})
    sessions.sessions_refresh_live()

    with CaptureQueriesContext(connection) as queries:
        run = sessions.sessions_refresh_live()

    assert activity_writes(queries.captured_queries) == []
    assert (run.created, run.updated, run.unchanged) == (0, 0, 1)


def test_a_live_refresh_costs_requests_per_live_session_not_per_room_or_history(
    sandbox, sandbox_server
):
    sandbox.seed(rooms=30, sessions=200)
    sync.sync_rooms()
    for name in sorted(r["name"] for r in sandbox.rooms.values())[:3]:
        control(sandbox_server, "sessions", {"room_name": name, "members": ["a", "b"]})
    sandbox.clear_requests()

    with CaptureQueriesContext(connection) as queries:
        run = sessions.sessions_refresh_live()

    paths = session_requests(sandbox)
    assert len([p for p in paths if p.endswith("/members")]) == 3
    assert len(paths) == 4  # the live listing and the members of each live session
    assert run.created == 3 and RoomSession.objects.count() == 3
    assert len(queries.captured_queries) < 40


def test_history_sync_is_incremental(sandbox, sandbox_server, room):
    sandbox.seed(sessions=40)
    first = sessions.sessions_sync_history(page_size=10)
    assert first.created == 40 and RoomSession.objects.filter(status="completed").count() == 40
    totals = sum(RoomSession.objects.values_list("member_count", flat=True))
    assert SessionMember.objects.count() == totals > 0

    sandbox.clear_requests()
    with CaptureQueriesContext(connection) as queries:
        again = sessions.sessions_sync_history(page_size=10)
    assert activity_writes(queries.captured_queries) == []
    assert session_requests(sandbox) == ["/api/video/room_sessions"]  # one page, no members
    assert (again.created, again.updated, again.unchanged) == (0, 0, 10)

    started = control(sandbox_server, "sessions", {"room_name": "standup", "members": ["ann"]})
    control(sandbox_server, f"sessions/{started['id']}/end")
    sandbox.clear_requests()
    third = sessions.sessions_sync_history(page_size=10)
    assert third.created == 1
    assert session_requests(sandbox) == [
        "/api/video/room_sessions",
        f"/api/video/room_sessions/{started['id']}/members",
    ]
    new = RoomSession.objects.get(remote_id=started["id"])
    assert new.room == room and new.member_count == 1
    assert new.members.get().name == "ann"


def test_a_session_the_live_refresh_stored_meanwhile_is_updated_not_a_failed_run(
    sandbox, sandbox_server, room
):
    started = control(sandbox_server, "sessions", {"room_name": "standup", "members": ["ann"]})
    control(sandbox_server, f"sessions/{started['id']}/end")
    raced = False

    def live_refresh_writes_first(execute, sql, params, many, context):
        # Another writer (the live refresh) stores the same session between this run's
        # read of what is mirrored and its insert.
        nonlocal raced
        if not raced and sql.lstrip().upper().startswith('INSERT INTO "ROOMS_ROOMSESSION"'):
            raced = True
            RoomSession.objects.create(remote_id=started["id"], status="in_progress",
                                       room=room, members_now=1)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(live_refresh_writes_first):
        run = sessions.sessions_sync_history()

    assert raced
    assert run.outcome == SyncRun.Outcome.SUCCEEDED, run.error
    mirrored = RoomSession.objects.get(remote_id=started["id"])
    assert mirrored.status == "completed" and mirrored.end_time is not None
    assert list(mirrored.members.values_list("name", flat=True)) == ["ann"]


def test_sync_signalwire_sessions_runs_live_and_history(sandbox, sandbox_server, room, capsys):
    sandbox.seed(sessions=5)
    control(sandbox_server, "sessions", {"room_name": "standup", "members": ["ann"]})

    call_command("sync_signalwire", "--sessions")

    assert RoomSession.objects.filter(status="completed").count() == 5
    assert RoomSession.objects.filter(status="in-progress", room=room).count() == 1
    out = capsys.readouterr().out
    assert "Live room sessions: Succeeded" in out and "Room sessions (history): Succeeded" in out


SPACE = "https://example.signalwire.com"
LISTING = f"{SPACE}/api/video/room_sessions"


@responses.activate
def test_a_broken_space_keeps_unknown_fields_and_values_raw_and_skips_rows_without_id():
    odd = {
        "id": "s-odd",
        "name": "odd-room",
        "room_id": None,
        "status": "paused-by-operator",
        "start_time": "not a date",
        "duration": "long",
        "cost_in_dollars": "NaN",
        "updated_at": "2026-01-01T00:00:00Z",
        "brand_new_field": {"x": 1},
    }
    listing = {"links": {"self": LISTING, "first": LISTING}, "data": [odd, {"name": "no id"}, 7]}
    responses.get(LISTING, json=listing)
    responses.get(f"{LISTING}/s-odd/members", json={"links": {}, "data": [{"id": "m1", "name": 5}]})
    client = SignalWireClient(space_url=SPACE, project_id="p", api_token="t" * 20, retries=0)

    run = sessions.sessions_sync_history(client=client)

    assert run.outcome == SyncRun.Outcome.SUCCEEDED and run.errors == 2 and run.created == 1
    session = RoomSession.objects.get(remote_id="s-odd")
    assert session.status == "paused-by-operator"
    assert session.start_time is None and session.duration is None
    assert session.cost_in_dollars is None
    assert session.raw["brand_new_field"] == {"x": 1}
    assert session.members.get().raw == {"id": "m1", "name": 5}
    assert responses.calls[0].request.params["status"] == "completed"


def test_money_and_seconds_are_read_exactly():
    assert member_fields({"id": "m", "duration": 61, "cost_in_dollars": 0.0070})[
        "cost_in_dollars"
    ] == Decimal("0.0070")


def test_sessions_mirrored_before_their_room_are_linked_once_it_is(sandbox, sandbox_server):
    sandbox.create_room({"name": "late-room"})
    done = control(sandbox_server, "sessions", {"room_name": "late-room", "members": ["m"]})
    control(sandbox_server, f"sessions/{done['id']}/end")
    sessions.sessions_sync_history()
    assert RoomSession.objects.get(remote_id=done["id"]).room is None

    sync.sync_rooms()
    sessions.sessions_sync_history()

    assert RoomSession.objects.get(remote_id=done["id"]).room == Room.objects.get(name="late-room")
    with CaptureQueriesContext(connection) as queries:
        sessions.sessions_sync_history()
    assert activity_writes(queries.captured_queries) == []
