"""Save and delete hooks: shell edits reach SignalWire after commit; the sync never echoes."""

from __future__ import annotations

import pytest

from rooms import services
from rooms.audit import audit_context
from rooms.models import AuditEntry, Conference, Room, SyncState
from rooms.outbox import pushes_suppressed
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def test_a_shell_save_is_marked_pending_and_pushed_after_commit(
    sandbox, queued, django_capture_on_commit_callbacks, conference_data, run_queued
):
    conference = services.conference_create(data=conference_data())
    assert queued == []  # the service's own saves are not pushed again
    version = Conference.objects.get(pk=conference.pk).local_version

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = Conference.objects.get(pk=conference.pk)
        row.display_name = "Renamed in the shell"
        row.save()
        assert queued == []  # nothing leaves before the commit
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Allhands"
    for callback in callbacks:
        callback()

    stored = Conference.objects.get(pk=conference.pk)
    assert (stored.sync_state, stored.local_version) == (SyncState.PENDING_PUSH, version + 1)
    assert queued == [("push", "conference", conference.pk)]
    run_queued()
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Renamed in the shell"
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.SYNCED


def test_a_shell_delete_queues_the_remote_delete(
    sandbox, queued, django_capture_on_commit_callbacks, room_data, run_queued
):
    room = services.room_create(data=room_data())
    remote_id = room.remote_id

    with django_capture_on_commit_callbacks(execute=True):
        Room.objects.filter(pk=room.pk).delete()

    assert queued == [("remote_delete", "room", remote_id, room.space_id)]
    run_queued()
    assert sandbox.rooms == {}


def test_sync_like_bulk_writes_never_echo(
    sandbox, queued, django_capture_on_commit_callbacks, conference_data
):
    conference = services.conference_create(data=conference_data())
    sandbox.clear_requests()

    with django_capture_on_commit_callbacks(execute=True), audit_context(source="sync"):
        Room.objects.bulk_create([Room(name="imported", remote_id="r-1")])
        conference.display_name = "From SignalWire"
        Conference.objects.bulk_update([conference], ["display_name"])
        # A save inside the sync's audit context is not pushed either.
        row = Conference.objects.get(pk=conference.pk)
        row.description = "also from SignalWire"
        row.save()
        with pushes_suppressed():
            Room.objects.get(name="imported").save()

    assert queued == []
    assert sandbox.requests == []
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.SYNCED


def test_a_stale_instance_does_not_roll_back_version_or_pending_delete(sandbox, queued):
    room = Room.objects.create(name="stale")
    stale = Room.objects.get(pk=room.pk)
    Room.objects.filter(pk=room.pk).update(
        local_version=40, sync_state=SyncState.PENDING_DELETE, remote_id="r-9"
    )

    stale.display_name = "late edit"
    stale.save()

    stored = Room.objects.get(pk=room.pk)
    assert stored.local_version == 40  # a pending delete is not turned back into a push
    assert (stored.sync_state, stored.remote_id) == (SyncState.PENDING_DELETE, "r-9")


def test_shell_saves_are_audited_as_shell(sandbox, queued):
    room = Room.objects.create(name="audited")

    entry = AuditEntry.objects.get(object_pk=str(room.pk), action=AuditEntry.Action.CREATE)
    assert entry.source == AuditEntry.Source.SHELL


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_script_edit_reaches_signalwire_through_a_real_worker(sandbox, celery_worker):
    room = Room.objects.create(name="via-worker", max_members=3)

    def synced() -> bool:
        room.refresh_from_db()
        return room.sync_state == SyncState.SYNCED

    wait_until(synced, timeout=20, message="the worker to push the new room")
    assert sandbox.rooms[room.remote_id]["max_members"] == 3
