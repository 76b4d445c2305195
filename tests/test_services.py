"""The service layer against the sandbox Space over HTTP: remote first, pending when down."""

from __future__ import annotations

import contextvars
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import OperationalError
from django.utils import timezone

from rooms import services
from rooms.models import AuditEntry, Conference, RemoteIntent, Room, Space, SyncState
from rooms.services import mirror
from rooms.signalwire.client import build_client
from rooms.signalwire.errors import RateLimitedError
from rooms.tasks import push
from tests.conftest import SANDBOX_PROJECT_ID
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def _writes(sandbox, method: str, prefix: str = "/api/video/") -> list[dict]:
    return [r for r in sandbox.requests if r["method"] == method and r["path"].startswith(prefix)]


def _room_in_sandbox(sandbox, name: str) -> dict | None:
    return next((r for r in sandbox.rooms.values() if r["name"] == name), None)


# --- remote first ----------------------------------------------------------------------


def test_room_create_lands_remotely_and_mirrors_the_answer(sandbox, admin_user, room_data):
    room = services.room_create(data=room_data("standup"), actor=admin_user)

    remote = sandbox.rooms[room.remote_id]
    assert remote["name"] == "standup" and remote["max_members"] == 12
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.remote_created_at is not None and room.remote_updated_at is not None
    assert room.fps == remote["fps"]
    assert room.raw["id"] == room.remote_id
    entry = AuditEntry.objects.get(object_pk=str(room.pk), action=AuditEntry.Action.CREATE)
    assert entry.actor == admin_user and entry.source == AuditEntry.Source.ADMIN


def test_conference_create_stores_its_two_tokens(sandbox, conference_data):
    conference = services.conference_create(data=conference_data("allhands"))

    assert conference.remote_id in sandbox.conferences
    tokens = {t.name: t for t in conference.tokens.all()}
    assert set(tokens) == {"moderator", "guest"}
    remote = {t["name"]: t for t in sandbox.conference_tokens.values()}
    assert tokens["guest"].token == remote["guest"]["token"]
    assert tokens["guest"].scopes == remote["guest"]["scopes"]


def test_conference_create_sends_fields_only_the_update_accepts(sandbox, conference_data):
    conference = services.conference_create(
        data=conference_data("quiet", tone_on_entry_and_exit=False, display_name="")
    )

    remote = sandbox.conferences[conference.remote_id]
    assert remote["tone_on_entry_and_exit"] is False
    assert remote["display_name"] == "quiet"
    assert len(_writes(sandbox, "POST")) == 1


def test_update_sends_one_put_and_stores_the_answer(sandbox, admin_user, room_data):
    room = services.room_create(data=room_data())
    before = room.local_version
    sandbox.clear_requests()

    updated = services.room_update(
        room=room, data={"display_name": "Daily stand-up", "max_members": 30}, actor=admin_user
    )

    assert len(_writes(sandbox, "PUT")) == 1
    assert sandbox.rooms[room.remote_id]["display_name"] == "Daily stand-up"
    assert updated.sync_state == SyncState.SYNCED
    assert updated.local_version == before + 1
    stored = Room.objects.get(pk=room.pk)
    assert (stored.display_name, stored.max_members) == ("Daily stand-up", 30)
    assert stored.remote_updated_at == updated.remote_updated_at
    entry = AuditEntry.objects.filter(object_pk=str(room.pk)).latest("timestamp")
    assert entry.action == AuditEntry.Action.UPDATE and entry.actor == admin_user
    assert set(entry.changes) == {"display_name", "max_members"}


def test_update_without_changes_sends_nothing_and_audits_nothing(sandbox, room_data):
    room = services.room_create(data=room_data())
    sandbox.clear_requests()
    entries = AuditEntry.objects.count()

    services.room_update(room=room, data={"display_name": room.display_name})

    assert sandbox.requests == []
    assert AuditEntry.objects.count() == entries


# --- SignalWire rejects (422) ----------------------------------------------------------


def test_duplicate_name_in_signalwire_maps_to_the_name_field(sandbox, room_data):
    sandbox.create_room({"name": "taken"})

    with pytest.raises(ValidationError) as caught:
        services.room_create(data=room_data("taken"))

    assert "name" in caught.value.message_dict
    assert "taken" in caught.value.message_dict["name"][0]
    assert not Room.objects.exists()
    assert len(sandbox.rooms) == 1


def test_update_rejected_by_signalwire_changes_nothing_anywhere(sandbox, monkeypatch, room_data):
    room = services.room_create(data=room_data())
    remote_before = dict(sandbox.rooms[room.remote_id])
    local_before = Room.objects.filter(pk=room.pk).values().get()
    # Bypass the local mirror of the rule so SignalWire's own 422 is what answers.
    monkeypatch.setattr(Room, "clean", lambda self: None)
    now = timezone.now()

    with pytest.raises(ValidationError) as caught:
        services.room_update(
            room=room, data={"join_from": now + timedelta(hours=2), "join_until": now}
        )

    assert "join_until" in caught.value.message_dict
    assert sandbox.rooms[room.remote_id] == remote_before
    assert Room.objects.filter(pk=room.pk).values().get() == local_before


def test_unknown_attribute_goes_to_non_field_errors():
    from rooms.signalwire.errors import ValidationError as RemoteValidationError

    error = services.form_error(
        RemoteValidationError(field_errors={"colour_scheme": ["is odd"]}, non_field_errors=["no"]),
        Room,
    )
    assert error.message_dict[NON_FIELD_ERRORS] == ["colour_scheme: is odd", "no"]


def test_local_validation_rejects_bad_input_before_any_request(sandbox, room_data):
    with pytest.raises(ValidationError) as caught:
        services.room_create(data=room_data("no spaces allowed", max_members=999))

    assert {"name", "max_members"} <= set(caught.value.message_dict)
    assert sandbox.requests == [] and not Room.objects.exists()


def test_clearing_a_join_window_from_a_shell_is_refused_naming_the_fields(
    sandbox, conference_data
):
    now = timezone.now().replace(microsecond=0)
    window = {"join_from": now - timedelta(hours=1), "join_until": now + timedelta(days=1)}
    conference = services.conference_create(data=conference_data("windowed", **window))
    remote_before = dict(sandbox.conferences[conference.remote_id])
    local_before = Conference.objects.filter(pk=conference.pk).values().get()
    sandbox.clear_requests()

    with pytest.raises(ValidationError) as caught:
        services.conference_update(
            conference=conference, data={"join_from": None, "join_until": None}
        )

    assert set(caught.value.message_dict) == {"join_from", "join_until"}
    assert "cannot clear" in caught.value.message_dict["join_from"][0]
    assert sandbox.requests == []
    assert sandbox.conferences[conference.remote_id] == remote_before
    assert Conference.objects.filter(pk=conference.pk).values().get() == local_before
    assert not RemoteIntent.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("remove_at", timezone.now() + timedelta(days=3)),
        ("remove_after_seconds_elapsed", 600),
        ("meta", {"topic": "demo"}),
    ],
)
def test_clearing_a_room_field_an_update_cannot_clear_is_refused(
    sandbox, room_data, field, value
):
    room = services.room_create(data=room_data("kept", **{field: value}))
    sandbox.clear_requests()

    with pytest.raises(ValidationError) as caught:
        services.room_update(room=room, data={field: None, "display_name": "Renamed"})

    assert list(caught.value.message_dict) == [field]
    assert sandbox.requests == []
    assert Room.objects.get(pk=room.pk).display_name == "Kept"


def test_clearing_a_field_that_holds_nothing_is_no_change(sandbox, room_data):
    room = services.room_create(data=room_data("bare"))
    sandbox.clear_requests()

    services.room_update(room=room, data={"remove_at": None, "meta": None})

    assert sandbox.requests == []


# --- SignalWire unreachable: kept as pending, landed later -----------------------------


def test_create_while_down_is_kept_pending_and_lands_later(
    sandbox, queued, django_capture_on_commit_callbacks, room_data, run_queued
):
    sandbox.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        room = services.room_create(data=room_data("later"))

    assert room.pk and room.remote_id is None
    assert room.sync_state == SyncState.PENDING_PUSH and "503" in room.last_error
    assert queued == [("push", "room", room.pk)]
    assert sandbox.rooms == {}

    sandbox.clear_faults()
    run_queued()

    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert sandbox.rooms[room.remote_id]["max_members"] == 12


def test_conference_created_while_down_gets_its_tokens_when_it_lands(
    sandbox, queued, django_capture_on_commit_callbacks, conference_data, run_queued
):
    sandbox.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        conference = services.conference_create(data=conference_data())
    sandbox.clear_faults()

    run_queued()

    conference.refresh_from_db()
    assert conference.remote_id in sandbox.conferences
    assert conference.tokens.count() == 2


def test_update_while_down_keeps_the_edit_and_lands_it(
    sandbox, queued, django_capture_on_commit_callbacks, conference_data, run_queued
):
    conference = services.conference_create(data=conference_data())
    sandbox.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        updated = services.conference_update(
            conference=conference, data={"display_name": "Kept", "size": "large"}
        )

    assert updated.sync_state == SyncState.PENDING_PUSH
    stored = Conference.objects.get(pk=conference.pk)
    assert (stored.display_name, stored.size, stored.sync_state) == (
        "Kept",
        "large",
        SyncState.PENDING_PUSH,
    )
    assert stored.local_version == conference.local_version + 1
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Allhands"

    sandbox.clear_faults()
    run_queued()

    assert sandbox.conferences[conference.remote_id]["size"] == "large"
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.SYNCED


def test_delete_removes_remotely_first(sandbox, room_data):
    room = services.room_create(data=room_data())

    assert services.room_delete(room=room) is True
    assert sandbox.rooms == {} and not Room.objects.exists()


def test_delete_of_a_room_already_gone_remotely_counts_as_done(sandbox, room_data):
    room = services.room_create(data=room_data())
    sandbox.delete_room(room.remote_id)

    assert services.room_delete(room=room) is True
    assert not Room.objects.exists()


def test_delete_while_down_is_finished_by_the_task(
    sandbox, queued, django_capture_on_commit_callbacks, conference_data, run_queued
):
    conference = services.conference_create(data=conference_data())
    sandbox.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.conference_delete(conference=conference) is False

    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.PENDING_DELETE
    assert conference.remote_id in sandbox.conferences
    sandbox.clear_faults()
    run_queued()

    assert sandbox.conferences == {}
    assert not Conference.objects.filter(pk=conference.pk).exists()


# --- pushes ----------------------------------------------------------------------------


def test_pending_create_is_looked_up_by_name_never_duplicated(
    sandbox, queued, django_capture_on_commit_callbacks, room_data, run_queued
):
    sandbox.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        room = services.room_create(data=room_data("once"))
    sandbox.clear_faults()
    # The lost create did land after all.
    landed = sandbox.create_room({"name": "once"})

    run_queued()

    assert [r["name"] for r in sandbox.rooms.values()] == ["once"]
    room.refresh_from_db()
    assert room.remote_id == landed["id"]
    assert sandbox.rooms[landed["id"]]["max_members"] == 12


def test_push_rejected_by_signalwire_is_marked_failed_with_the_reason(
    sandbox, queued, django_capture_on_commit_callbacks, run_queued
):
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        # A script skips full_clean(): only SignalWire catches the bad window.
        room = Room.objects.create(name="bad", join_from=now + timedelta(hours=1), join_until=now)

    run_queued()

    room.refresh_from_db()
    assert room.sync_state == SyncState.PUSH_FAILED
    assert "Join until must be after join from" in room.last_error
    assert sandbox.rooms == {}


def test_push_task_out_of_retries_in_an_outage_keeps_the_row_pending(
    sandbox, queued, fast_push, django_capture_on_commit_callbacks, room_data, run_queued
):
    sandbox.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        room = services.room_create(data=room_data())

    result = run_queued()[0]

    assert result.failed()
    room.refresh_from_db()
    # An outage heals: the edit is not given up, the periodic push_pending retries it.
    assert room.sync_state == SyncState.PENDING_PUSH
    assert "Waiting for SignalWire" in room.last_error and "503" in room.last_error
    # Attempts: the first run and one retry.
    assert room.push_attempts == 2

    sandbox.clear_faults()
    queued.clear()
    assert push.push_pending.apply().get() == 1
    run_queued()
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED and room.remote_id in sandbox.rooms


def test_push_pending_queues_every_waiting_row(sandbox, queued):
    waiting = Room.objects.create(name="a")
    doomed = Conference.objects.create(name="b")
    Conference.objects.filter(pk=doomed.pk).update(sync_state=SyncState.PENDING_DELETE)
    queued.clear()

    assert push.push_pending.apply().get() == 2
    assert sorted(queued) == [("delete", "conference", doomed.pk), ("push", "room", waiting.pk)]


def test_a_push_is_serialized_with_other_pushes_of_the_row(sandbox, queued):
    room = Room.objects.create(name="locked")
    with services.row_lock("room", room.pk):
        with pytest.raises(services.RowBusyError):
            services.room_push(room_id=room.pk)

    assert sandbox.requests == []
    assert services.room_push(room_id=room.pk) == "pushed"


def test_newest_local_state_wins_when_it_changes_during_a_push(
    sandbox, queued, room_data, monkeypatch
):
    room = services.room_create(data=room_data("race"))
    Room.objects.filter(pk=room.pk).update(
        display_name="first", sync_state=SyncState.PENDING_PUSH, local_version=5
    )
    client = build_client()
    real_update = client.update_room
    edits = []

    def update_then_edit(remote_id, data):
        answer = real_update(remote_id, data)
        if not edits:
            edits.append(True)
            # A shell edit (a fresh context, as in another process) lands while the first
            # PUT is in the air.
            contextvars.Context().run(shell_edit)
        return answer

    def shell_edit():
        row = Room.objects.get(pk=room.pk)
        row.display_name = "second"
        row.save()

    monkeypatch.setattr(client, "update_room", update_then_edit)  # the shared client

    assert services.room_push(room_id=room.pk, client=client) == "pushed"

    assert [r["body"]["display_name"] for r in _writes(sandbox, "PUT")] == ["first", "second"]
    assert sandbox.rooms[room.remote_id]["display_name"] == "second"
    stored = Room.objects.get(pk=room.pk)
    assert (stored.display_name, stored.sync_state) == ("second", SyncState.SYNCED)
    assert stored.local_version == 6


def test_push_runs_under_the_push_audit_source(
    sandbox, queued, django_capture_on_commit_callbacks, run_queued
):
    with django_capture_on_commit_callbacks(execute=True):
        room = Room.objects.create(name="hooked")
    result = run_queued()[0]

    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    entry = AuditEntry.objects.filter(object_pk=str(room.pk)).latest("timestamp")
    assert entry.source == AuditEntry.Source.PUSH and entry.cid == result.id


def test_edits_of_a_row_waiting_for_deletion_are_refused(sandbox):
    room = services.room_create(data=room_data_plain("doomed"))
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.PENDING_DELETE)

    with pytest.raises(ValidationError):
        services.room_update(room=room, data={"display_name": "late"})
    assert sandbox.rooms[room.remote_id]["display_name"] != "late"


def test_an_edit_of_a_room_deleted_in_signalwire_says_so(sandbox):
    room = services.room_create(data=room_data_plain("vanished"))
    sandbox.delete_room(room.remote_id)

    with pytest.raises(ValidationError, match="no longer exists"):
        services.room_update(room=room, data={"display_name": "late"})
    assert Room.objects.get(pk=room.pk).sync_state == SyncState.DELETED_REMOTELY


def room_data_plain(name: str) -> dict:
    return {"name": name, "max_members": 4}


def test_a_push_waits_at_least_as_long_as_retry_after_asks(monkeypatch):
    asked = {}

    def record_retry(exc=None, countdown=None, **kwargs):
        asked["countdown"] = countdown
        return Retry()

    monkeypatch.setattr(push.push_room, "retry", record_retry)

    def rate_limited():
        raise RateLimitedError(retry_after=90, method="PUT", path="/api/video/rooms/x")

    with pytest.raises(Retry):
        push.push_room.call_honouring_retry_after(rate_limited)
    assert asked["countdown"] >= 90


# --- the outbox: an edit SignalWire took is never lost when the local write fails ------


def _failing_write(*args, **kwargs):
    raise OperationalError("database is locked")


def test_an_update_whose_answer_was_never_stored_is_replayed_under_its_actor(
    sandbox, admin_user, room_data, monkeypatch, settings, queued, run_queued
):
    from rooms import sync

    room = services.room_create(data=room_data("replayed"))
    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(mirror, "_store_answer", _failing_write)
        services.room_update(room=room, data={"display_name": "Landed remotely"},
                             actor=admin_user)

    # SignalWire has the edit; the portal still knows it wants it and says it waits.
    assert sandbox.rooms[room.remote_id]["display_name"] == "Landed remotely"
    stored = Room.objects.get(pk=room.pk)
    assert (stored.display_name, stored.sync_state) == ("Replayed", SyncState.PENDING_PUSH)
    assert RemoteIntent.objects.filter(object_pk=room.pk).count() == 1
    # The sync leaves the row to its push (it would otherwise record the sync as author).
    assert sync.sync_rooms().skipped_pending == 1
    assert Room.objects.get(pk=room.pk).display_name == "Replayed"

    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()

    stored = Room.objects.get(pk=room.pk)
    assert (stored.display_name, stored.sync_state) == ("Landed remotely", SyncState.SYNCED)
    assert not RemoteIntent.objects.exists()
    entry = AuditEntry.objects.filter(
        object_pk=str(room.pk), action=AuditEntry.Action.UPDATE
    ).latest("pk")
    assert entry.changes["display_name"] == ["Replayed", "Landed remotely"]
    assert (entry.actor, entry.source) == (admin_user, AuditEntry.Source.ADMIN)


def test_a_create_whose_row_was_never_stored_is_adopted_never_repeated(
    sandbox, admin_user, room_data, monkeypatch, settings, queued, run_queued
):
    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(mirror, "_store_created", _failing_write)
        services.room_create(data=room_data("orphan", max_members=9), actor=admin_user)
    assert _room_in_sandbox(sandbox, "orphan") is not None
    assert not Room.objects.exists()

    # A fresh intent may belong to a request still in the air: it is left alone.
    push.push_pending.apply()
    assert not Room.objects.exists() and queued == []

    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()

    room = Room.objects.get(name="orphan")
    remote = _room_in_sandbox(sandbox, "orphan")
    assert (room.remote_id, room.sync_state, room.max_members) == (
        remote["id"], SyncState.SYNCED, 9
    )
    assert len(_writes(sandbox, "POST", "/api/video/rooms")) == 1
    created = AuditEntry.objects.get(object_pk=str(room.pk), action=AuditEntry.Action.CREATE)
    assert (created.actor, created.source) == (admin_user, AuditEntry.Source.ADMIN)


@pytest.mark.parametrize("kind", ["room", "conference"])
def test_a_sync_before_the_replay_leaves_an_unstored_create_to_its_actor(
    sandbox, admin_user, room_data, conference_data, monkeypatch, settings, queued,
    run_queued, kind
):
    from rooms import sync
    from rooms.registry import RESOURCES

    create = services.room_create if kind == "room" else services.conference_create
    data = room_data("orphan") if kind == "room" else conference_data("orphan")
    model = RESOURCES[kind].model
    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(mirror, "_store_created", _failing_write)
        create(data=data, actor=admin_user)

    # The listing shows the new object before the replay ran: the sync leaves it alone.
    run = sync.sync_rooms() if kind == "room" else sync.sync_conferences()
    assert (run.created, run.skipped_pending) == (0, 1)
    assert not model.objects.exists()
    assert not AuditEntry.objects.filter(source=AuditEntry.Source.SYNC,
                                         action=AuditEntry.Action.CREATE).exists()

    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()
    row = model.objects.get(name="orphan")
    assert row.sync_state == SyncState.SYNCED
    created = AuditEntry.objects.get_for_object(row).get(action=AuditEntry.Action.CREATE)
    assert (created.actor, created.source) == (admin_user, AuditEntry.Source.ADMIN)
    # Once stored, the next sync sees it as unchanged, not as new.
    again = sync.sync_rooms() if kind == "room" else sync.sync_conferences()
    assert (again.created, again.skipped_pending, again.unchanged) == (0, 0, 1)


def test_a_rejected_edit_leaves_no_intent_and_the_row_as_it_was(
    sandbox, monkeypatch, room_data
):
    room = services.room_create(data=room_data())
    local_before = Room.objects.filter(pk=room.pk).values().get()
    monkeypatch.setattr(Room, "clean", lambda self: None)  # SignalWire's own 422 answers
    now = timezone.now()

    with pytest.raises(ValidationError):
        services.room_update(
            room=room, data={"join_from": now + timedelta(hours=2), "join_until": now}
        )

    assert Room.objects.filter(pk=room.pk).values().get() == local_before
    assert local_before["sync_state"] == SyncState.SYNCED
    assert not RemoteIntent.objects.exists()


def test_a_replayed_edit_never_undoes_a_later_edit_of_the_same_field(
    sandbox, admin_user, django_user_model, room_data, monkeypatch, settings, queued, run_queued
):
    later_user = django_user_model.objects.create_user("later", is_staff=True)
    room = services.room_create(data=room_data("both", description="first"))
    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(mirror, "_store_answer", _failing_write)
        services.room_update(
            room=room, data={"display_name": "From A", "description": "from A"},
            actor=admin_user,
        )
    # Staff B edits the description afterwards, while A's answer is still unstored.
    services.room_update(room=room, data={"description": "from B"}, actor=later_user)

    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()

    stored = Room.objects.get(pk=room.pk)
    remote = sandbox.rooms[room.remote_id]
    assert (stored.display_name, stored.description) == ("From A", "from B")
    assert (remote["display_name"], remote["description"]) == ("From A", "from B")
    assert stored.sync_state == SyncState.SYNCED and not RemoteIntent.objects.exists()
    authors = {
        field: entry.actor
        for entry in AuditEntry.objects.filter(object_pk=str(room.pk),
                                               action=AuditEntry.Action.UPDATE)
        for field in entry.changes
    }
    assert authors == {"display_name": admin_user, "description": later_user}


def test_a_delete_whose_local_row_survived_is_finished_under_its_actor(
    sandbox, admin_user, room_data, monkeypatch, settings, queued, run_queued
):
    room = services.room_create(data=room_data("doomed-later"))
    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(mirror, "_store_deleted", _failing_write)
        services.room_delete(room=room, actor=admin_user)
    assert room.remote_id not in sandbox.rooms
    # The row says it waits for its delete, so the sync does not take it for a remote loss.
    assert Room.objects.get(pk=room.pk).sync_state == SyncState.PENDING_DELETE

    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()

    assert not Room.objects.filter(pk=room.pk).exists()
    assert not RemoteIntent.objects.exists()
    deleted = AuditEntry.objects.get(object_pk=str(room.pk), action=AuditEntry.Action.DELETE)
    assert (deleted.actor, deleted.source) == (admin_user, AuditEntry.Source.ADMIN)


def test_a_replayed_edit_keeps_a_datetime_to_the_microsecond(
    sandbox, admin_user, room_data, monkeypatch, settings, queued, run_queued
):
    room = services.room_create(data=room_data("precise"))
    when = timezone.now().replace(microsecond=123456) + timedelta(days=3)
    with monkeypatch.context() as patched, pytest.raises(OperationalError):
        patched.setattr(mirror, "_store_answer", _failing_write)
        services.room_update(room=room, data={"remove_at": when}, actor=admin_user)

    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()

    assert Room.objects.get(pk=room.pk).remove_at == when


def test_an_edit_that_waited_for_the_row_lock_keeps_the_edit_that_landed_first(
    sandbox, queued, room_data, monkeypatch
):
    room = services.room_create(data=room_data("busy"))
    real_row_lock = mirror.row_lock
    landed = []

    def lock_after_another_edit_lands(kind, pk, **kwargs):
        # Another edit of the row lands (in SignalWire and here) between this edit's first
        # read and the moment it holds the row lock.
        if not landed:
            landed.append(True)
            contextvars.Context().run(
                services.room_update, room=Room.objects.get(pk=pk), data={"display_name": "Landed"}
            )
        return real_row_lock(kind, pk, **kwargs)

    monkeypatch.setattr(mirror, "row_lock", lock_after_another_edit_lands)
    services.room_update(room=room, data={"max_members": 40})

    remote = sandbox.rooms[room.remote_id]
    assert (remote["display_name"], remote["max_members"]) == ("Landed", 40)
    stored = Room.objects.get(pk=room.pk)
    assert (stored.display_name, stored.max_members, stored.sync_state) == (
        "Landed", 40, SyncState.SYNCED
    )


def test_a_refresh_never_overwrites_a_local_edit_made_while_signalwire_answered(
    sandbox, queued, room_data, monkeypatch
):
    room = services.room_create(data=room_data("refreshed"))
    sandbox.rooms[room.remote_id]["display_name"] = "Edited in the Space"
    client = build_client()
    real_get = client.get_room

    def get_then_edit_locally(remote_id):
        answer = real_get(remote_id)
        row = Room.objects.get(pk=room.pk)
        row.display_name = "Edited here"
        contextvars.Context().run(row.save)
        return answer

    # build_client() shares one client per process: patched for this test only.
    monkeypatch.setattr(client, "get_room", get_then_edit_locally)

    assert services.mirror_refresh(row=room, client=client) == "skipped"
    stored = Room.objects.get(pk=room.pk)
    assert (stored.display_name, stored.sync_state) == ("Edited here", SyncState.PENDING_PUSH)


# --- each row talks to its own Space ---------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_space_that_refuses_its_token_fails_only_its_own_pushes(
    sandbox, refusing_space, celery_worker
):
    refused = Room.objects.create(name="lobby", max_members=4, space=refusing_space)
    landed = Room.objects.create(name="lobby", max_members=3)

    def settled() -> bool:
        refused.refresh_from_db()
        landed.refresh_from_db()
        return refused.sync_state == SyncState.PUSH_FAILED and landed.sync_state == SyncState.SYNCED

    wait_until(settled, timeout=30, message="the worker to push both rooms")
    assert [(r["name"], r["max_members"]) for r in sandbox.rooms.values()] == [("lobby", 3)]
    assert "“Refusing” refused the portal's API token" in refused.last_error
    assert "HTTP 401" in refused.last_error
    assert "a-token-the-sandbox-refuses" not in refused.last_error
    assert refused.remote_id is None
    assert any(r["status"] == 401 for r in sandbox.requests)


def test_rooms_of_one_name_in_two_spaces_are_each_edited_in_their_own_space(
    sandbox, other_space, sandbox_b, room_data
):
    other = sandbox_b
    here = services.room_create(data=room_data("lobby"))
    there = services.room_create(data=room_data("lobby", space=other_space, max_members=5))

    assert there.sync_state == SyncState.SYNCED and there.space == other_space
    assert [(r["name"], r["max_members"]) for r in other.rooms.values()] == [("lobby", 5)]
    assert [(r["name"], r["max_members"]) for r in sandbox.rooms.values()] == [("lobby", 12)]

    services.room_update(room=there, data={"max_members": 7})
    assert other.rooms[there.remote_id]["max_members"] == 7
    assert sandbox.rooms[here.remote_id]["max_members"] == 12
    assert services.mirror_refresh(row=there) == "unchanged"

    assert services.room_delete(room=there) is True
    assert other.rooms == {}
    assert list(sandbox.rooms) == [here.remote_id]


def test_a_pending_edit_is_pushed_to_its_rows_space(
    sandbox, other_space, sandbox_b, queued, django_capture_on_commit_callbacks,
    room_data, run_queued,
):
    other = sandbox_b
    here = services.room_create(data=room_data("lobby"))
    there = services.room_create(data=room_data("lobby", space=other_space))
    other.inject_fault(503)
    with django_capture_on_commit_callbacks(execute=True):
        pending = services.room_update(room=there, data={"max_members": 9})
    assert pending.sync_state == SyncState.PENDING_PUSH
    other.clear_faults()

    run_queued()

    there.refresh_from_db()
    assert there.sync_state == SyncState.SYNCED
    assert other.rooms[there.remote_id]["max_members"] == 9
    assert sandbox.rooms[here.remote_id]["max_members"] == 12

    # A delete made in a shell is finished in the row's Space too.
    with django_capture_on_commit_callbacks(execute=True):
        Room.objects.filter(pk=there.pk).delete()
    run_queued()
    assert other.rooms == {} and list(sandbox.rooms) == [here.remote_id]


def test_a_push_to_a_space_whose_settings_are_broken_fails_the_row_with_the_reason(
    sandbox, sandbox_server, queued, django_capture_on_commit_callbacks, run_queued, monkeypatch
):
    monkeypatch.delenv("SIGNALWIRE_TEST_UNSET_TOKEN", raising=False)
    unset = Space.objects.create(
        name="Unset", space_url=sandbox_server.url, project_id=SANDBOX_PROJECT_ID,
        token_env="SIGNALWIRE_TEST_UNSET_TOKEN",
    )
    garbled = Space.objects.create(
        name="Garbled", space_url=sandbox_server.url, project_id=SANDBOX_PROJECT_ID,
        token_encrypted="not-a-token-any-key-made",
    )
    with django_capture_on_commit_callbacks(execute=True):
        rows = [Room.objects.create(name="lobby", space=s) for s in (unset, garbled)]

    run_queued()

    for row in rows:
        row.refresh_from_db()
        assert row.sync_state == SyncState.PUSH_FAILED
    assert rows[0].last_error == (
        "the Space “Unset” cannot be used: the environment variable SIGNALWIRE_TEST_UNSET_TOKEN "
        "it names is unset or empty"
    )
    assert rows[1].last_error.startswith("the Space “Garbled” cannot be used: ")
    assert "cannot be decrypted" in rows[1].last_error
    assert sandbox.requests == [] and sandbox.rooms == {}
