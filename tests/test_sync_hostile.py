"""The sync against a hostile or broken Space (tests.hostile_space over real HTTP).

A bad link, a loop or an endless listing fails the run cleanly: recorded with a readable
error, no traceback, no deletion state changed. A page of any size is written in bounded
chunks.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from rooms import sync
from rooms.bulk_sql import insert_rows
from rooms.models import (
    AuditEntry,
    Conference,
    ConferenceToken,
    Recording,
    RoomSession,
    SessionMember,
    Stream,
    SyncRun,
    SyncState,
    default_space_id,
)
from rooms.selectors import usage
from rooms.signalwire import payloads
from rooms.signalwire.errors import UnexpectedResponseError
from rooms.sync import sessions
from rooms.tasks import sync as sync_tasks
from tests.hostile_space import HostileSpace

pytestmark = pytest.mark.django_db

Outcome = SyncRun.Outcome
CONFERENCES = "/api/video/conferences"
TOKEN = "hostile-sync-api-token-77c2"


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


@pytest.fixture
def space(settings):
    """A hostile Space the portal's settings point at."""
    server = HostileSpace().start()
    settings.SIGNALWIRE_SPACE_URL = server.url
    settings.SIGNALWIRE_PROJECT_ID = "proj"
    settings.SIGNALWIRE_API_TOKEN = TOKEN
    settings.SIGNALWIRE_RETRIES = 0
    yield server
    server.stop()


@pytest.fixture
def witness():
    server = HostileSpace().start()
    yield server
    server.stop()


def row(number: int) -> dict:
    return {"id": f"c{number}", "name": f"room-{number}"}


def latest_run() -> SyncRun:
    return SyncRun.objects.filter(kind=SyncRun.Kind.CONFERENCES).first()


def mirror_two_conferences(space: HostileSpace) -> None:
    """A first, clean sync: two conferences, both synced."""
    space.answer = lambda h: h.send_page([row(1), row(2)])
    assert sync.sync_conferences().outcome == Outcome.SUCCEEDED
    assert Conference.objects.filter(sync_state=SyncState.SYNCED).count() == 2


def test_a_link_that_would_carry_the_token_elsewhere_fails_the_run_cleanly(space, witness):
    mirror_two_conferences(space)
    link = f"http://127.0.0.1:{witness.port}\\@127.0.0.1:{space.port}{CONFERENCES}?page=2"
    space.answer = lambda h: h.send_page([row(3)], link)

    with pytest.raises(UnexpectedResponseError):
        sync.sync_conferences()

    assert witness.credentials_received == 0 and witness.requests == []
    run = latest_run()
    assert run.outcome == Outcome.FAILED
    assert "links.next" in run.error and "not following it" in run.error
    assert run.finished_at is not None
    # The listing did not complete: nothing is marked deleted, the page was not applied.
    assert Conference.objects.filter(sync_state=SyncState.SYNCED).count() == 2
    assert not Conference.objects.filter(name="room-3").exists()


def test_the_task_and_the_command_report_a_bad_link_without_a_traceback(space, witness, caplog):
    link = f"//127.0.0.1:{witness.port}{CONFERENCES}?page=2"
    space.answer = lambda h: h.send_page([row(1)], link)

    with caplog.at_level(logging.INFO):
        assert sync_tasks.sync_conferences.apply(kwargs={"trigger": "schedule"}).get() == "failed"
    assert not [r for r in caplog.records if r.exc_info]
    with pytest.raises(CommandError) as caught:
        call_command("sync_signalwire", "--conferences")
    assert "points outside the Space" in str(caught.value)
    assert witness.requests == []
    assert [run.outcome for run in SyncRun.objects.all()] == [Outcome.FAILED, Outcome.FAILED]


def test_a_pagination_loop_fails_the_run_and_marks_nothing_deleted(space):
    mirror_two_conferences(space)

    def loop(h):
        if "page_token" not in h.query:
            h.send_page([row(1)], f"{CONFERENCES}?page_token=B")
        else:  # back to the first page, as the sync asked for it
            h.send_page([row(5)], f"{CONFERENCES}?page_size=1000")

    space.answer = loop
    requests_before = len(space.requests)
    with pytest.raises(UnexpectedResponseError):
        sync.sync_conferences()

    assert len(space.requests) - requests_before == 2
    run = latest_run()
    assert run.outcome == Outcome.FAILED and "loop" in run.error
    assert run.marked_deleted == 0
    assert not Conference.objects.filter(sync_state=SyncState.DELETED_REMOTELY).exists()


def test_an_endless_listing_fails_the_run_where_its_first_page_bounds_it(space, settings):
    settings.SIGNALWIRE_MAX_LIST_ROWS = 50

    def endless(h):
        n = len(space.requests)
        h.send_page([row(n * 10 + i) for i in range(10)], f"{CONFERENCES}?page_token=p{n}")

    space.answer = endless
    with pytest.raises(UnexpectedResponseError):
        sync.sync_conferences(page_size=10)

    assert len(space.requests) == 6
    run = latest_run()
    assert run.outcome == Outcome.FAILED and "stopped reading it" in run.error
    assert run.marked_deleted == 0


def test_an_oversized_answer_fails_the_run_with_the_setting_named(space, settings):
    settings.SIGNALWIRE_MAX_RESPONSE_BYTES = 64 * 1024
    space.answer = lambda h: h.endless_chunks()
    with pytest.raises(UnexpectedResponseError):
        sync.sync_conferences()
    run = latest_run()
    assert run.outcome == Outcome.FAILED
    assert "SIGNALWIRE_MAX_RESPONSE_BYTES" in run.error


ROWS = 300_000


def mirror_as_the_sync_would(page: list[dict]) -> None:
    """Store rows as a sync of `page` stores them (its row shape), in one fast INSERT batch."""
    now = timezone.now()
    space_id = default_space_id()
    rows = [
        {
            **payloads.conference_fields(item),
            "space_id": space_id,
            "sync_state": SyncState.SYNCED,
            "last_synced_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for item in page
    ]
    with transaction.atomic():
        insert_rows(Conference, rows)


def test_a_page_of_300000_rows_is_compared_and_written_in_bounded_chunks(space, settings):
    settings.SIGNALWIRE_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
    page = [row(i) for i in range(ROWS)]
    mirror_as_the_sync_would(page)
    # One row gone from the huge page, one edited, one new.
    listed = [*page[1:], {**row(7), "display_name": "Edited"}, row(ROWS)]
    del listed[6]
    space.answer = lambda h: h.send_page(listed)

    run = sync.sync_conferences()

    assert (run.outcome, run.error) == (Outcome.SUCCEEDED, "")
    assert (run.pages, run.seen) == (1, ROWS)
    assert (run.unchanged, run.updated, run.created, run.marked_deleted) == (ROWS - 2, 1, 1, 1)
    assert Conference.objects.get(remote_id="c7").display_name == "Edited"
    assert Conference.objects.get(remote_id="c0").sync_state == SyncState.DELETED_REMOTELY
    assert Conference.objects.count() == ROWS + 1


@pytest.fixture
def common_sqlite_limit():
    """Bind at most 32,766 variables per statement, as SQLite's own default build does.

    Debian's SQLite allows 250,000; most platforms' builds allow what SQLite ships with.
    """
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    yield
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, previous)


def test_a_first_page_of_40000_new_rows_is_created_in_bounded_chunks(
    space, settings, common_sqlite_limit
):
    # More rows than such an SQLite binds in one statement: each chunk stays far below.
    settings.SIGNALWIRE_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
    page = [row(i) for i in range(40_000)]
    space.answer = lambda h: h.send_page(page)

    run = sync.sync_conferences()

    assert (run.outcome, run.error) == (Outcome.SUCCEEDED, "")
    assert (run.pages, run.seen, run.created) == (1, 40_000, 40_000)
    assert Conference.objects.count() == 40_000
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CREATE).count() == 40_000


def test_a_conference_listing_40000_tokens_is_mirrored_in_bounded_chunks(
    space, settings, common_sqlite_limit
):
    settings.SIGNALWIRE_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
    mirror_two_conferences(space)
    tokens = [
        {
            "id": f"t{i}",
            "name": f"guest {i}",
            "token": f"value-{i}",
            "scopes": ["room.self.audio_mute"],
        }
        for i in range(40_000)
    ]

    def answer(h):
        if h.path_only == f"{CONFERENCES}/c1/conference_tokens":
            h.send_page(tokens)
        else:
            h.send_page([])

    space.answer = answer
    run = sync.sync_conference_tokens()
    assert (run.outcome, run.error) == (Outcome.SUCCEEDED, "")
    assert (run.seen, run.created) == (40_000, 40_000)
    assert ConferenceToken.objects.filter(conference__remote_id="c1").count() == 40_000


# --- hostile data in the stream, token, session and recording syncs ----------------------

SESSIONS = "/api/video/room_sessions"
RECORDINGS = "/api/video/room_recordings"
# Times that parse but lie outside year 1..9999 once in UTC.
IMPOSSIBLE_TIMES = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00")
NUL = "\x00"


class FakeSpace:
    """Scripted listings served by the hostile Space, by path: set what a test needs."""

    def __init__(self) -> None:
        self.conferences: list[dict] = []
        self.streams: dict[str, list[dict]] = {}
        self.tokens: dict[str, list[dict]] = {}
        self.live: list[list[dict]] = [[]]
        self.completed: list[list[dict]] = [[]]
        self.members: dict[str, list[dict]] = {}
        self.endless_members: set[str] = set()
        self.recordings: list[dict] = []
        # Answers to reads of one recording by id.
        self.recording: dict[str, dict] = {}

    def answer(self, h) -> None:
        path = h.path_only
        if path == CONFERENCES:
            h.send_page(self.conferences)
        elif path.startswith(CONFERENCES) and path.endswith("/streams"):
            h.send_page(self.streams.get(path.split("/")[4], []))
        elif path.startswith(CONFERENCES) and path.endswith("/conference_tokens"):
            h.send_page(self.tokens.get(path.split("/")[4], []))
        elif path == SESSIONS:
            pages = self.live if h.query.get("status") == "in-progress" else self.completed
            self.send_pages(h, pages, SESSIONS)
        elif path.startswith(SESSIONS) and path.endswith("/members"):
            session_id = path.split("/")[4]
            if session_id in self.endless_members:
                n = int(h.query.get("page_token", "0"))
                rows = [{"id": f"m-{n}-{i}", "name": f"guest {n}.{i}"} for i in range(10)]
                h.send_page(rows, f"{path}?page_token={n + 1}")
            else:
                h.send_page(self.members.get(session_id, []))
        elif path == RECORDINGS:
            h.send_page(self.recordings)
        elif path.startswith(RECORDINGS) and path.split("/")[4] in self.recording:
            h.send_json(self.recording[path.split("/")[4]])
        else:
            h.send_json({"error": "not here"}, status=404)

    @staticmethod
    def send_pages(h, pages: list[list[dict]], path: str) -> None:
        # links.next carries the listing's filter, as SignalWire's does.
        n, status = int(h.query.get("page_token", "0")), h.query.get("status", "")
        if n + 1 < len(pages):
            h.send_page(pages[n], f"{path}?status={status}&page_token={n + 1}")
        else:
            h.send_page(pages[n])


@pytest.fixture
def fake(space):
    script = FakeSpace()
    space.answer = script.answer
    return script


def refuses_nul() -> bool:
    return connection.vendor == "postgresql"


def session(session_id: str, **fields) -> dict:
    return {"id": session_id, "name": "standup", "status": "in-progress", **fields}


@pytest.mark.parametrize("stamp", IMPOSSIBLE_TIMES)
def test_an_impossible_time_is_stored_as_unknown_with_a_note_by_every_sync(fake, stamp):
    fake.conferences = [
        {"id": "c1", "name": "room-1", "created_at": stamp, "join_from": stamp},
        row(2),
    ]
    fake.streams["c1"] = [
        {"id": "s1", "url": "rtmp://live.example.com/app/key-1", "created_at": stamp}
    ]
    fake.live = [[session("live-1", start_time=stamp), session("live-2")]]
    fake.completed = [[session("done-1", status="completed", end_time=stamp)]]
    fake.members = {"live-1": [{"id": "m1", "name": "ann", "join_time": stamp}]}
    fake.recordings = [{"id": "r1", "status": "completed", "started_at": stamp}]

    runs = [
        sync.sync_conferences(),
        sync.sync_streams(),
        sessions.sessions_refresh_live(),
        sessions.sessions_sync_history(),
        sync.recordings_sync(),
    ]
    # A second round: the rows stored last time do not fail later runs either.
    runs += [sync.sync_conferences(), sync.sync_streams(), sessions.sessions_refresh_live()]

    assert [(r.outcome, r.error) for r in runs] == [(Outcome.SUCCEEDED, "")] * len(runs)
    conference = Conference.objects.get(remote_id="c1")
    assert (conference.remote_created_at, conference.join_from) == (None, None)
    assert conference.raw["join_from"] == stamp and conference.sync_state == SyncState.SYNCED
    assert "join_from" in conference.last_error and "created_at" in conference.last_error
    assert Conference.objects.get(remote_id="c2").last_error == ""
    stream = Stream.objects.get(remote_id="s1")
    assert stream.remote_created_at is None and stamp in stream.last_error
    assert stream.raw["created_at"] == stamp
    live = RoomSession.objects.get(remote_id="live-1")
    assert live.start_time is None and live.raw["start_time"] == stamp
    assert "start_time" in live.sync_note and stamp in live.sync_note
    assert RoomSession.objects.get(remote_id="live-2").sync_note == ""
    member = SessionMember.objects.get(remote_id="m1")
    assert member.join_time is None and "join_time" in member.sync_note
    done = RoomSession.objects.get(remote_id="done-1")
    assert done.end_time is None and "end_time" in done.sync_note
    recording = Recording.objects.get(remote_id="r1")
    assert recording.started_at is None and "started_at" in recording.sync_note


def test_a_recording_too_large_to_store_is_kept_with_an_unknown_size(fake):
    fake.recordings = [
        {"id": "r-huge", "status": "completed", "size_in_bytes": 2**70},
        {"id": "r-ok", "status": "completed", "size_in_bytes": 1024},
    ]

    run = sync.recordings_sync()

    assert (run.outcome, run.errors, run.created) == (Outcome.SUCCEEDED, 0, 2)
    huge = Recording.objects.get(remote_id="r-huge")
    assert huge.size_in_bytes is None and huge.raw["size_in_bytes"] == 2**70
    assert "size_in_bytes" in huge.sync_note
    assert Recording.objects.get(remote_id="r-ok").size_in_bytes == 1024


def test_the_recordings_list_totals_sizes_past_what_64_bits_hold(fake, admin_client):
    fake.recordings = [
        {"id": f"r{i}", "status": "completed", "size_in_bytes": 2**62} for i in range(2)
    ]
    assert sync.recordings_sync().created == 2

    answer = admin_client.get("/admin/rooms/recording/")

    assert answer.status_code == 200
    assert answer.context["recording_totals"]["size"] == 2**63
    assert "8388608.0 TiB" in answer.content.decode()


def test_the_same_recording_twice_on_one_page_is_stored_once(fake):
    first = {"id": "r1", "status": "completed", "format": "mp4"}
    fake.recordings = [first, {**first, "format": "webm"}, {"id": "r2", "status": "completed"}]

    run = sync.recordings_sync()

    assert (run.outcome, run.created, run.errors) == (Outcome.SUCCEEDED, 2, 1)
    assert "r1" in run.error and "listed twice" in run.error
    assert Recording.objects.get(remote_id="r1").format == "mp4"


def test_two_recordings_read_back_with_one_id_are_stored_once(fake):
    fake.recordings = [
        {"id": "r-a", "status": "processing"}, {"id": "r-b", "status": "processing"}
    ]
    assert sync.recordings_sync().created == 2
    # Neither is listed any more; read back by id, a broken Space answers both as one.
    fake.recordings = []
    fake.recording = {
        "r-a": {"id": "r-c", "status": "completed", "format": "mp4"},
        "r-b": {"id": "r-c", "status": "completed", "format": "webm"},
    }

    runs = [sync.recordings_sync(), sync.recordings_sync()]

    for run in runs:
        assert run.outcome == Outcome.SUCCEEDED, run.error
    assert runs[0].errors == 1 and "r-c" in runs[0].error and "listed twice" in runs[0].error
    assert Recording.objects.get(remote_id="r-c").format == "mp4"


def long_id(prefix: str) -> str:
    return prefix + "x" * (65 - len(prefix))


def test_rows_the_database_cannot_hold_are_left_out_and_named_as_run_errors(fake):
    """On PostgreSQL each of these failed a whole run; on SQLite, long ids were stored."""
    fake.conferences = [row(1)]
    fake.streams["c1"] = [
        {"id": "s-nul", "url": f"rtmp://live.example.com/app/k{NUL}ey"},
        {"id": "s-ok", "url": "rtmp://live.example.com/app/key"},
    ]
    fake.tokens["c1"] = [
        {"id": "t-nul", "name": f"guest{NUL}", "token": "value-1", "scopes": []},
        {"id": "t-ok", "name": "moderator", "token": "value-2", "scopes": []},
    ]
    fake.live = [[
        session("s-room-nul", name=f"stand{NUL}up"),
        session(long_id("s-long")),
        session("s-twice"),
        session("s-twice", locked=True),
        session("s-ok"),
    ]]
    fake.members = {
        "s-ok": [{"id": "m-nul", "name": f"a{NUL}n"}, {"id": "m-ok", "name": "bo"}]
    }
    fake.recordings = [
        {"id": "r-nul", "status": "completed", "format": f"mp{NUL}4"},
        {"id": long_id("r-long"), "status": "completed"},
        {"id": "r-ok", "status": "completed"},
    ]
    assert sync.sync_conferences().outcome == Outcome.SUCCEEDED

    streams_run, tokens_run, live_run, recordings_run = (
        sync.sync_streams(),
        sync.sync_conference_tokens(),
        sessions.sessions_refresh_live(),
        sync.recordings_sync(),
    )

    runs = (streams_run, tokens_run, live_run, recordings_run)
    assert [r.outcome for r in runs] == [Outcome.SUCCEEDED] * 4
    assert "too long" not in live_run.error
    assert f"Session {long_id('s-long')[:64]}...: not stored because its id is longer" in (
        live_run.error
    )
    assert "Session s-twice: its id is listed twice" in live_run.error
    assert f"Recording {long_id('r-long')[:64]}...: not stored because its id" in (
        recordings_run.error
    )
    assert RoomSession.objects.get(remote_id="s-twice").locked is None
    assert not RoomSession.objects.filter(remote_id__startswith="s-long").exists()
    assert not Recording.objects.filter(remote_id__startswith="r-long").exists()
    assert SessionMember.objects.filter(remote_id="m-ok").exists()
    assert Stream.objects.filter(remote_id="s-ok").exists()
    assert ConferenceToken.objects.filter(remote_id="t-ok").exists()
    assert Recording.objects.filter(remote_id="r-ok").exists()
    if refuses_nul():
        assert "Stream s-nul: not stored because url holds a NUL character" in streams_run.error
        assert "key" not in streams_run.error  # the url is a secret: named, never quoted
        assert "Token t-nul: not stored because name holds a NUL" in tokens_run.error
        assert "Session s-room-nul: not stored because name holds a NUL" in live_run.error
        assert "Member m-nul: not stored because name holds a NUL" in live_run.error
        assert "Recording r-nul: not stored because format holds a NUL" in recordings_run.error
        assert (streams_run.errors, tokens_run.errors) == (1, 1)
        assert (live_run.errors, recordings_run.errors) == (4, 2)
        assert not Stream.objects.filter(remote_id="s-nul").exists()
        assert not RoomSession.objects.filter(remote_id="s-room-nul").exists()
        assert not SessionMember.objects.filter(remote_id="m-nul").exists()
        assert not Recording.objects.filter(remote_id="r-nul").exists()
        assert RoomSession.objects.get(remote_id="s-ok").member_count == 1
    else:  # SQLite keeps a NUL as SignalWire sent it
        assert (live_run.errors, recordings_run.errors) == (2, 1)
        assert RoomSession.objects.get(remote_id="s-room-nul").room_name == f"stand{NUL}up"
        assert Recording.objects.get(remote_id="r-nul").format == f"mp{NUL}4"
        assert RoomSession.objects.get(remote_id="s-ok").member_count == 2


def test_a_stream_or_token_left_out_is_not_taken_for_deleted(fake):
    fake.conferences = [row(1)]
    fake.streams["c1"] = [{"id": "s1", "url": "rtmp://live.example.com/app/key"}]
    fake.tokens["c1"] = [{"id": "t1", "name": "guest", "token": "value-1", "scopes": []}]
    sync.sync_conferences()
    sync.sync_streams()
    sync.sync_conference_tokens()
    # Now listed with an id too long to store: still in SignalWire, so not gone.
    fake.streams["c1"][0]["url"] = "rtmp://live.example.com/app/" + "k" * 3000
    fake.tokens["c1"][0]["token"] = "v" * 300

    streams_run, tokens_run = sync.sync_streams(), sync.sync_conference_tokens()

    assert (streams_run.errors, streams_run.marked_deleted) == (1, 0)
    assert "url is longer than" in streams_run.error
    assert (tokens_run.errors, tokens_run.marked_deleted) == (1, 0)
    assert Stream.objects.get(remote_id="s1").sync_state == SyncState.SYNCED
    assert ConferenceToken.objects.get(remote_id="t1").token == "value-1"


def test_a_members_listing_that_never_ends_stops_at_the_session_cap(fake, space, settings):
    settings.SIGNALWIRE_MAX_SESSION_MEMBERS = 30
    settings.SIGNALWIRE_MAX_LIST_ROWS = 5000  # bounds the old, uncapped reading
    fake.live = [[session("s1"), session("s2")]]
    fake.members = {"s1": [{"id": "m1", "name": "ann"}, {"id": "m2", "name": "bo"}]}
    sessions.sessions_refresh_live()
    fake.endless_members.add("s1")
    before = len(space.requests)

    run = sessions.sessions_refresh_live()

    member_pages = [
        r for r in space.requests[before:] if r["path"] == f"{SESSIONS}/s1/members"
    ]
    assert run.outcome == Outcome.SUCCEEDED
    assert len(member_pages) == 4  # 31 rows at 10 a page: the cap and one more
    assert run.errors == 1 and "SIGNALWIRE_MAX_SESSION_MEMBERS" in run.error
    assert "more than 30" in run.error and "session s1" in run.error
    kept = RoomSession.objects.get(remote_id="s1")
    assert kept.member_count == 2
    assert sorted(kept.members.values_list("name", flat=True)) == ["ann", "bo"]


def test_negative_costs_are_unknown_and_never_lower_usage(fake):
    fake.live = [[
        session("s1", start_time="2026-12-01T10:00:00Z", cost_in_dollars=-500),
        session("s2", start_time="2026-12-01T11:00:00Z", cost_in_dollars="1.25"),
    ]]
    fake.members = {"s1": [{"id": "m1", "name": "ann", "cost_in_dollars": -2.5}]}
    fake.recordings = [{"id": "r1", "status": "completed", "cost_in_dollars": "-0.01"}]

    sessions.sessions_refresh_live()
    sync.recordings_sync()

    negative = RoomSession.objects.get(remote_id="s1")
    assert negative.cost_in_dollars is None and "cost_in_dollars -500" in negative.sync_note
    assert negative.raw["cost_in_dollars"] == -500
    member = SessionMember.objects.get(remote_id="m1")
    assert member.cost_in_dollars is None and "cost_in_dollars" in member.sync_note
    recording = Recording.objects.get(remote_id="r1")
    assert recording.cost_in_dollars is None and "cost_in_dollars" in recording.sync_note
    by_room = usage.usage_by_room(days=90, today=date(2026, 12, 7))
    assert [(u.label, u.sessions, u.cost) for u in by_room] == [
        ("standup", 2, Decimal("1.25"))
    ]


def test_a_member_listed_twice_counts_once(fake):
    fake.live = [[session("s1")]]
    fake.members = {
        "s1": [
            {"id": "m1", "name": "ann", "duration": 60, "leave_time": "2026-12-01T10:01:00Z"},
            {"id": "m1", "name": "ann", "duration": 60, "leave_time": "2026-12-01T10:01:00Z"},
            {"id": "m2", "name": "bo"},
        ]
    }

    run = sessions.sessions_refresh_live()

    counted = RoomSession.objects.get(remote_id="s1")
    assert (counted.member_count, counted.members_now, counted.member_seconds) == (2, 1, 60)
    assert counted.members.count() == 2
    assert run.errors == 1 and "Member m1: its id is listed twice" in run.error


def test_a_session_listed_twice_is_created_once(fake):
    # On two pages of the live listing: the refresh stores them in one batch.
    fake.live = [[session("s1"), session("s2")], [session("s1")]]

    run = sessions.sessions_refresh_live()

    assert (run.outcome, run.seen, run.created) == (Outcome.SUCCEEDED, 3, 2)
    assert RoomSession.objects.count() == 2
    again = sessions.sessions_refresh_live()
    assert (again.created, again.updated) == (0, 0)
