"""Fault drills: outages, 429 storms, killed and overlapping syncs, malformed remote data.

Each drill runs the real parts together: the sandbox Space over HTTP, real Redis and, where
tasks matter, the session's real Celery worker process against the test database.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from rooms import services, sync
from rooms.connections import redis_client
from rooms.locks import lock_key
from rooms.models import UNPUSHED_STATES, Conference, Room, SyncRun, SyncState, environment_space
from rooms.signalwire.errors import UnexpectedResponseError
from rooms.sync.runs import lock_name
from rooms.tasks import push as push_tasks
from rooms.tasks import sync as sync_tasks
from sandbox.validation import conference_defaults
from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_PROJECT_ID, database_url
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
ROOMS_PATH = "/api/video/rooms"
CONFERENCES_PATH = "/api/video/conferences"
Outcome = SyncRun.Outcome

worker_drill = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def all_synced(*models) -> bool:
    """Tell whether no row of the given models waits for a push any more."""
    return not any(
        model.objects.filter(sync_state__in=UNPUSHED_STATES).exists() for model in models
    )


def creates_by_name(space, path: str) -> Counter:
    """Count the creates SignalWire acted on (2xx answers), per posted name."""
    return Counter(
        (r["body"] or {}).get("name")
        for r in space.requests
        if r["method"] == "POST" and r["path"] == path and r["status"] == 200
    )


def remote_by_name(objects: dict) -> dict:
    return {obj["name"]: obj for obj in objects.values()}


def drop_sync_locks() -> None:
    """Free the sync locks a previous drill may have left, without touching the broker."""
    client = redis_client()
    for key in client.scan_iter(lock_key("sync:") + "*"):
        client.delete(key)


@pytest.fixture
def settled(sandbox):
    """Leave no fault, latency or sync lock behind (the worker fixture drains the worker)."""
    drop_sync_locks()
    yield sandbox
    sandbox.clear_faults()
    sandbox.set_latency(0)
    drop_sync_locks()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_push_a_test_leaves_waiting_in_the_worker_never_reaches_signalwire_later(
    settled, celery_worker
):
    from portal.celery import app
    from tests.conftest import worker_idle, worker_settle

    sandbox = settled
    room = services.room_create(data={"name": "drill-left-behind", "max_members": 4})
    Room.objects.filter(pk=room.pk).update(max_members=8, sync_state=SyncState.PENDING_PUSH)
    # As a retry would: the worker holds the push until its countdown ends.
    task = push_tasks.PUSH_TASKS["room"].apply_async(args=[room.pk], countdown=3)
    wait_until(
        lambda: (app.control.inspect(destination=[celery_worker.name], timeout=1).scheduled()
                 or {}).get(celery_worker.name),
        timeout=15, message="the worker to hold the push",
    )

    worker_settle(celery_worker)  # what the end of every worker test does

    assert worker_idle(app, celery_worker.name)
    log = ROOT / ".run" / "test-worker.log"
    wait_until(
        lambda: f"Discarding revoked task: {push_tasks.PUSH_TASKS['room'].name}[{task.id}]"
        in log.read_text(errors="replace"),
        timeout=15, message="the worker to drop the held push when its countdown ended",
    )
    assert [r for r in sandbox.requests if r["method"] == "PUT"] == []
    assert sandbox.rooms[room.remote_id]["max_members"] == 4


# --- 1. SignalWire down while staff and scripts edit ----------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_edits_made_while_signalwire_is_down_all_land_once_and_in_order(
    settled, celery_worker, admin_client, form_post_data
):
    sandbox = settled
    room = services.room_create(data={"name": "drill-room", "display_name": "Original"})
    conference = services.conference_create(data={"name": "drill-conf", "display_name": "Conf"})
    assert room.sync_state == conference.sync_state == SyncState.SYNCED

    sandbox.inject_fault(503)  # every request fails until cleared
    # Admin: a new room, and two successive edits of one existing room.
    add_url = reverse("admin:rooms_room_add")
    page = admin_client.get(add_url)
    response = admin_client.post(
        add_url, form_post_data(page, name="drill-admin-new", max_members="7")
    )
    assert response.status_code == 302
    change_url = reverse("admin:rooms_room_change", args=[room.pk])
    for display_name in ("First edit", "Second edit"):
        page = admin_client.get(change_url)
        response = admin_client.post(change_url, form_post_data(page, display_name=display_name))
        assert response.status_code == 302
    # Shell: a new room, and two successive saves of one existing conference.
    Room.objects.create(name="drill-shell-new", max_members=4)
    for display_name in ("Shell one", "Shell two"):
        row = Conference.objects.get(pk=conference.pk)
        row.display_name = display_name
        row.save()

    # Every edit is kept locally and marked pending; SignalWire still has the old values.
    rows = {r.name: r for r in [*Room.objects.all(), *Conference.objects.all()]}
    assert {name: r.sync_state for name, r in rows.items()} == {
        name: SyncState.PENDING_PUSH for name in rows
    }
    assert rows["drill-room"].display_name == "Second edit"
    assert rows["drill-conf"].display_name == "Shell two"
    assert sandbox.rooms[room.remote_id]["display_name"] == "Original"
    assert set(remote_by_name(sandbox.rooms)) == {"drill-room"}
    # The worker keeps trying (and failing) meanwhile: the pushes back off, nothing lands.
    def refused_writes() -> int:
        writes = [r for r in list(sandbox.requests) if r["method"] in ("PUT", "POST")]
        return sum(1 for r in writes if r["status"] == 503)

    wait_until(lambda: refused_writes() > 0, timeout=15, message="a refused write")
    seen = refused_writes()
    # And it tries again later.
    wait_until(lambda: refused_writes() > seen, timeout=30, message="another refused write")
    assert creates_by_name(sandbox, ROOMS_PATH) == Counter({"drill-room": 1})

    sandbox.clear_faults()
    # The on-commit push tasks land everything through their own backoff.
    wait_until(
        lambda: all_synced(Conference, Room), timeout=60,
        message=lambda: str([(r.name, r.sync_state, r.last_error) for r in Room.objects.all()]),
    )

    rooms = remote_by_name(sandbox.rooms)
    assert set(rooms) == {"drill-room", "drill-admin-new", "drill-shell-new"}
    assert rooms["drill-room"]["display_name"] == "Second edit"  # the later edit won
    assert rooms["drill-admin-new"]["max_members"] == 7
    assert rooms["drill-shell-new"]["max_members"] == 4
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Shell two"
    # None twice: one create acted on per new room, none for the edited ones.
    assert creates_by_name(sandbox, ROOMS_PATH) == Counter(
        {"drill-room": 1, "drill-admin-new": 1, "drill-shell-new": 1}
    )
    assert creates_by_name(sandbox, CONFERENCES_PATH) == Counter({"drill-conf": 1})
    # Local rows now mirror what SignalWire holds.
    for local in Room.objects.all():
        assert local.remote_id == rooms[local.name]["id"]
        assert local.display_name == rooms[local.name]["display_name"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_creates_whose_answer_was_lost_are_adopted_never_repeated(
    settled, celery_worker
):
    sandbox = settled
    # SignalWire acts on every request but the connection drops before the answer.
    sandbox.inject_fault("drop", after_processing=True)
    Room.objects.create(name="drill-lost-answer", max_members=9)
    services.room_create(data={"name": "drill-lost-admin", "max_members": 5})
    assert set(Room.objects.values_list("sync_state", flat=True)) == {SyncState.PENDING_PUSH}
    # The worker's push (queued after commit) cannot hear an answer either: wait until it
    # has tried and failed once.
    wait_until(
        Room.objects.filter(name="drill-lost-answer", push_attempts__gte=1)
        .exclude(last_error="")
        .exists,
        timeout=45,
        message="the worker's push to fail once",
    )

    sandbox.clear_faults()
    push_tasks.push_pending.delay()  # the periodic safety net, queued now
    wait_until(lambda: all_synced(Room), timeout=60, message="every room to be pushed")

    rooms = remote_by_name(sandbox.rooms)
    assert set(rooms) == {"drill-lost-answer", "drill-lost-admin"}
    posts = Counter(
        r["body"]["name"]
        for r in sandbox.requests
        if r["method"] == "POST" and r["path"] == ROOMS_PATH
    )
    # Each create was sent once; every retry looked the name up instead of posting again.
    assert posts == Counter({"drill-lost-answer": 1, "drill-lost-admin": 1})
    for local in Room.objects.all():
        assert local.remote_id == rooms[local.name]["id"], (
            local.sync_state, local.last_error, sandbox.requests
        )


# --- 2. 429 storms ---------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("retry_after", "attempts"),
    [(None, 4), (1, 3), (60, 1)],
    ids=["no-retry-after", "retry-after-within-the-cap", "retry-after-beyond-the-cap"],
)
def test_a_429_storm_is_retried_within_the_caps_and_loses_no_edit(
    settled, celery_worker, settings, retry_after, attempts, caplog
):
    sandbox = settled
    settings.SIGNALWIRE_RETRIES = 3
    settings.SIGNALWIRE_RETRY_BACKOFF = 0.05
    settings.SIGNALWIRE_RETRY_MAX_WAIT = 2.0
    room = services.room_create(data={"name": "drill-storm", "max_members": 10})
    path = f"{ROOMS_PATH}/{room.remote_id}"

    sandbox.clear_requests()
    sandbox.inject_fault(429, retry_after=retry_after)
    started = time.monotonic()
    with caplog.at_level("INFO", logger="rooms.signalwire"):
        updated = services.room_update(room=room, data={"max_members": 11})
    elapsed = time.monotonic() - started

    # Bounded: at most 1 + SIGNALWIRE_RETRIES attempts and SIGNALWIRE_RETRY_MAX_WAIT of
    # waiting; a Retry-After is honoured, and one beyond the cap stops the retries. This
    # call's attempts are the storm's first PUTs: the worker may push the kept edit at once.
    calls = [r.getMessage() for r in caplog.records if f"PUT {path} 429" in r.getMessage()]
    assert len(calls) == 1 and calls[0].endswith(f"after {attempts} attempt(s)"), calls
    assert attempts <= settings.SIGNALWIRE_RETRIES + 1
    puts = [r for r in sandbox.requests if r["method"] == "PUT" and r["path"] == path]
    assert len(puts) >= attempts
    puts = puts[:attempts]
    assert {r["status"] for r in puts} == {429}
    assert elapsed < settings.SIGNALWIRE_RETRY_MAX_WAIT + 1.0
    gaps = [b["time"] - a["time"] for a, b in zip(puts, puts[1:], strict=False)]
    if gaps:
        least = retry_after or settings.SIGNALWIRE_RETRY_BACKOFF  # backs off even without
        assert min(gaps) >= least * 0.9
    # Not lost: kept pending with the new value.
    assert updated.sync_state == SyncState.PENDING_PUSH
    assert Room.objects.get(pk=room.pk).max_members == 11
    assert sandbox.rooms[room.remote_id]["max_members"] == 10

    # The worker's push meets the storm, then the storm passes.
    refused = len([r for r in sandbox.requests if r["status"] == 429])
    wait_until(
        lambda: len([r for r in list(sandbox.requests) if r["status"] == 429]) > refused,
        timeout=15, message="another 429",
    )
    sandbox.clear_faults()
    # The worker's retry waits out the Retry-After it met (60 s in the last case) first.
    wait_until(
        lambda: all_synced(Room), timeout=60 + (retry_after or 0),
        message="the room to be pushed",
    )
    assert sandbox.rooms[room.remote_id]["max_members"] == 11
    landed = [r for r in sandbox.requests if r["path"] == path and r["status"] == 200]
    assert [r["method"] for r in landed] == ["PUT"]  # landed exactly once
    storm = [r for r in sandbox.requests if r["status"] == 429]
    assert storm and all(r["path"] == path for r in storm)


# --- 3. a worker killed mid-sync -------------------------------------------------------


def _subprocess_env(sandbox_url: str, **extra: str) -> dict:
    with_db = database_url(connection.settings_dict)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": with_db,
        "SIGNALWIRE_SPACE_URL": sandbox_url,
        "SIGNALWIRE_PROJECT_ID": SANDBOX_PROJECT_ID,
        "SIGNALWIRE_API_TOKEN": SANDBOX_API_TOKEN,
        **extra,
    }


@pytest.mark.django_db(transaction=True)
def test_a_sync_killed_mid_run_is_taken_over_by_the_next_run_at_once(
    settled, sandbox_server, settings
):
    sandbox = settled
    # Long enough that only the lock's liveness check, not its timeout, can free it.
    settings.SIGNALWIRE_SYNC_LOCK_TIMEOUT = 120
    sandbox.seed(rooms=10, seed=71)
    first = sync.sync_rooms(page_size=5)
    assert (first.outcome, first.created) == (Outcome.SUCCEEDED, 10)
    gone = next(iter(sandbox.rooms))
    sandbox.delete_room(gone)  # the one room that really was deleted remotely
    for number, remote_id in enumerate(sandbox.rooms):
        sandbox.update_room(remote_id, {"display_name": f"Edited {number}"})

    # A real process runs the sync slowly, page by page; it is killed mid-run.
    sandbox.set_latency(0.4)
    env = _subprocess_env(sandbox_server.url, SIGNALWIRE_SYNC_LOCK_TIMEOUT="120")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "sync_signalwire", "--rooms", "--page-size", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            SyncRun.objects.filter(outcome=Outcome.RUNNING, trigger="command").exists,
            timeout=30, message="the command's run to start",
        )
        wait_until(
            lambda: SyncRun.objects.get(trigger="command").pages >= 2,
            timeout=30, interval=0.05, message="the command's second page",
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    killed = SyncRun.objects.get(trigger="command")
    assert killed.outcome == Outcome.RUNNING and killed.finished_at is None
    sandbox.set_latency(0)

    # Its lock names a process that is gone: the next run takes it over at once.
    started = time.monotonic()
    run = sync.sync_rooms(page_size=5, trigger="drill")

    assert run.outcome == Outcome.SUCCEEDED
    assert time.monotonic() - started < 30
    killed.refresh_from_db()
    assert killed.outcome == Outcome.FAILED and killed.error.startswith("Interrupted")
    assert f"process {proc.pid} " in killed.error
    # Only the room really deleted remotely is marked; the others stay synced.
    assert run.marked_deleted == 1
    deleted = Room.objects.filter(sync_state=SyncState.DELETED_REMOTELY)
    assert list(deleted.values_list("remote_id", flat=True)) == [gone]
    assert Room.objects.filter(sync_state=SyncState.SYNCED).count() == 9
    assert all(r.display_name.startswith("Edited") for r in Room.objects.exclude(remote_id=gone))


@pytest.mark.django_db(transaction=True)
def test_an_abandoned_lock_and_running_record_do_not_mark_rooms_deleted(settled, settings):
    sandbox = settled
    settings.SIGNALWIRE_SYNC_LOCK_TIMEOUT = 1
    sandbox.seed(rooms=4, seed=72)
    sync.sync_rooms()
    # A worker died holding the lock after writing its "running" record.
    rooms_lock = lock_key(lock_name("rooms", environment_space()))
    abandoned = redis_client().lock(rooms_lock, timeout=1, thread_local=False)
    assert abandoned.acquire(blocking=False)
    dead = SyncRun.objects.create(kind=SyncRun.Kind.ROOMS, trigger="schedule")

    assert sync_tasks.sync_rooms.apply(kwargs={"trigger": "schedule"}).get() == "skipped"
    wait_until(
        lambda: not redis_client().exists(rooms_lock), timeout=10,
        message="the dead run's lock to expire",
    )
    assert sync_tasks.sync_rooms.apply(kwargs={"trigger": "schedule"}).get() == "succeeded"

    dead.refresh_from_db()
    assert dead.outcome == Outcome.FAILED
    latest = sync.latest_sync_run(SyncRun.Kind.ROOMS)
    assert (latest.outcome, latest.marked_deleted, latest.unchanged) == (Outcome.SUCCEEDED, 0, 4)
    assert not Room.objects.exclude(sync_state=SyncState.SYNCED).exists()


# --- 4. overlapping runs ---------------------------------------------------------------


def _worker_run_started() -> bool:
    return SyncRun.objects.filter(
        kind=SyncRun.Kind.ROOMS, trigger="schedule", outcome=Outcome.RUNNING
    ).exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["manual command", "second scheduler"])
def test_overlapping_syncs_run_once_and_the_other_exits(
    settled, celery_worker, second
):
    sandbox = settled
    sandbox.seed(rooms=3, seed=73)
    sandbox.set_latency(1.5)  # the worker's run stays in its listing for a while
    sync_tasks.sync_rooms.delay(trigger="schedule")
    wait_until(_worker_run_started, timeout=20, interval=0.05)

    if second == "manual command":
        with pytest.raises(CommandError, match="another sync of rooms is running"):
            call_command("sync_signalwire", "--rooms", stdout=io.StringIO(), stderr=io.StringIO())
        trigger = "command"
    else:
        # A second beat scheduler's task, run by another worker (this process).
        assert sync_tasks.sync_rooms.apply(kwargs={"trigger": "beat-2"}).get() == "skipped"
        trigger = "beat-2"
    sandbox.set_latency(0)

    wait_until(
        SyncRun.objects.filter(trigger="schedule", outcome=Outcome.SUCCEEDED).exists,
        timeout=30, message="the worker's run to succeed",
    )
    runs = list(SyncRun.objects.filter(kind=SyncRun.Kind.ROOMS).values_list("trigger", "outcome"))
    assert sorted(runs) == sorted([("schedule", Outcome.SUCCEEDED), (trigger, Outcome.SKIPPED)])
    assert Room.objects.count() == 3
    lists = [r for r in sandbox.requests if r["method"] == "GET" and r["path"] == ROOMS_PATH]
    assert len(lists) == 1  # the skipped run never listed anything


# --- 5. malformed remote data ----------------------------------------------------------


def _conference(number: int, **fields) -> dict:
    stamp = f"2024-05-0{number % 9 + 1}T10:00:00.000000Z"
    base = {
        "id": f"conf-{number}",
        "name": f"odd-{number}",
        "display_name": f"Odd {number}",
        **conference_defaults(),
        "created_at": stamp,
        "updated_at": stamp,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _MISSING}


_MISSING = object()


class FakeSpace:
    """A tiny HTTP server answering the listings with whatever pages a test hands it."""

    def __init__(self, pages: dict[str, list[bytes]]) -> None:
        self.pages = pages
        self.seen: list[str] = []
        space = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                space.seen.append(self.path)
                number = int(parse_qs(parts.query).get("page", ["0"])[0])
                bodies = space.pages.get(parts.path)
                if bodies is None or number >= len(bodies):
                    self.send_response(404)
                    self.end_headers()
                    return
                body = bodies[number]
                self.send_response(200)
                kind = "text/html" if body.startswith(b"<") else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSpace:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def listing(path: str, data: list, page: int = 0, last: bool = True) -> bytes:
    links = {"self": f"{path}?page={page}", "first": f"{path}?page=0"}
    if not last:
        links["next"] = f"{path}?page={page + 1}"
    return json.dumps({"links": links, "data": data}).encode()


@pytest.fixture
def fake_space(settings):
    """Point the portal at a FakeSpace serving the given pages."""
    drop_sync_locks()
    made = []

    def build(pages: dict[str, list[bytes]]) -> FakeSpace:
        space = FakeSpace(pages).__enter__()
        made.append(space)
        settings.SIGNALWIRE_SPACE_URL = space.url
        settings.SIGNALWIRE_PROJECT_ID = SANDBOX_PROJECT_ID
        settings.SIGNALWIRE_API_TOKEN = SANDBOX_API_TOKEN
        settings.SIGNALWIRE_RETRIES = 0
        return space

    yield build
    for space in made:
        space.__exit__()
    drop_sync_locks()


ODD_CONFERENCES = [
    _conference(1),
    # Missing fields: only an id, a name and the stamps.
    {"id": "conf-2", "name": "odd-2", "created_at": "2024-05-02T10:00:00Z"},
    # Wrong types everywhere.
    _conference(
        3,
        display_name=42,
        record_on_start="sometimes",
        join_from=12345,
        join_until="not a date",
        meta=[1, 2, 3],
        dark_primary=7,
        enable_room_previews="yes",
        created_at=["not", "a", "stamp"],
    ),
    # Values the portal does not know yet, and a field it has never heard of.
    _conference(4, layout="hexagon-9", quality="8k", size="huge", hologram={"depth": 3}),
    # Rows that cannot be stored: no name, a name too long for the column.
    _conference(5, name=None),
    _conference(6, name="x" * 150),
]


@pytest.mark.django_db
def test_malformed_rows_are_recorded_and_the_rest_kept(fake_space, admin_client):
    fake_space({CONFERENCES_PATH: [listing(CONFERENCES_PATH, ODD_CONFERENCES)]})

    run = sync.sync_conferences()

    assert run.outcome == Outcome.SUCCEEDED
    assert (run.seen, run.created, run.errors) == (6, 4, 2)
    assert "conf-5" in run.error and "no name" in run.error
    assert "conf-6" in run.error and "longer than" in run.error
    odd = {c.remote_id: c for c in Conference.objects.all()}
    assert set(odd) == {"conf-1", "conf-2", "conf-3", "conf-4"}
    assert (odd["conf-3"].display_name, odd["conf-3"].meta, odd["conf-3"].join_from) == (
        "",
        None,
        None,
    )
    assert odd["conf-3"].raw["record_on_start"] == "sometimes"  # kept raw as it came
    assert (odd["conf-4"].layout, odd["conf-4"].quality, odd["conf-4"].size) == (
        "hexagon-9",
        "8k",
        "huge",
    )
    assert odd["conf-4"].raw["hologram"] == {"depth": 3}

    # Admin still renders the list and every odd row's change form.
    listing_page = admin_client.get(reverse("admin:rooms_conference_changelist"))
    assert listing_page.status_code == 200
    for row in odd.values():
        assert f"/{row.pk}/change/".encode() in listing_page.content
    for row in odd.values():
        page = admin_client.get(reverse("admin:rooms_conference_change", args=[row.pk]))
        assert page.status_code == 200, row.remote_id
        history = admin_client.get(reverse("admin:rooms_conference_history", args=[row.pk]))
        assert history.status_code == 200
    runs = admin_client.get(reverse("admin:rooms_syncrun_change", args=[run.pk]))
    assert runs.status_code == 200 and b"conf-5" in runs.content
    filtered = admin_client.get(
        reverse("admin:rooms_conference_changelist") + "?layout=hexagon-9"
    )
    assert filtered.status_code == 200


@pytest.mark.django_db
def test_odd_rooms_are_kept_and_render_in_admin(fake_space, admin_client):
    rooms = [
        {"id": "room-1", "name": "odd-room-1", "max_members": "lots", "fps": "fast",
         "remove_after_seconds_elapsed": -5, "sync_audio_video": "maybe",
         "layout": "spiral", "created_at": "2024-05-01T10:00:00Z"},
        {"id": "room-2", "name": "odd-room-2", "max_members": 70000,
         "created_at": "2024-05-01T10:00:00Z"},
        {"id": "room-3", "name": "odd-room-3", "quality": None, "layout": None},
    ]
    fake_space({ROOMS_PATH: [listing(ROOMS_PATH, rooms)]})

    run = sync.sync_rooms()

    assert run.outcome == Outcome.SUCCEEDED
    stored = {r.remote_id: r for r in Room.objects.all()}
    # A value that does not fit a column is refused with its reason; the rest is kept.
    assert "room-1" in run.error and "remove_after_seconds_elapsed" in run.error
    assert "room-2" in run.error and "max_members" in run.error
    assert set(stored) == {"room-3"}
    assert run.errors == 2
    assert admin_client.get(reverse("admin:rooms_room_changelist")).status_code == 200
    for row in stored.values():
        page = admin_client.get(reverse("admin:rooms_room_change", args=[row.pk]))
        assert page.status_code == 200
        mint = admin_client.get(reverse("admin:rooms_room_mint_token", args=[row.pk]))
        assert mint.status_code == 200


@pytest.mark.django_db
def test_a_non_json_page_fails_the_run_keeps_earlier_pages_and_deletes_nothing(
    fake_space, admin_client
):
    # A previous complete sync knew three conferences.
    known = [_conference(n) for n in (1, 2, 3)]
    fake_space({CONFERENCES_PATH: [listing(CONFERENCES_PATH, known)]})
    assert sync.sync_conferences().created == 3

    # Now page 0 is fine (one edited, one new) but page 1 is an HTML error page.
    edited = _conference(1, display_name="Edited", updated_at="2024-06-01T00:00:00Z")
    space = fake_space(
        {
            CONFERENCES_PATH: [
                listing(CONFERENCES_PATH, [edited, _conference(4)], last=False),
                b"<html><body>502 Bad Gateway</body></html>",
            ]
        }
    )
    with pytest.raises(UnexpectedResponseError):
        sync.sync_conferences()

    assert any("page=1" in path for path in space.seen)
    run = sync.latest_sync_run(SyncRun.Kind.CONFERENCES)
    assert run.outcome == Outcome.FAILED
    assert "not JSON" in run.error
    # The page that arrived was applied; nothing was marked deleted.
    assert Conference.objects.get(remote_id="conf-1").display_name == "Edited"
    assert Conference.objects.filter(remote_id="conf-4").exists()
    assert not Conference.objects.filter(sync_state=SyncState.DELETED_REMOTELY).exists()
    assert run.marked_deleted == 0
    page = admin_client.get(reverse("admin:rooms_syncrun_change", args=[run.pk]))
    assert page.status_code == 200


@pytest.mark.django_db
def test_a_listed_row_without_id_blocks_deletion_marks(fake_space):
    fake_space({CONFERENCES_PATH: [listing(CONFERENCES_PATH, [_conference(1), _conference(2)])]})
    sync.sync_conferences()

    odd = _conference(9, id=_MISSING)
    fake_space({CONFERENCES_PATH: [listing(CONFERENCES_PATH, [_conference(1), odd])]})
    run = sync.sync_conferences()

    assert run.outcome == Outcome.SUCCEEDED
    assert run.errors >= 1 and "no id" in run.error
    # conf-2 is missing from the listing, but the listing was not fully readable.
    assert run.marked_deleted == 0
    assert Conference.objects.get(remote_id="conf-2").sync_state == SyncState.SYNCED


# --- 6. slow SignalWire: two staff saves a second apart and a sync --------------------

DRILL_LATENCY = 25.0
# A web request may wait on SignalWire a few seconds at most.
PAGE_ANSWER_BUDGET = 8.0


def _save_conference_in_browser(browser, base_url: str, username: str, conference, name: str):
    """Log a staff member in, open a conference's change form and type a new display name."""
    from tests.browser_helpers import admin_url, login

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    login(page, base_url, username)
    page.goto(admin_url(base_url, "rooms_conference_change", conference.pk))
    page.locator("#id_display_name").fill(name)
    loads: list[float] = []
    page.on("load", lambda *_: loads.append(time.monotonic()))
    return context, page, loads


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_slow_signalwire_blocks_neither_other_staff_nor_the_sync(
    settled, celery_worker, browser, live_server, sandbox_server, settings
):
    from tests.browser_helpers import make_superuser

    sandbox = settled
    # The background budget of a real deployment: SignalWire's 25 s fit in its read timeout.
    settings.SIGNALWIRE_READ_TIMEOUT = 30.0
    settings.SIGNALWIRE_RETRIES = 4
    settings.SIGNALWIRE_RETRY_MAX_WAIT = 30.0
    first = services.conference_create(data={"name": "drill-slow-a", "display_name": "A"})
    second = services.conference_create(data={"name": "drill-slow-b", "display_name": "B"})
    make_superuser("alice")
    make_superuser("bob")
    staff = [
        _save_conference_in_browser(browser, live_server.url, "alice", first, "A edited"),
        _save_conference_in_browser(browser, live_server.url, "bob", second, "B edited"),
    ]
    sandbox.set_latency(DRILL_LATENCY)
    sync_proc = None
    clicked: list[float] = []
    try:
        for number, (_, page, _) in enumerate(staff):
            if number:
                page.wait_for_timeout(1000)  # staff B saves one second after staff A
            clicked.append(time.monotonic())
            page.get_by_role("button", name="Save", exact=True).first.click(no_wait_after=True)
            if number == 0:
                env = _subprocess_env(sandbox_server.url, SIGNALWIRE_READ_TIMEOUT="30")
                sync_proc = subprocess.Popen(
                    [sys.executable, "manage.py", "sync_signalwire", "--conferences"],
                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                )
        # Poll both pages (the browser's event loop runs while a page waits) until each
        # answered with a loaded page.
        def both_loaded() -> bool:
            staff[0][1].wait_for_timeout(100)
            return all(loads for _, _, loads in staff)

        wait_until(both_loaded, timeout=60, interval=0, message="both pages to answer")
        answers = [loads[0] - start if loads else None for (_, _, loads), start in
                   zip(staff, clicked, strict=True)]
        print(f"\ndrill page answers (s): {answers}")
        texts = [page.locator("body").inner_text() for _, page, _ in staff]
        sandbox.set_latency(0)  # SignalWire recovers
        output, _ = sync_proc.communicate(timeout=90)
        print(f"drill sync exit {sync_proc.returncode}: {output.decode()[-400:]}")
    finally:
        sandbox.set_latency(0)
        if sync_proc is not None and sync_proc.poll() is None:
            sync_proc.kill()
            sync_proc.wait(timeout=10)
        for context, _, _ in staff:
            context.close()

    assert all(a is not None and a < PAGE_ANSWER_BUDGET for a in answers), answers
    for text in texts:
        assert "Server Error" not in text and "OperationalError" not in text, text[:500]
        assert "pending" in text and "changed successfully" not in text, text[:500]
    assert sync_proc.returncode == 0, output.decode()[-2000:]
    run = SyncRun.objects.filter(kind=SyncRun.Kind.CONFERENCES, trigger="command").get()
    assert run.outcome == Outcome.SUCCEEDED, run.error
    wait_until(
        lambda: all_synced(Conference), timeout=90,
        message=lambda: str(list(
            Conference.objects.values_list("name", "sync_state", "last_error")
        )),
    )
    assert sandbox.conferences[first.remote_id]["display_name"] == "A edited"
    assert sandbox.conferences[second.remote_id]["display_name"] == "B edited"
