"""The background sync: reconciliation against the sandbox Space, single flight, admin."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rooms import sync
from rooms.audit import MASK
from rooms.locks import single_flight
from rooms.models import (
    AuditEntry,
    Conference,
    ConferenceToken,
    Room,
    SyncRun,
    SyncState,
    environment_space,
)
from rooms.signalwire.client import build_client
from rooms.signalwire.errors import UnavailableError, UnexpectedResponseError
from rooms.sync.runs import lock_name

pytestmark = pytest.mark.django_db

Outcome = SyncRun.Outcome
WRITES = ("INSERT", "UPDATE", "DELETE")
MIRROR_TABLES = ("rooms_conference", "rooms_room", "rooms_conferencetoken", "rooms_auditentry")


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def mirror_writes(queries: list[dict]) -> list[str]:
    """Return the statements that wrote to the mirror or audit tables."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(WRITES)
        and any(table in q["sql"] for table in MIRROR_TABLES)
    ]


class PageWrapper:
    """A client whose conference listing runs `after(n)` once page n has been handed over."""

    def __init__(self, client, after):
        self.client = client
        self.after = after

    def __getattr__(self, name):
        return getattr(self.client, name)

    def iter_conference_pages(self, page_size=None):
        for number, page in enumerate(self.client.iter_conference_pages(page_size), 1):
            yield page
            self.after(number)


def sync_conferences(**kwargs):
    kwargs.setdefault("page_size", 2)
    return sync.sync_conferences(**kwargs)


def writes_in_space(space):
    return [r for r in space.requests if r["method"] != "GET"]


# --- create, update, unchanged ---------------------------------------------------------


def test_first_sync_creates_every_remote_conference(sandbox):
    sandbox.seed(conferences=5, seed=1)

    run = sync_conferences()

    assert run.outcome == Outcome.SUCCEEDED
    assert (run.pages, run.seen, run.created, run.updated, run.errors) == (3, 5, 5, 0, 0)
    assert run.finished_at is not None
    assert Conference.objects.count() == 5
    for remote in sandbox.conferences.values():
        local = Conference.objects.get(remote_id=remote["id"])
        assert local.name == remote["name"]
        assert local.display_name == remote["display_name"]
        assert local.layout == remote["layout"]
        assert local.raw == remote
        assert local.sync_state == SyncState.SYNCED
        assert local.last_synced_at is not None
    # The sync wrote nothing back to SignalWire.
    assert writes_in_space(sandbox) == []


def test_sync_audit_rows_share_the_run_id(sandbox):
    sandbox.seed(conferences=3, seed=2)

    run = sync_conferences()

    entries = AuditEntry.objects.filter(cid=str(run.run_id))
    assert entries.count() == 3
    assert AuditEntry.objects.count() == 3
    for entry in entries:
        assert entry.action == AuditEntry.Action.CREATE
        assert entry.source == AuditEntry.Source.SYNC
        assert entry.actor_label == "sync"
        assert entry.object_remote_id
        assert "raw" not in entry.changes
        assert entry.changes["name"][0] is None


def test_remote_edit_updates_the_row_and_audits_the_diff(sandbox):
    sandbox.seed(conferences=4, seed=3)
    sync_conferences()
    remote_id = next(iter(sandbox.conferences))
    old_name = Conference.objects.get(remote_id=remote_id).display_name
    sandbox.update_conference(remote_id, {"display_name": "Renamed remotely", "quality": "1080p"})

    run = sync_conferences()

    assert (run.updated, run.unchanged, run.created) == (1, 3, 0)
    local = Conference.objects.get(remote_id=remote_id)
    assert local.display_name == "Renamed remotely"
    assert local.quality == "1080p"
    assert local.raw == sandbox.conferences[remote_id]
    entry = AuditEntry.objects.get(cid=str(run.run_id))
    assert entry.action == AuditEntry.Action.UPDATE
    assert entry.changes["display_name"] == [old_name, "Renamed remotely"]
    assert entry.object_pk == str(local.pk)
    assert writes_in_space(sandbox) == []


def test_unchanged_rows_cost_no_writes_and_no_audit_rows(sandbox):
    sandbox.seed(conferences=6, seed=4)
    sync_conferences()
    audit_rows = AuditEntry.objects.count()
    stamps = dict(Conference.objects.values_list("pk", "updated_at"))

    with CaptureQueriesContext(connection) as ctx:
        run = sync_conferences()

    assert (run.unchanged, run.updated, run.created, run.marked_deleted) == (6, 0, 0, 0)
    assert mirror_writes(ctx.captured_queries) == []
    assert AuditEntry.objects.count() == audit_rows
    assert dict(Conference.objects.values_list("pk", "updated_at")) == stamps


# --- deleted remotely and restored -----------------------------------------------------


def test_rooms_deleted_remotely_are_marked_and_kept(sandbox):
    sandbox.seed(conferences=5, seed=5)
    sync_conferences()
    gone = next(iter(sandbox.conferences))
    sandbox.delete_conference(gone)

    run = sync_conferences()

    assert run.marked_deleted == 1
    local = Conference.objects.get(remote_id=gone)
    assert local.sync_state == SyncState.DELETED_REMOTELY
    assert Conference.objects.filter(sync_state=SyncState.SYNCED).count() == 4
    entry = AuditEntry.objects.get(cid=str(run.run_id))
    assert entry.changes == {"deleted_in_signalwire": [False, True]}
    # Marked once: the next run leaves it alone.
    assert sync_conferences().marked_deleted == 0


def test_rows_marked_deleted_come_back_when_seen_again(sandbox):
    sandbox.seed(conferences=3, seed=6)
    sync_conferences()
    remote_id = next(iter(sandbox.conferences))
    Conference.objects.filter(remote_id=remote_id).update(sync_state=SyncState.DELETED_REMOTELY)

    run = sync_conferences()

    assert (run.restored, run.unchanged, run.updated) == (1, 2, 0)
    assert Conference.objects.get(remote_id=remote_id).sync_state == SyncState.SYNCED
    entry = AuditEntry.objects.get(cid=str(run.run_id))
    assert entry.changes == {"deleted_in_signalwire": [True, False]}


def test_rows_without_remote_id_are_never_marked_deleted(sandbox):
    sandbox.seed(conferences=2, seed=7)
    Conference.objects.bulk_create(
        [Conference(name="local-only", sync_state=SyncState.PUSH_FAILED, remote_id=None)]
    )

    run = sync_conferences()

    assert run.marked_deleted == 0
    assert Conference.objects.get(name="local-only").sync_state == SyncState.PUSH_FAILED


def test_listing_that_fails_on_page_three_marks_nothing_deleted(sandbox, settings):
    settings.SIGNALWIRE_RETRIES = 1
    sandbox.seed(conferences=10, seed=8)
    sync_conferences()
    for remote_id in list(sandbox.conferences)[-3:]:
        sandbox.delete_conference(remote_id)
    sandbox.update_conference(next(iter(sandbox.conferences)), {"display_name": "Edited"})

    def fail_from_page_three(number):
        if number == 2:
            sandbox.inject_fault(500, path_prefix="/api/video/conferences", methods=["GET"])

    client = PageWrapper(build_client(), fail_from_page_three)
    with pytest.raises(UnavailableError):
        sync_conferences(client=client)

    run = SyncRun.objects.filter(kind=SyncRun.Kind.CONFERENCES).first()
    assert run.outcome == Outcome.FAILED
    assert run.pages == 2
    assert "500" in run.error
    assert run.marked_deleted == 0
    assert not Conference.objects.filter(sync_state=SyncState.DELETED_REMOTELY).exists()
    # The pages that did arrive were applied.
    assert Conference.objects.filter(display_name="Edited").count() == 1

    sandbox.clear_faults()
    assert sync_conferences().marked_deleted == 3


def test_non_json_page_fails_the_run_cleanly(sandbox):
    sandbox.seed(conferences=4, seed=9)
    sync_conferences()
    sandbox.delete_conference(next(iter(sandbox.conferences)))

    def garbage(number):
        raise UnexpectedResponseError("the body is not JSON", method="GET", status=200)

    with pytest.raises(UnexpectedResponseError):
        sync_conferences(client=PageWrapper(build_client(), garbage))

    run = SyncRun.objects.filter(kind=SyncRun.Kind.CONFERENCES).first()
    assert run.outcome == Outcome.FAILED
    assert "not JSON" in run.error
    assert not Conference.objects.filter(sync_state=SyncState.DELETED_REMOTELY).exists()


# --- pending local changes win ---------------------------------------------------------


def test_rows_with_unpushed_changes_are_never_overwritten(sandbox):
    sandbox.seed(conferences=4, seed=10)
    sync_conferences()
    edited, deleting, gone = list(sandbox.conferences)[:3]
    Conference.objects.filter(remote_id=edited).update(
        sync_state=SyncState.PENDING_PUSH, display_name="Local edit"
    )
    Conference.objects.filter(remote_id=deleting).update(sync_state=SyncState.PENDING_DELETE)
    Conference.objects.filter(remote_id=gone).update(sync_state=SyncState.PENDING_PUSH)
    sandbox.update_conference(edited, {"display_name": "Remote edit"})
    sandbox.update_conference(deleting, {"display_name": "Remote edit 2"})
    sandbox.delete_conference(gone)

    run = sync_conferences()

    assert run.skipped_pending == 2
    assert run.marked_deleted == 0
    local = Conference.objects.get(remote_id=edited)
    assert (local.display_name, local.sync_state) == ("Local edit", SyncState.PENDING_PUSH)
    assert Conference.objects.get(remote_id=deleting).sync_state == SyncState.PENDING_DELETE
    assert Conference.objects.get(remote_id=gone).sync_state == SyncState.PENDING_PUSH
    assert not AuditEntry.objects.filter(cid=str(run.run_id)).exists()


def test_a_pending_create_that_landed_is_adopted_not_duplicated(sandbox):
    landed = sandbox.create_conference({"name": "adopt-me", "display_name": "Remote"})
    also = sandbox.create_conference({"name": "orphan", "display_name": "Remote orphan"})
    Conference.objects.bulk_create(
        [
            Conference(name="adopt-me", display_name="Local", sync_state=SyncState.PENDING_PUSH),
            Conference(name="orphan", display_name="Old", sync_state=SyncState.PUSH_FAILED),
        ]
    )

    run = sync_conferences()

    assert run.errors == 0
    assert Conference.objects.count() == 2
    pending = Conference.objects.get(name="adopt-me")
    # Linked to the remote room, local values kept for the push to deliver.
    assert pending.remote_id == landed["id"]
    assert (pending.display_name, pending.sync_state) == ("Local", SyncState.PENDING_PUSH)
    orphan = Conference.objects.get(name="orphan")
    assert orphan.remote_id == also["id"]
    assert (orphan.display_name, orphan.sync_state) == ("Remote orphan", SyncState.SYNCED)


# --- unknown remote data ---------------------------------------------------------------


def test_unknown_fields_and_enum_values_survive(sandbox):
    sandbox.seed(conferences=3, seed=11)
    first, second, third = list(sandbox.conferences)
    sandbox.update_conference(
        first, {"layout": "hexagon-9", "hologram": {"depth": 3}}, validate=False
    )
    sandbox.update_conference(second, {"record_on_start": "sometimes"}, validate=False)
    sandbox.update_conference(third, {"quality": "8k" * 20}, validate=False)

    run = sync_conferences()

    assert (run.created, run.errors) == (2, 1)
    assert third in run.error and "quality" in run.error
    local = Conference.objects.get(remote_id=first)
    assert local.layout == "hexagon-9"
    assert local.raw["hologram"] == {"depth": 3}
    assert Conference.objects.get(remote_id=second).raw["record_on_start"] == "sometimes"
    assert run.outcome == Outcome.SUCCEEDED
    # The unreadable row was seen, so it is not marked deleted either.
    assert run.marked_deleted == 0

    sandbox.update_conference(first, {"hologram": {"depth": 4}}, validate=False)
    run = sync_conferences()
    entry = AuditEntry.objects.get(cid=str(run.run_id))
    assert entry.changes == {"raw.hologram": [{"depth": 3}, {"depth": 4}]}


def test_rooms_are_synced_too(sandbox):
    sandbox.seed(rooms=5, seed=12)

    run = sync.sync_rooms(page_size=2)

    assert (run.kind, run.created, run.pages) == (SyncRun.Kind.ROOMS, 5, 3)
    for remote in sandbox.rooms.values():
        local = Room.objects.get(remote_id=remote["id"])
        assert local.max_members == remote["max_members"]
        assert local.raw == remote
    room_id = next(iter(sandbox.rooms))
    sandbox.delete_room(room_id)
    assert sync.sync_rooms(page_size=2).marked_deleted == 1


# --- bounded queries -------------------------------------------------------------------


def queries_per_page(monkeypatch, **kwargs):
    """Run a conference sync and return the number of queries each page cost."""
    counts = []
    original = sync.FullListingSync.apply_page

    def counted(self, page):
        with CaptureQueriesContext(connection) as ctx:
            original(self, page)
        counts.append(len(ctx.captured_queries))

    monkeypatch.setattr(sync.FullListingSync, "apply_page", counted)
    run = sync_conferences(**kwargs)
    monkeypatch.setattr(sync.FullListingSync, "apply_page", original)
    return run, counts


@pytest.mark.parametrize("total", [6, 30])
def test_queries_per_page_do_not_grow_with_the_data(sandbox, monkeypatch, total):
    sandbox.seed(conferences=total, seed=13)

    run, created = queries_per_page(monkeypatch, page_size=3)
    assert run.created == total
    for remote_id in list(sandbox.conferences)[::3]:
        sandbox.update_conference(remote_id, {"display_name": "changed"})
    run, updated = queries_per_page(monkeypatch, page_size=3)
    assert run.updated == total // 3
    run, unchanged = queries_per_page(monkeypatch, page_size=3)
    assert run.unchanged == total

    # Every page costs the same, whether the Space holds 6 rooms or 30: a savepoint (the
    # test's own transaction), the reads, the bulk writes (plus reading back the new rows'
    # keys), the audit rows and the run's counts; an unchanged page costs only its read.
    assert set(created) == {8}
    assert set(updated) == {7}
    assert set(unchanged) == {1}


# --- single flight ---------------------------------------------------------------------


def test_an_overlapping_run_exits_at_once_as_skipped(sandbox):
    sandbox.seed(conferences=2, seed=14)
    with single_flight(lock_name("conferences", environment_space())) as flight:
        assert flight.acquired
        run = sync_conferences()
    assert run.outcome == Outcome.SKIPPED
    assert Conference.objects.count() == 0
    assert sandbox.requests == []


@pytest.mark.django_db(transaction=True)
def test_two_syncs_started_together_run_once(sandbox):
    sandbox.seed(conferences=6, seed=15)
    sandbox.set_latency(0.1)
    outcomes = []
    start = threading.Barrier(2)

    def run():
        start.wait()
        try:
            outcomes.append(sync_conferences().outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == [Outcome.SKIPPED, Outcome.SUCCEEDED]
    assert Conference.objects.count() == 6
    # (The Space the sync runs in may be made on first use, with an entry of its own.)
    created = AuditEntry.objects.filter(action=AuditEntry.Action.CREATE)
    assert created.filter(content_type__model="conference").count() == 6
    assert created.exclude(content_type__model__in=["conference", "space"]).count() == 0


def test_a_run_left_running_by_a_killed_worker_is_marked_interrupted(sandbox):
    dead = SyncRun.objects.create(kind=SyncRun.Kind.CONFERENCES)
    other_kind = SyncRun.objects.create(kind=SyncRun.Kind.ROOMS)

    sync_conferences()

    dead.refresh_from_db()
    assert dead.outcome == Outcome.FAILED
    assert dead.error.startswith("Interrupted")
    assert dead.finished_at is not None
    other_kind.refresh_from_db()
    assert other_kind.outcome == Outcome.RUNNING


# --- conference tokens -----------------------------------------------------------------


def test_missing_tokens_are_fetched_and_masked_in_the_audit(sandbox):
    sandbox.seed(conferences=3, seed=16)
    sync_conferences()

    run = sync.sync_conference_tokens(missing_only=True)

    assert (run.kind, run.outcome, run.created) == (SyncRun.Kind.TOKENS, Outcome.SUCCEEDED, 6)
    for remote in sandbox.conference_tokens.values():
        local = ConferenceToken.objects.get(remote_id=remote["id"])
        assert local.token == remote["token"]
        assert local.conference.remote_id == remote["conference_id"]
    entries = AuditEntry.objects.filter(cid=str(run.run_id))
    assert entries.count() == 6
    assert {e.changes["token"][1] for e in entries} == {MASK}
    for token in sandbox.conference_tokens.values():
        assert token["token"] not in str(list(entries.values_list("changes", flat=True)))

    sandbox.clear_requests()
    again = sync.sync_conference_tokens(missing_only=True)
    assert (again.created, again.seen) == (0, 0)
    assert sandbox.requests == []


def test_refresh_all_tokens_picks_up_resets_made_elsewhere(sandbox):
    sandbox.seed(conferences=2, seed=17)
    sync_conferences()
    sync.sync_conference_tokens(missing_only=True)
    token_id = next(iter(sandbox.conference_tokens))
    sandbox.reset_conference_token(token_id)

    run = sync.sync_conference_tokens()

    assert (run.updated, run.unchanged, run.created) == (1, 3, 0)
    local = ConferenceToken.objects.get(remote_id=token_id)
    assert local.token == sandbox.conference_tokens[token_id]["token"]
    assert local.rotated_at is not None
    entry = AuditEntry.objects.get(cid=str(run.run_id))
    assert entry.changes == {"token": [MASK, MASK]}


# --- summary and admin -----------------------------------------------------------------


def test_latest_sync_summary_says_how_the_last_run_went(sandbox):
    assert "Not synced" in sync.latest_sync_summary(SyncRun.Kind.CONFERENCES)
    sandbox.seed(conferences=2, seed=18)
    sync_conferences()
    summary = sync.latest_sync_summary(SyncRun.Kind.CONFERENCES)
    assert "2 seen" in summary and "2 new" in summary


@pytest.fixture
def admin_client_with(client):
    def login(*perms):
        user = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
        from django.contrib.auth.models import Permission

        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client.force_login(user)
        return client

    return login


def test_sync_now_queues_the_tasks_and_says_so(admin_client_with, monkeypatch):
    from rooms.tasks import sync as sync_tasks

    queued = []
    monkeypatch.setattr(
        sync_tasks, "queue_full_sync", lambda trigger, spaces=None: queued.append(trigger)
    )
    client = admin_client_with("rooms.view_syncrun", "rooms.run_sync")
    changelist = reverse("admin:rooms_syncrun_changelist")

    page = client.get(changelist)
    assert page.status_code == 200
    assert b"Sync now" in page.content

    response = client.post(reverse("admin:rooms_syncrun_sync_now"), follow=True)
    assert response.redirect_chain[-1][0] == changelist
    assert queued == ["admin"]
    assert "queued" in response.content.decode()
    assert SyncRun.objects.count() == 0  # nothing ran inside the request


def test_sync_now_needs_the_permission_and_a_post(admin_client_with, monkeypatch):
    from rooms.tasks import sync as sync_tasks

    queued = []
    monkeypatch.setattr(
        sync_tasks, "queue_full_sync", lambda trigger, spaces=None: queued.append(trigger)
    )
    client = admin_client_with("rooms.view_syncrun")

    assert b"Sync now" not in client.get(reverse("admin:rooms_syncrun_changelist")).content
    assert client.post(reverse("admin:rooms_syncrun_sync_now")).status_code == 403
    assert queued == []


def test_sync_runs_are_read_only_in_admin(admin_client_with, sandbox):
    sandbox.seed(conferences=1, seed=19)
    run = sync_conferences()
    client = admin_client_with("rooms.view_syncrun", "rooms.change_syncrun")

    detail = client.get(reverse("admin:rooms_syncrun_change", args=[run.pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.get(reverse("admin:rooms_syncrun_add")).status_code == 403
    assert client.get(reverse("admin:rooms_syncrun_delete", args=[run.pk])).status_code == 403


# --- a NUL character in SignalWire's data ---------------------------------------------

HOLDS_NUL = connection.vendor != "postgresql"


def test_a_room_whose_display_name_holds_a_nul_syncs_as_far_as_the_database_allows(sandbox):
    odd = sandbox.create_room({"name": "odd-nul", "max_members": 5})
    sandbox.update_room(odd["id"], {"display_name": "Odd\x00Name"}, validate=False)
    plain = sandbox.create_room({"name": "plain", "max_members": 5})

    run = sync.sync_rooms()

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert Room.objects.get(remote_id=plain["id"]).sync_state == SyncState.SYNCED
    if HOLDS_NUL:
        # SQLite keeps it as SignalWire has it; admin marks it odd (tests/test_form_rules.py).
        assert Room.objects.get(remote_id=odd["id"]).display_name == "Odd\x00Name"
        assert (run.created, run.errors) == (2, 0)
    else:
        assert not Room.objects.filter(remote_id=odd["id"]).exists()
        assert (run.created, run.errors) == (1, 1)
        assert run.error == (
            f"{odd['id']}: not stored because display_name holds a NUL character, which "
            "PostgreSQL cannot store; correct it in SignalWire."
        )


def test_a_mirrored_room_that_gains_a_nul_is_kept_never_marked_deleted(sandbox):
    remote = sandbox.create_room({"name": "gains-nul", "max_members": 5})
    sync.sync_rooms()
    sandbox.update_room(
        remote["id"], {"display_name": "Now\x00odd", "max_members": 9}, validate=False
    )

    run = sync.sync_rooms()

    room = Room.objects.get(remote_id=remote["id"])
    assert room.sync_state == SyncState.SYNCED and run.marked_deleted == 0
    if HOLDS_NUL:
        assert (room.display_name, room.max_members, run.updated) == ("Now\x00odd", 9, 1)
    else:
        # The last values it could store stay, and the run says why it did not take more.
        assert (room.display_name, room.max_members, run.updated) == ("gains-nul", 5, 0)
        assert "display_name holds a NUL character" in run.error and run.errors == 1


def test_a_worker_process_tunes_the_garbage_collector_once_at_start_up():
    import gc

    from celery.signals import worker_process_init

    from rooms.tasks import sync as sync_tasks

    before = gc.get_threshold()
    assert sync_tasks.collect_less in [ref() for _, ref in worker_process_init.receivers]
    try:
        sync_tasks.collect_less()
        assert gc.get_threshold()[0] == max(before[0], sync_tasks.GC_THRESHOLD)
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
