"""The sync against a hostile or broken Space (tests.hostile_space over real HTTP).

A bad link, a loop or an endless listing fails the run cleanly: recorded with a readable
error, no traceback, no deletion state changed. A page of any size is written in bounded
chunks.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from rooms import sync
from rooms.bulk_sql import insert_rows
from rooms.models import AuditEntry, Conference, ConferenceToken, SyncRun, SyncState
from rooms.signalwire import payloads
from rooms.signalwire.errors import UnexpectedResponseError
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
    rows = [
        {
            **payloads.conference_fields(item),
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
