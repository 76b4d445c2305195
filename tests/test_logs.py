"""Video logs mirrored read-only: from the sandbox over real HTTP, incrementally, hostile data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rooms import sync
from rooms.models import AuditEntry, LogState, SyncRun, VideoLog
from tests.hostile_space import HostileSpace

pytestmark = pytest.mark.django_db

LOGS = "/api/video/logs"
NUL = "\x00"


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def control(server, path: str, body: dict | None = None) -> dict:
    """Drive the sandbox through its loopback control API, over HTTP."""
    answer = requests.post(f"{server.url}/__sandbox__/{path}", json=body or {}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def meet(server, room_name: str = "billing", members: tuple[str, ...] = ("Ada",)) -> dict:
    """Run a session in a room and end it: the Space writes its log."""
    session = control(server, "sessions", {"room_name": room_name, "members": list(members)})
    control(server, f"sessions/{session['id']}/end")
    return session


def log_queries(space) -> list[dict[str, list[str]]]:
    """The query of each logs listing the Space was asked for."""
    return [
        parse_qs(r["query"]) for r in space.requests if r["method"] == "GET" and r["path"] == LOGS
    ]


def test_new_logs_appear_with_their_charge_and_session(sandbox, sandbox_server):
    session = meet(sandbox_server, members=("Ada", "Grace"))
    run = sync.logs_sync()
    assert (run.kind, run.outcome, run.created, run.errors) == (
        SyncRun.Kind.LOGS, SyncRun.Outcome.SUCCEEDED, 1, 0
    )
    log = VideoLog.objects.get()
    (remote,) = sandbox.logs.values()
    assert log.remote_id == remote["id"] and log.remote_session_id == session["id"]
    assert (log.room_name, log.status, log.log_type, log.source) == (
        "billing", "completed", "video_room_session", "realtime_api"
    )
    assert log.charge == Decimal(str(remote["charge"])) and log.charge > 0
    assert log.sync_state == LogState.SYNCED and log.raw["charge_details"]


def test_an_incremental_run_reads_only_the_logs_made_since_the_newest_mirrored(
    sandbox, sandbox_server
):
    sandbox.seed(rooms=5, seed=3)
    sandbox.seed(sessions=300, seed=3)
    first = sync.logs_sync(page_size=100)
    assert first.created == VideoLog.objects.count() == len(sandbox.logs)
    meet(sandbox_server, room_name=next(iter(sandbox.rooms.values()))["name"])
    sandbox.clear_requests()

    again = sync.logs_sync(page_size=100)

    assert again.created == 1 and VideoLog.objects.count() == len(sandbox.logs)
    # Only the newest logs were listed: one page, bounded by the newest mirrored log.
    assert again.seen < 20 and again.pages == 1
    (query,) = log_queries(sandbox)
    newest = max(log["created_at"] for log in sandbox.logs.values())
    assert query["include_deleted"] == ["true"]
    assert query["created_after"][0] < newest


def test_a_discarded_log_is_marked_deleted_remotely_and_keeps_its_charge(
    sandbox, sandbox_server
):
    meet(sandbox_server)
    meet(sandbox_server, room_name="standup")
    sync.logs_sync()
    gone = VideoLog.objects.get(room_name="standup")
    charge = gone.charge
    sandbox.logs[gone.remote_id]["discarded_at"] = datetime.now(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    run = sync.logs_sync()

    assert run.marked_deleted == 1 and run.errors == 0
    gone.refresh_from_db()
    assert gone.sync_state == LogState.DELETED_REMOTELY and gone.discarded_at is not None
    assert (gone.charge, gone.room_name) == (charge, "standup")
    assert VideoLog.objects.get(room_name="billing").sync_state == LogState.SYNCED
    quiet = sync.logs_sync()
    assert (quiet.marked_deleted, quiet.created, quiet.updated) == (0, 0, 0)


@pytest.fixture
def hostile(settings):
    server = HostileSpace().start()
    settings.SIGNALWIRE_SPACE_URL = server.url
    settings.SIGNALWIRE_PROJECT_ID = "proj"
    settings.SIGNALWIRE_API_TOKEN = "hostile-logs-token-3e1"
    settings.SIGNALWIRE_RETRIES = 0
    yield server
    server.stop()


def a_log(log_id: str, **fields) -> dict:
    return {
        "id": log_id, "source": "realtime_api", "type": "video_room_session",
        "url": f"https://x.example/api/video/room_sessions/s-{log_id}", "room_name": "standup",
        "status": "completed", "locked": False, "started_at": "2026-01-02T10:00:00Z",
        "ended_at": "2026-01-02T11:00:00Z", "charge": 0.25,
        "created_at": "2026-01-02T11:00:01Z", "charge_details": [], **fields,
    }


def test_hostile_logs_are_left_out_or_stored_as_unknown_and_the_run_goes_on(hostile):
    listed = [
        a_log("l-ok"),
        a_log("l-odd", charge="lots", started_at="9999-12-31T23:59:59-23:59", type="new_kind"),
        {"room_name": "no id"},
        a_log("l-" + "x" * 70),
        a_log("l-nul", room_name=f"stand{NUL}up"),
        a_log("l-ok", charge=9),
    ]
    hostile.answer = lambda h: h.send_page(listed)

    run = sync.logs_sync()

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    nul_refused = connection.vendor == "postgresql"
    assert run.errors == 3 + nul_refused
    assert "without an id" in run.error and "listed twice" in run.error
    assert "longer than 64" in run.error
    ok, odd = VideoLog.objects.get(remote_id="l-ok"), VideoLog.objects.get(remote_id="l-odd")
    assert ok.charge == Decimal("0.25") and ok.remote_session_id == "s-l-ok"
    assert odd.charge is None and odd.started_at is None and odd.log_type == "new_kind"
    assert "charge" in odd.sync_note and odd.raw["charge"] == "lots"
    assert VideoLog.objects.filter(remote_id="l-nul").exists() is not nul_refused


def test_a_full_run_marks_logs_gone_from_the_listing(hostile):
    listed = [a_log("l-1"), a_log("l-2")]
    hostile.answer = lambda h: h.send_page(listed)
    sync.logs_sync()
    listed.pop()

    partial = sync.logs_sync()
    full = sync.logs_sync(full=True)

    assert partial.marked_deleted == 0 and full.marked_deleted == 1
    assert VideoLog.objects.get(remote_id="l-2").sync_state == LogState.DELETED_REMOTELY
    assert VideoLog.objects.get(remote_id="l-1").sync_state == LogState.SYNCED


def made_after(listed: list[dict]):
    """An answer that lists, newest first, the logs made after the asked moment."""

    def answer(handler) -> None:
        after = handler.query.get("created_after")
        since = datetime.fromisoformat(after) if after else None
        rows = [
            log for log in listed
            if since is None or datetime.fromisoformat(log["created_at"]) > since
        ]
        handler.send_page(sorted(rows, key=lambda log: log["created_at"], reverse=True))

    return answer


def test_a_log_dated_far_in_the_future_does_not_stop_new_logs_arriving(hostile):
    listed = [a_log("l-old"), a_log("l-future", created_at="9999-12-31T23:59:59Z")]
    hostile.answer = made_after(listed)
    assert sync.logs_sync().created == 2
    listed.append(a_log("l-new", created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))

    run = sync.logs_sync()

    assert run.created == 1 and VideoLog.objects.filter(remote_id="l-new").exists()
    asked = [r["query"].get("created_after", "") for r in hostile.requests]
    assert not asked[-1].startswith("9999"), asked


def discarded(log_id: str, at: str) -> dict:
    """A discarded log as the listing shows it: its id and two dates, nothing else."""
    return {"id": log_id, "discarded_at": at, "created_at": "2026-01-02T11:00:01Z"}


def test_a_discarded_log_keeps_its_values_when_its_discard_changes(hostile):
    listed = [a_log("l-1", charge=0.75)]
    hostile.answer = lambda h: h.send_page(listed)
    sync.logs_sync()
    listed[0] = discarded("l-1", "2026-01-03T09:00:00Z")
    assert sync.logs_sync().marked_deleted == 1
    listed[0] = discarded("l-1", "2026-01-04T09:00:00Z")

    run = sync.logs_sync()

    log = VideoLog.objects.get(remote_id="l-1")
    assert log.sync_state == LogState.DELETED_REMOTELY and run.marked_deleted == 0
    assert log.discarded_at == datetime(2026, 1, 4, 9, tzinfo=UTC)
    assert (log.room_name, log.charge, log.status) == ("standup", Decimal("0.75"), "completed")


def test_a_log_gone_from_a_full_listing_keeps_its_values_when_listed_discarded(hostile):
    listed = [a_log("l-1", charge=0.75), a_log("l-2")]
    hostile.answer = lambda h: h.send_page(listed)
    sync.logs_sync()
    listed.pop(0)
    assert sync.logs_sync(full=True).marked_deleted == 1
    listed.insert(0, discarded("l-1", "2026-01-03T09:00:00Z"))

    sync.logs_sync(full=True)

    log = VideoLog.objects.get(remote_id="l-1")
    assert log.sync_state == LogState.DELETED_REMOTELY
    assert log.discarded_at == datetime(2026, 1, 3, 9, tzinfo=UTC)
    assert (log.room_name, log.charge, log.status) == ("standup", Decimal("0.75"), "completed")


def test_a_run_with_nothing_new_writes_nothing_and_reads_each_page_in_the_same_queries(
    sandbox, sandbox_server
):
    for _ in range(6):
        meet(sandbox_server)
    sync.logs_sync()
    stored = VideoLog.objects.values_list(
        "remote_id", "last_synced_at", "raw_digest", "sync_state"
    )
    before = sorted(stored)
    audit_rows = AuditEntry.objects.count()

    with CaptureQueriesContext(connection) as queries:
        quiet = sync.logs_sync()

    assert (quiet.created, quiet.updated, quiet.marked_deleted, quiet.unchanged) == (0, 0, 0, 6)
    writes = [
        q["sql"] for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and SyncRun._meta.db_table not in q["sql"]
    ]
    assert writes == []
    assert sorted(stored.all()) == before and AuditEntry.objects.count() == audit_rows

    def full_run_queries(page_size: int) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            run = sync.logs_sync(full=True, page_size=page_size)
        assert run.unchanged == 6 and (run.updated, run.marked_deleted) == (0, 0)
        return run.pages, len(queries.captured_queries)

    (one, q1), (two, q2), (three, q3) = map(full_run_queries, (6, 3, 2))
    assert (one, two, three) == (1, 2, 3)
    assert q3 - q2 == q2 - q1, (q1, q2, q3)
    assert AuditEntry.objects.count() == audit_rows


def test_the_command_syncs_logs(sandbox, sandbox_server, capsys):
    meet(sandbox_server)
    call_command("sync_signalwire", "--logs")
    assert "Video logs: Succeeded" in capsys.readouterr().out
    assert VideoLog.objects.count() == 1


def test_the_logs_list_is_read_only_and_filters_by_room_and_day(sandbox, sandbox_server,
                                                                admin_client):
    meet(sandbox_server)
    meet(sandbox_server, room_name="standup")
    sync.logs_sync()
    log = VideoLog.objects.get(room_name="standup")
    url = reverse("admin:rooms_videolog_changelist")
    day = log.remote_created_at
    page = admin_client.get(url, {"room": "standup", "remote_created_at__day": day.day,
                                  "remote_created_at__month": day.month,
                                  "remote_created_at__year": day.year})
    assert page.status_code == 200
    shown = list(page.context["cl"].queryset)
    assert shown == [log]
    assert admin_client.get(reverse("admin:rooms_videolog_add")).status_code == 403
    change = admin_client.post(reverse("admin:rooms_videolog_change", args=[log.pk]),
                               {"room_name": "edited"})
    assert change.status_code == 403 or VideoLog.objects.get(pk=log.pk).room_name == "standup"
    delete = admin_client.post(reverse("admin:rooms_videolog_delete", args=[log.pk]),
                               {"post": "yes"})
    assert delete.status_code == 403 and VideoLog.objects.filter(pk=log.pk).exists()
