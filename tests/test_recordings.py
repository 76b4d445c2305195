"""Room recordings in the portal: sync, list and totals, download, delete, retention."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rooms import sync
from rooms.admin.paging import CappedCountPaginator
from rooms.models import (
    ActionRun,
    AuditEntry,
    Recording,
    RecordingState,
    Room,
    RoomSession,
    SyncRun,
    environment_space,
)
from rooms.selectors import recordings
from rooms.services import recordings as recording_services
from rooms.sync import sessions
from tests.browser_helpers import make_staff
from tests.concurrent import post_together

pytestmark = pytest.mark.django_db

RECORDINGS_PATH = "/api/video/room_recordings"


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def control(server, path: str, body: dict | None = None) -> dict:
    """Drive the sandbox through its loopback control API, over HTTP."""
    answer = requests.post(f"{server.url}/__sandbox__/{path}", json=body or {}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def record_session(server, room_name: str = "webinar", *, status: str | None = None) -> dict:
    """Run a session that records and end it (its recording completed unless told)."""
    session = control(server, "sessions", {"room_name": room_name, "members": ["Ada"],
                                           "record": True})
    control(server, f"sessions/{session['id']}/end",
            {"recording_status": status} if status else None)
    return session


def mirror() -> SyncRun:
    """Mirror rooms, past sessions and recordings, as beat's syncs do."""
    sync.sync_rooms()
    sessions.sessions_sync_history()
    return sync.recordings_sync()


def recording_requests(space, method: str = "GET") -> list[dict]:
    return [
        r for r in space.requests
        if r["method"] == method and r["path"].startswith(RECORDINGS_PATH)
    ]


@pytest.fixture
def downloader(client):
    """A staff member who may view and download recordings, logged in."""
    user = make_staff("dl", "rooms.view_recording", "rooms.download_recording",
                      "rooms.view_roomsession")
    client.force_login(user)
    return user


@pytest.fixture
def recorded(sandbox, sandbox_server) -> Recording:
    """One completed recording of a room's session, mirrored."""
    sandbox.create_room({"name": "webinar"})
    record_session(sandbox_server)
    mirror()
    return Recording.objects.get()


def download(client, recording: Recording):
    return client.post(reverse("admin:rooms_recording_download", args=[recording.pk]))


# --- sync -------------------------------------------------------------------------------


def test_sync_mirrors_recordings_linked_to_their_session_and_never_keeps_the_link(recorded):
    session = RoomSession.objects.get()
    assert recorded.session == session and recorded.room_name == "webinar"
    assert recorded.status == "completed" and recorded.format == "video/mp4"
    assert recorded.size_in_bytes > 0 and recorded.cost_in_dollars > 0
    assert recorded.duration is not None and recorded.finished_at >= recorded.started_at
    assert "uri" not in recorded.raw
    created = AuditEntry.objects.get(object_remote_id=recorded.remote_id)
    assert created.action == AuditEntry.Action.CREATE and created.source == "sync"
    assert created.related_object_id == Room.objects.get().pk


def test_sync_is_incremental_picks_up_a_new_one_and_refreshes_processing_ones(
    sandbox, sandbox_server
):
    sandbox.create_room({"name": "webinar"})
    for _ in range(4):
        record_session(sandbox_server)
    slow = record_session(sandbox_server, status="processing")
    first = mirror()
    assert first.created == 5
    processing = Recording.objects.get(remote_session_id=slow["id"])
    assert processing.status == "processing"

    # Nothing new: one page read, no writes, no audit rows.
    sandbox.clear_requests()
    with CaptureQueriesContext(connection) as queries:
        again = sync.recordings_sync(page_size=2)
    writes = [
        q["sql"] for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and ("rooms_recording" in q["sql"] or "rooms_auditentry" in q["sql"])
    ]
    assert again.created == again.updated == 0 and writes == []
    listings = [r for r in recording_requests(sandbox) if r["path"] == RECORDINGS_PATH]
    assert len(listings) == 1, "an unchanged first page ends the run"

    # A new recording appears; the processing one (now far down the listing) completes.
    remote = sandbox.room_recordings[processing.remote_id]
    remote["status"] = "completed"
    remote["updated_at"] = remote["finished_at"]
    newest = record_session(sandbox_server)
    sessions.sessions_sync_history()
    run = sync.recordings_sync(page_size=2)
    assert run.created == 1 and run.updated >= 1
    assert Recording.objects.filter(remote_session_id=newest["id"]).exists()
    processing.refresh_from_db()
    assert processing.status == "completed"
    assert Recording.objects.count() == 6


def test_a_recording_synced_before_its_session_is_linked_when_the_session_arrives(
    sandbox, sandbox_server
):
    sandbox.create_room({"name": "webinar"})
    session = record_session(sandbox_server)
    sync.sync_rooms()
    sync.recordings_sync()
    orphan = Recording.objects.get()
    assert orphan.session is None and orphan.remote_session_id == session["id"]
    sessions.sessions_sync_history()
    run = sync.recordings_sync()
    orphan.refresh_from_db()
    assert orphan.session.remote_id == session["id"] and orphan.room_name == "webinar"
    assert run.updated == 1


def test_sync_command_takes_recordings(recorded, sandbox_server):
    record_session(sandbox_server)
    sessions.sessions_sync_history()
    out = io.StringIO()
    call_command("sync_signalwire", "--recordings", stdout=out)
    assert "Room recordings: Succeeded" in out.getvalue()
    assert Recording.objects.count() == 2


def test_a_full_sync_marks_recordings_deleted_in_signalwire(recorded, sandbox):
    sandbox.delete_recording(recorded.remote_id)
    run = sync.recordings_sync(full=True)
    recorded.refresh_from_db()
    assert run.marked_deleted == 1 and recorded.sync_state == RecordingState.DELETED_REMOTELY


def test_a_full_pass_marks_deleted_recordings_in_queries_that_do_not_grow_with_them(
    sandbox, sandbox_server
):
    sandbox.create_room({"name": "webinar"})
    for _ in range(10):
        record_session(sandbox_server)
    mirror()
    ids = list(Recording.objects.order_by("pk").values_list("remote_id", flat=True))
    assert len(ids) == 10

    def full_pass_queries(delete: list[str], marked: int) -> int:
        for remote_id in delete:
            sandbox.delete_recording(remote_id)
        with CaptureQueriesContext(connection) as queries:
            run = sync.recordings_sync(full=True)
        assert run.marked_deleted == marked, run.error
        assert Recording.objects.filter(
            sync_state=RecordingState.DELETED_REMOTELY, session__isnull=False
        ).count() == marked
        return len(queries.captured_queries)

    two = full_pass_queries(ids[:2], 2)
    # The two already marked count again, so the second pass marks eight.
    Recording.objects.filter(remote_id__in=ids[:2]).update(sync_state=RecordingState.SYNCED)
    eight = full_pass_queries(ids[2:8], 8)
    assert eight == two, (two, eight)


# --- admin list, totals, session and room pages -------------------------------------------


def test_list_filters_by_room_status_and_size_and_totals_match_the_filter(
    sandbox, sandbox_server, admin_client
):
    sandbox.create_room({"name": "webinar"})
    sandbox.create_room({"name": "standup"})
    for name in ("webinar", "webinar", "standup"):
        record_session(sandbox_server, name)
    record_session(sandbox_server, "standup", status="processing")
    mirror()
    url = reverse("admin:rooms_recording_changelist")

    def totals(query: str) -> str:
        html = admin_client.get(url + query).content.decode()
        start = html.index('id="recording-totals"')
        return " ".join(html[start : html.index("</p>", start)].split())

    for query, rows in (
        ("", Recording.objects.all()),
        ("?room=webinar", Recording.objects.filter(room_name="webinar")),
        ("?status__exact=processing", Recording.objects.filter(status="processing")),
        ("?size=lt100m", Recording.objects.filter(size_in_bytes__lt=100 * 1024 * 1024)),
        ("?size=unknown", Recording.objects.filter(size_in_bytes__isnull=True)),
    ):
        expected = recordings.recording_totals(rows)
        text = totals(query)
        assert f"<strong>{expected['count']}</strong>" in text, (query, text)
        assert recordings.size_text(expected["size"]) in text
        assert f"${expected['cost']}" in text
    webinar = recordings.recording_totals(Recording.objects.filter(room_name="webinar"))
    assert webinar["count"] == 2
    assert webinar["cost"] == sum(
        r.cost_in_dollars for r in Recording.objects.filter(room_name="webinar")
    )


def test_totals_past_the_count_cap_say_more_than_and_a_narrower_filter_sums_them(
    sandbox, sandbox_server, admin_client, monkeypatch
):
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 2)
    sandbox.create_room({"name": "webinar"})
    sandbox.create_room({"name": "standup"})
    for name in ("webinar", "webinar", "standup"):
        record_session(sandbox_server, name)
    mirror()
    url = reverse("admin:rooms_recording_changelist")

    def totals(query: dict) -> str:
        html = admin_client.get(url, query).content.decode()
        start = html.index('id="recording-totals"')
        return " ".join(html[start : html.index("</p>", start)].split())

    every = totals({})
    assert "more than <strong>2</strong> recordings" in every
    assert "$" not in every and "<strong>3</strong>" not in every
    assert "More than 2 recordings" in admin_client.get(url).content.decode()
    standup = Recording.objects.get(room_name="standup")
    for query in ({"room": "standup"}, {"q": standup.remote_session_id}, {"q": "stand"}):
        narrow = totals(query)
        assert "<strong>1</strong> recording," in narrow, query
        assert recordings.size_text(standup.size_in_bytes) in narrow
        assert f"${standup.cost_in_dollars}" in narrow


def test_totals_are_one_aggregate_query(recorded, admin_client):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(reverse("admin:rooms_recording_changelist"))
    sums = [q["sql"] for q in queries.captured_queries if "SUM(" in q["sql"].upper()]
    assert len(sums) == 1


def test_session_and_room_pages_list_their_recordings(recorded, admin_client):
    session_page = admin_client.get(
        reverse("admin:rooms_roomsession_change", args=[recorded.session_id])
    ).content.decode()
    recording_url = reverse("admin:rooms_recording_change", args=[recorded.pk])
    assert 'id="recordings"' in session_page and recording_url in session_page
    room_page = admin_client.get(
        reverse("admin:rooms_room_change", args=[Room.objects.get().pk])
    ).content.decode()
    assert recording_url in room_page and recordings.size_text(recorded.size_in_bytes) in room_page


@pytest.mark.parametrize(
    ("perms", "sessions_shown", "recordings_shown"),
    [
        ((), False, False),
        (("rooms.view_roomsession",), True, False),
        (("rooms.view_recording",), False, True),
        (("rooms.view_roomsession", "rooms.view_recording"), True, True),
    ],
)
def test_a_rooms_page_shows_sessions_and_recordings_only_to_who_may_view_them(
    recorded, client, perms, sessions_shown, recordings_shown
):
    client.force_login(make_staff("roomviewer", "rooms.view_room", *perms))
    room = Room.objects.get()

    page = client.get(reverse("admin:rooms_room_change", args=[room.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    session_url = reverse("admin:rooms_roomsession_change", args=[recorded.session_id])
    recording_url = reverse("admin:rooms_recording_change", args=[recorded.pk])
    assert ('id="session-history"' in html) is sessions_shown
    assert (session_url in html) is sessions_shown
    assert ('id="recordings"' in html) is recordings_shown
    assert (recording_url in html) is recordings_shown
    assert (recordings.size_text(recorded.size_in_bytes) in html) is recordings_shown


def test_a_conferences_page_hides_its_sessions_and_recordings_without_their_view_permissions(
    sandbox, sandbox_server, client
):
    sandbox.create_conference({"name": "allhands", "display_name": "All hands"})
    sync.sync_conferences()
    record_session(sandbox_server, "allhands")
    mirror()
    recording = Recording.objects.get()
    conference = recording.session.conference
    assert conference is not None and conference.name == "allhands"
    url = reverse("admin:rooms_conference_change", args=[conference.pk])
    client.force_login(make_staff("confviewer", "rooms.view_conference"))

    html = client.get(url).content.decode()

    assert 'id="session-history"' not in html and 'id="recordings"' not in html
    assert reverse("admin:rooms_recording_change", args=[recording.pk]) not in html
    client.force_login(make_staff("confall", "rooms.view_conference", "rooms.view_roomsession",
                                  "rooms.view_recording"))
    html = client.get(url).content.decode()
    assert 'id="session-history"' in html and 'id="recordings"' in html
    assert reverse("admin:rooms_recording_change", args=[recording.pk]) in html


def test_a_sessions_page_lists_its_recordings_only_to_who_may_view_them(recorded, client):
    client.force_login(make_staff("sessionviewer", "rooms.view_roomsession"))

    page = client.get(reverse("admin:rooms_roomsession_change", args=[recorded.session_id]))

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="recordings"' not in html
    assert reverse("admin:rooms_recording_change", args=[recorded.pk]) not in html


# --- download -----------------------------------------------------------------------------


def test_download_needs_the_permission(recorded, client):
    viewer = make_staff("viewer", "rooms.view_recording")
    client.force_login(viewer)
    page = client.get(reverse("admin:rooms_recording_change", args=[recorded.pk]))
    assert page.status_code == 200
    download_url = reverse("admin:rooms_recording_download", args=[recorded.pk])
    assert download_url not in page.content.decode()
    assert download(client, recorded).status_code == 403
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


def test_download_is_post_only(recorded, downloader, client):
    url = reverse("admin:rooms_recording_download", args=[recorded.pk])
    assert client.get(url).status_code == 405
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


def test_each_download_gets_a_fresh_link_that_is_stored_nowhere(
    recorded, downloader, client, sandbox, sandbox_server, caplog
):
    caplog.set_level("DEBUG")
    page = client.get(reverse("admin:rooms_recording_change", args=[recorded.pk]))
    assert reverse("admin:rooms_recording_download", args=[recorded.pk]) in page.content.decode()
    first = download(client, recorded)
    assert first.status_code == 302 and "no-store" in first["Cache-Control"]
    control(sandbox_server, "clock", {"advance": 901})  # the first link has expired
    second = download(client, recorded)
    assert second.status_code == 302
    links = [first["Location"], second["Location"]]
    assert links[0] != links[1]
    assert requests.get(links[0], timeout=5).status_code == 403
    fetched = requests.get(links[1], timeout=5)
    assert fetched.status_code == 200 and fetched.content[4:8] == b"ftyp"
    assert len(recording_requests(sandbox)) >= 2  # SignalWire asked each time

    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    dump = out.getvalue()
    for link in links:
        signature = link.split("signature=")[1]
        assert link not in dump and signature not in dump
        assert signature not in caplog.text
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS)
    assert entries.count() == 2
    for entry in entries:
        assert entry.additional_data["event"] == "download"
        assert entry.actor == downloader and entry.object_remote_id == recorded.remote_id
        assert entry.timestamp is not None
        assert all(link not in json.dumps(entry.additional_data) for link in links)


def test_an_unfinished_recording_gives_a_message_never_a_link(
    sandbox, sandbox_server, downloader, client
):
    sandbox.create_room({"name": "webinar"})
    record_session(sandbox_server, status="processing")
    mirror()
    recording = Recording.objects.get()
    answer = download(client, recording)
    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:rooms_recording_change", args=[recording.pk])
    page = client.get(answer["Location"]).content.decode()
    assert "is processing in SignalWire, so it has no download link" in page
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


def test_a_link_is_asked_for_when_clicked_so_an_old_page_never_leads_to_an_expired_one(
    recorded, downloader, client, sandbox_server
):
    client.get(reverse("admin:rooms_recording_change", args=[recorded.pk]))
    control(sandbox_server, "clock", {"advance": 3600})  # the page stayed open an hour
    answer = download(client, recorded)
    assert requests.get(answer["Location"], timeout=5).status_code == 200


def test_download_of_a_recording_deleted_in_signalwire_says_so(
    recorded, downloader, client, sandbox
):
    sandbox.delete_recording(recorded.remote_id)
    answer = download(client, recorded)
    assert answer["Location"] == reverse("admin:rooms_recording_change", args=[recorded.pk])
    page = client.get(answer["Location"]).content.decode()
    assert "SignalWire no longer has the recording" in page
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.DELETED_REMOTELY
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


def test_download_when_signalwire_is_down_says_so(recorded, downloader, client, sandbox):
    sandbox.inject_fault(503, methods=["GET"], path_prefix=RECORDINGS_PATH)
    answer = download(client, recorded)
    assert answer.status_code == 302 and "no-store" in answer["Cache-Control"]
    page = client.get(answer["Location"]).content.decode()
    assert "SignalWire could not be asked for a download link now" in page


# --- delete -------------------------------------------------------------------------------


@pytest.fixture
def deleter(client):
    user = make_staff("del", "rooms.view_recording", "rooms.delete_recording")
    client.force_login(user)
    return user


def delete_form(client, recording: Recording) -> dict:
    """Open a recording's delete confirmation; return the form it posts (its nonce)."""
    import re

    page = client.get(reverse("admin:rooms_recording_delete", args=[recording.pk]))
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.content.decode())
    assert nonce, "the confirmation carries a one-time nonce"
    return {"nonce": nonce.group(1)}


def test_delete_asks_first_then_goes_to_signalwire_first(recorded, deleter, client, sandbox):
    url = reverse("admin:rooms_recording_delete", args=[recorded.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Yes, delete it in SignalWire" in confirm.content.decode()
    assert recorded.remote_id in sandbox.room_recordings
    answer = client.post(url, delete_form(client, recorded))
    assert answer.status_code == 302
    assert recorded.remote_id not in sandbox.room_recordings
    assert not Recording.objects.exists()
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DELETE)
    assert entry.actor == deleter and entry.additional_data["event"] == "delete"
    assert entry.additional_data["details"]["size_in_bytes"] == recorded.size_in_bytes


@pytest.mark.django_db(transaction=True)
def test_a_delete_confirmation_sent_four_times_at_once_deletes_once(
    recorded, deleter, client, sandbox
):
    url = reverse("admin:rooms_recording_delete", args=[recorded.pk])

    answers = post_together(client, url, delete_form(client, recorded))

    assert [a.status_code for a in answers] == [302] * 4
    assert not Recording.objects.exists()
    assert len(recording_requests(sandbox, "DELETE")) == 1
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DELETE).count() == 1


def test_delete_needs_the_permission(recorded, client):
    client.force_login(make_staff("viewer", "rooms.view_recording"))
    answer = client.post(reverse("admin:rooms_recording_delete", args=[recorded.pk]))
    assert answer.status_code == 403
    assert Recording.objects.filter(pk=recorded.pk).exists()


def test_delete_during_an_outage_is_pending_and_lands_later(
    recorded, deleter, client, sandbox, settings, queued_recording_deletes,
    django_capture_on_commit_callbacks,
):
    settings.SIGNALWIRE_INTERACTIVE_RETRIES = 0
    sandbox.inject_fault(503, methods=["DELETE"], path_prefix=RECORDINGS_PATH)
    form = delete_form(client, recorded)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("admin:rooms_recording_delete", args=[recorded.pk]), form)
    assert answer.status_code == 302
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.PENDING_DELETE
    assert "Waiting for SignalWire" in recorded.last_error
    page = client.get(answer["Location"]).content.decode()
    assert "marked pending delete" in page
    assert queued_recording_deletes == [(recorded.pk, deleter.pk, "")]
    # A sync meanwhile leaves it alone.
    sync.recordings_sync(full=True)
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.PENDING_DELETE

    sandbox.clear_faults()
    assert recording_services.recording_delete_pending(pk=recorded.pk, actor=deleter) == "deleted"
    assert recorded.remote_id not in sandbox.room_recordings
    assert not Recording.objects.exists()
    events = list(
        AuditEntry.objects.filter(object_remote_id=recorded.remote_id)
        .order_by("timestamp", "pk")
        .values_list("additional_data__event", flat=True)
    )
    assert events[-2:] == ["delete_requested", "delete"]


@pytest.fixture
def queued_recording_deletes(monkeypatch):
    """Record the delete tasks the service would queue instead of sending them."""
    from rooms import outbox

    calls: list[tuple] = []
    real = outbox.send

    def send(name: str, *args, **kwargs) -> bool:
        if name == recording_services.DELETE_TASK:
            calls.append(args)
            return True
        return real(name, *args, **kwargs)

    monkeypatch.setattr(outbox, "send", send)
    return calls


def test_a_refused_delete_changes_nothing_and_says_why(
    recorded, deleter, client, sandbox, settings
):
    settings.SIGNALWIRE_API_TOKEN = "not-the-token"  # SignalWire answers 401: no retry heals it
    form = delete_form(client, recorded)
    answer = client.post(reverse("admin:rooms_recording_delete", args=[recorded.pk]), form)
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.SYNCED
    assert recorded.remote_id in sandbox.room_recordings
    assert "SignalWire refused to delete" in client.get(answer["Location"]).content.decode()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.DELETE).exists()


# --- retention ----------------------------------------------------------------------------


@pytest.fixture
def history(sandbox):
    """Seeded history (sessions over 90 days, with recordings), and one still processing."""
    sandbox.seed(rooms=4, sessions=120, seed=7)
    mirror()
    assert Recording.objects.filter(status="completed").count() > 5
    return sandbox


def old_completed(days: int) -> set[str]:
    cutoff = timezone.now() - timedelta(days=days)
    return {
        r.remote_id for r in Recording.objects.filter(status="completed")
        if recordings.ended_at(r) < cutoff
    }


def test_retention_dry_run_lists_and_changes_nothing(history, settings):
    settings.RECORDING_RETENTION_DAYS = 30
    expected = old_completed(30)
    assert expected
    before = Recording.objects.count()
    history.clear_requests()
    out = io.StringIO()
    call_command("apply_recording_retention", "--dry-run", stdout=out)
    text = out.getvalue()
    assert f"Dry run: {len(expected)} completed recording(s)" in text
    assert all(remote_id in text for remote_id in expected)
    assert "Nothing was changed." in text
    assert Recording.objects.count() == before
    assert not ActionRun.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.DELETE).exists()
    assert [r for r in history.requests if r["method"] != "GET"] == []


def test_retention_deletes_exactly_the_old_completed_ones(history, settings, sandbox_server):
    settings.RECORDING_RETENTION_DAYS = 30
    # An old recording still processing is never touched.
    processing = Recording.objects.filter(status="completed").order_by("finished_at").first()
    Recording.objects.filter(pk=processing.pk).update(status="processing")
    expected = old_completed(30)
    keep = set(Recording.objects.values_list("remote_id", flat=True)) - expected
    out = io.StringIO()
    call_command("apply_recording_retention", stdout=out)
    text = out.getvalue()
    assert f"{len(expected)} deleted" in text and "Freed" in text
    assert set(Recording.objects.values_list("remote_id", flat=True)) == keep
    assert processing.remote_id in keep
    assert not expected & set(history.room_recordings)
    run = ActionRun.objects.get(action=ActionRun.Action.RETENTION)
    assert run.counts == {"deleted": len(expected)} and run.state == ActionRun.State.SUCCEEDED
    freed = recording_services.run_freed(run)
    assert freed.count == len(expected)
    entries = AuditEntry.objects.filter(cid=run.run_id.hex, action=AuditEntry.Action.DELETE)
    assert entries.count() == len(expected)
    assert {e.additional_data["event"] for e in entries} == {"retention_delete"}
    assert {e.source for e in entries} == {"command"}


def test_retention_off_keeps_everything(history, settings):
    settings.RECORDING_RETENTION_DAYS = 0
    before = Recording.objects.count()
    out = io.StringIO()
    call_command("apply_recording_retention", stdout=out)
    assert "retention is off" in out.getvalue()
    assert Recording.objects.count() == before


def test_a_negative_retention_is_refused_clearly(settings):
    from rooms.checks import check_signalwire_settings

    settings.RECORDING_RETENTION_DAYS = -1
    assert "rooms.E007" in [p.id for p in check_signalwire_settings()]
    with pytest.raises(CommandError, match="RECORDING_RETENTION_DAYS must be 0"):
        call_command("apply_recording_retention", "--dry-run")


@pytest.mark.parametrize("days", [800000, 99999999999])
def test_a_retention_too_long_to_date_is_refused_clearly(settings, days):
    from rooms.checks import check_signalwire_settings

    with pytest.raises(CommandError, match="at most 36500"):
        call_command("apply_recording_retention", "--days", str(days), "--dry-run")
    with pytest.raises(CommandError, match="at most 36500"):
        call_command("apply_recording_retention", "--days", str(days))
    settings.RECORDING_RETENTION_DAYS = days
    problems = [p for p in check_signalwire_settings() if p.id == "rooms.E007"]
    assert problems and "at most 36500" in problems[0].msg
    with pytest.raises(CommandError, match="at most 36500"):
        call_command("apply_recording_retention", "--dry-run")


def test_the_longest_retention_runs(history, settings):
    out = io.StringIO()
    call_command("apply_recording_retention", "--days", "36500", "--dry-run", stdout=out)
    assert "0 completed recording(s)" in out.getvalue()


def test_the_retention_run_page_shows_what_was_freed(history, settings, admin_client):
    settings.RECORDING_RETENTION_DAYS = 30
    result = recording_services.recordings_apply_retention()
    page = admin_client.get(
        reverse("admin:rooms_actionrun_change", args=[result.run.pk])
    ).content.decode()
    assert "Freed <strong>" + recordings.size_text(result.freed.size) in page
    assert f"${result.freed.cost}" in page
    assert result.freed.cost > Decimal("0")


# --- history, change log, tasks, bounded work --------------------------------------------


def test_history_and_change_log_show_downloads_and_deletes_without_the_link(
    recorded, admin_client, admin_user
):
    uri = recording_services.recording_link(recording=recorded, actor=admin_user)
    history = admin_client.get(
        reverse("admin:rooms_recording_history", args=[recorded.pk])
    ).content.decode()
    assert "Download" in history and uri not in history
    room_history = admin_client.get(
        reverse("admin:rooms_room_history", args=[Room.objects.get().pk])
    ).content.decode()
    assert "Download" in room_history  # the room's history includes its recordings
    recording_services.recording_delete(recording=recorded, actor=admin_user, source="admin")
    log = admin_client.get(reverse("admin:rooms_auditentry_changelist"))
    assert log.status_code == 200 and uri not in log.content.decode()


def test_sync_queries_per_page_stay_bounded(sandbox, sandbox_server):
    sandbox.create_room({"name": "webinar"})
    for _ in range(4):
        record_session(sandbox_server)
    sync.sync_rooms()
    sessions.sessions_sync_history()

    def queries_per_page() -> float:
        with CaptureQueriesContext(connection) as queries:
            run = sync.recordings_sync(page_size=2, full=True)
        return len(queries.captured_queries) / run.pages

    small = queries_per_page()
    Recording.objects.all().delete()
    for _ in range(8):
        record_session(sandbox_server)
    sessions.sessions_sync_history()
    large = queries_per_page()
    assert large <= small + 1, (small, large)


def test_beat_runs_the_recordings_sync_and_the_daily_retention(settings):
    import rooms.tasks  # noqa: F401
    from portal.celery import app

    tasks = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks["rooms.tasks.sync_recordings"]["schedule"] == settings.SIGNALWIRE_SYNC_INTERVAL
    assert tasks["rooms.tasks.apply_recording_retention"]["schedule"] == 86400
    for name in ("rooms.tasks.sync_recordings", "rooms.tasks.apply_recording_retention",
                 "rooms.tasks.delete_recording"):
        assert name in app.tasks


def test_the_retention_task_applies_the_setting(history, settings):
    from rooms.tasks.recordings import apply_recording_retention

    settings.RECORDING_RETENTION_DAYS = 0
    assert apply_recording_retention() == "retention off"
    settings.RECORDING_RETENTION_DAYS = 60
    expected = old_completed(60)
    apply_recording_retention()
    assert not Recording.objects.filter(remote_id__in=expected).exists()
    run = ActionRun.objects.get(action=ActionRun.Action.RETENTION)
    assert run.counts == {"deleted": len(expected)}
    assert AuditEntry.objects.filter(cid=run.run_id.hex).first().source == "task"


def test_retention_during_an_outage_leaves_them_pending_never_lost(history, settings):
    settings.RECORDING_RETENTION_DAYS = 30
    settings.SIGNALWIRE_RETRIES = 0
    expected = old_completed(30)
    history.inject_fault(503, methods=["DELETE"], path_prefix=RECORDINGS_PATH)
    result = recording_services.recordings_apply_retention()
    assert result.counts == {"pending_delete": len(expected)}
    pending = Recording.objects.filter(sync_state=RecordingState.PENDING_DELETE)
    assert set(pending.values_list("remote_id", flat=True)) == expected
    assert expected <= set(history.room_recordings)
    assert recording_services.run_freed(result.run).count == 0
    # Once SignalWire answers, the pending deletes land (what the delete task runs).
    history.clear_faults()
    for pk in recording_services.recordings_pending_delete():
        recording_services.recording_delete_pending(pk=pk)
    assert not expected & set(history.room_recordings)
    assert not Recording.objects.filter(remote_id__in=expected).exists()


def test_a_bulk_delete_lists_what_signalwire_refused_with_its_message(
    recorded, sandbox, settings, admin_client, admin_user
):
    from rooms.services import bulk

    run = bulk.action_run_start(
        action=ActionRun.Action.DELETE, rows=Recording.objects.all(), actor=admin_user
    )
    settings.SIGNALWIRE_API_TOKEN = "not-the-token"  # a refusal no retry heals (401)
    assert bulk.action_run_batch(run_id=run.pk, offset=0) is None  # as the worker runs it
    run.refresh_from_db()
    assert run.counts == {"failed": 1} and run.state == ActionRun.State.FINISHED_WITH_ERRORS
    assert Recording.objects.get().sync_state == RecordingState.SYNCED
    assert recorded.remote_id in sandbox.room_recordings
    page = admin_client.get(reverse("admin:rooms_actionrun_change", args=[run.pk]))
    html = page.content.decode()
    assert "Rows SignalWire refused" in html and run.failures[0]["message"] in html
    assert "<strong>1</strong> failed" in html and "Freed <strong>0 B</strong>" in html


# --- regressions: remote deletes seen, refused pending deletes, double deletes -----------


def test_a_daily_full_recordings_sync_is_scheduled_and_marks_remote_deletes(recorded, sandbox):
    import rooms.tasks  # noqa: F401
    from portal.celery import app
    from rooms.tasks.recordings import sync_recordings_full

    tasks = {entry["task"]: entry for entry in settings_schedule().values()}
    assert tasks["rooms.tasks.sync_recordings_full"]["schedule"] == 86400
    assert "rooms.tasks.sync_recordings_full" in app.tasks
    sandbox.delete_recording(recorded.remote_id)
    assert sync_recordings_full() == SyncRun.Outcome.SUCCEEDED
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.DELETED_REMOTELY
    assert SyncRun.objects.filter(kind=SyncRun.Kind.RECORDINGS, marked_deleted=1).exists()


def settings_schedule() -> dict:
    from django.conf import settings

    return settings.CELERY_BEAT_SCHEDULE


def test_sync_command_full_marks_recordings_deleted_in_signalwire(recorded, sandbox):
    sandbox.delete_recording(recorded.remote_id)
    call_command("sync_signalwire", "--recordings", stdout=io.StringIO())
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.SYNCED  # an incremental run cannot tell
    out = io.StringIO()
    call_command("sync_signalwire", "--recordings", "--full", stdout=out)
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.DELETED_REMOTELY
    assert "marked deleted 1" in out.getvalue()
    with pytest.raises(CommandError, match="--full"):
        call_command("sync_signalwire", "--rooms", "--full", stdout=io.StringIO())


def pending(recording: Recording) -> None:
    """Leave a recording pending delete, as an outage during its delete does."""
    Recording.objects.filter(pk=recording.pk).update(
        sync_state=RecordingState.PENDING_DELETE, last_error="Waiting for SignalWire: down"
    )


@pytest.mark.parametrize("status", [403, 422])
def test_a_pending_delete_signalwire_refuses_is_no_longer_pending_and_can_be_retried(
    recorded, sandbox, deleter, client, queued_recording_deletes, status
):
    from rooms.tasks.push import push_pending

    pending(recorded)
    sandbox.inject_fault(status, methods=["DELETE"], path_prefix=RECORDINGS_PATH, count=1)
    outcome = recording_services.recording_delete_pending(pk=recorded.pk, actor=deleter)
    assert outcome == recording_services.DELETE_FAILED
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.SYNCED
    assert "SignalWire refused to delete it" in recorded.last_error
    assert recorded.remote_id in sandbox.room_recordings
    entry = AuditEntry.objects.get(additional_data__event="delete_failed")
    assert entry.actor == deleter and entry.source == "push"
    assert entry.additional_data["details"]["message"]
    # The periodic push no longer queues it again and again.
    push_pending()
    assert queued_recording_deletes == []
    # The admin shows the error, and staff can try the delete again.
    page = client.get(reverse("admin:rooms_recording_changelist")).content.decode()
    assert "Delete failed" in page
    answer = client.post(
        reverse("admin:rooms_recording_delete", args=[recorded.pk]), delete_form(client, recorded)
    )
    assert answer.status_code == 302
    assert not Recording.objects.filter(pk=recorded.pk).exists()
    assert recorded.remote_id not in sandbox.room_recordings


def test_a_refused_staff_retry_of_a_pending_delete_leaves_it_not_pending(
    recorded, sandbox, deleter, client
):
    pending(recorded)
    sandbox.inject_fault(403, methods=["DELETE"], path_prefix=RECORDINGS_PATH, count=1)
    answer = client.post(
        reverse("admin:rooms_recording_delete", args=[recorded.pk]), delete_form(client, recorded)
    )
    assert "SignalWire refused to delete" in client.get(answer["Location"]).content.decode()
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.SYNCED
    assert recorded.remote_id in sandbox.room_recordings


def test_the_periodic_push_leaves_alone_a_recording_delete_still_in_the_air(
    recorded, sandbox, queued_recording_deletes
):
    from rooms import audit, intents
    from rooms.models import RemoteIntent
    from rooms.tasks.push import push_pending

    # An admin (or bulk, or retention) delete has marked the row and is waiting on SignalWire.
    with audit.audit_context(source="admin", actor_label="someone"):
        intent = intents.record(
            kind=recording_services.KIND, model=Recording, action=RemoteIntent.Action.DELETE,
            row=recorded, data={"remote_id": recorded.remote_id},
        )
    recorded.refresh_from_db()
    assert recorded.sync_state == RecordingState.PENDING_DELETE
    assert recording_services.recordings_pending_delete() == []
    push_pending()
    assert queued_recording_deletes == []
    # A delete task queued anyway leaves it to the delete in the air.
    sandbox.clear_requests()
    recording_services.recording_delete_pending(pk=recorded.pk)
    assert recording_requests(sandbox, "DELETE") == []
    assert Recording.objects.filter(pk=recorded.pk).exists()
    # Once its intent is stale (its process died), the periodic push finishes it.
    RemoteIntent.objects.filter(pk=intent.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    push_pending()
    assert queued_recording_deletes == [(recorded.pk,)]


def confirm_bulk_delete(admin_client, pks: list[int]) -> dict:
    """Open the bulk delete's confirmation page; return the form it posts."""
    import re

    from django.contrib.admin import helpers

    post = {"action": "delete_selected_recordings",
            helpers.ACTION_CHECKBOX_NAME: [str(pk) for pk in pks]}
    page = admin_client.post(reverse("admin:rooms_recording_changelist"), post)
    html = page.content.decode()
    assert "Yes, delete them in SignalWire" in html
    nonce = re.search(r'name="nonce" value="([^"]+)"', html)
    assert nonce, "the confirmation carries a one-time nonce"
    return {**post, "confirm": "yes", "nonce": nonce.group(1)}


def test_a_bulk_delete_confirmation_posted_twice_starts_one_run(recorded, admin_client):
    form = confirm_bulk_delete(admin_client, [recorded.pk])
    url = reverse("admin:rooms_recording_changelist")
    first = admin_client.post(url, form)
    assert first.status_code == 302
    second = admin_client.post(url, form, follow=True)
    assert ActionRun.objects.filter(kind="recording").count() == 1
    assert "confirmed already" in second.content.decode()
    # Without a nonce nothing starts either.
    admin_client.post(url, {k: v for k, v in form.items() if k != "nonce"})
    assert ActionRun.objects.filter(kind="recording").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_bulk_delete_confirmation_sent_four_times_at_once_starts_one_run(
    recorded, admin_client, celery_worker
):
    form = confirm_bulk_delete(admin_client, [recorded.pk])

    post_together(admin_client, reverse("admin:rooms_recording_changelist"), form)

    assert ActionRun.objects.filter(kind="recording").count() == 1


def test_a_run_page_reads_what_was_freed_from_the_run_not_its_audit_entries(
    history, settings, admin_client
):
    settings.RECORDING_RETENTION_DAYS = 30
    result = recording_services.recordings_apply_retention()
    run = result.run
    assert run.changes["freed"] == {
        "count": result.freed.count, "size": result.freed.size, "cost": str(result.freed.cost),
    }
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(reverse("admin:rooms_actionrun_change", args=[run.pk]))
    assert "Freed <strong>" + recordings.size_text(result.freed.size) in page.content.decode()
    assert not [q for q in queries.captured_queries if "additional_data" in q["sql"]]


def test_a_bulk_delete_run_keeps_what_it_freed(recorded, admin_user):
    from rooms.services import bulk

    run = bulk.action_run_start(
        action=ActionRun.Action.DELETE, rows=Recording.objects.all(), actor=admin_user
    )
    assert bulk.action_run_batch(run_id=run.pk, offset=0) is None
    run.refresh_from_db()
    assert run.changes["freed"] == {
        "count": 1, "size": recorded.size_in_bytes, "cost": str(recorded.cost_in_dollars),
    }
    freed = recording_services.run_freed(run)
    assert (freed.count, freed.size, freed.cost) == (
        1, recorded.size_in_bytes, recorded.cost_in_dollars
    )


def test_retention_deletes_each_recording_in_its_own_space_and_a_refusing_space_fails_alone(
    sandbox, sandbox_server, refusing_space, settings
):
    settings.RECORDING_RETENTION_DAYS = 30
    record_session(sandbox_server)
    [remote_id] = sandbox.room_recordings
    old = timezone.now() - timedelta(days=40)
    # The same remote id in two Spaces: each Space numbers its own recordings.
    here, there = (
        Recording.objects.create(
            space=space, remote_id=remote_id, room_name="webinar", status="completed",
            started_at=old, finished_at=old,
        )
        for space in (environment_space(), refusing_space)
    )

    result = recording_services.recordings_apply_retention(source=AuditEntry.Source.TASK)

    assert result.outcomes == {here.pk: "deleted", there.pk: "failed"}
    assert remote_id not in sandbox.room_recordings
    assert list(Recording.objects.values_list("pk", flat=True)) == [there.pk]
    [failure] = result.failures
    assert failure["pk"] == there.pk and "HTTP 401" in failure["message"]
    # One run per Space: each Space's staff see what happened in theirs.
    runs = {run.space_id: run for run in ActionRun.objects.filter(action="retention")}
    assert runs[environment_space().pk].state == ActionRun.State.SUCCEEDED
    assert runs[environment_space().pk].pks == [here.pk]
    assert runs[refusing_space.pk].state == ActionRun.State.FINISHED_WITH_ERRORS
    assert [f["pk"] for f in runs[refusing_space.pk].failures] == [there.pk]
