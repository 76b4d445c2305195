"""Save and delete hooks: changes made outside the services still reach SignalWire.

A shell or script that saves or deletes a Conference, Room or Stream only enqueues work here,
through rooms.outbox: the row is marked pending push with a bumped local_version, and the
push task is queued once the transaction commits. No network call ever happens in save().
Services and the sync mark their own writes so they never echo back to SignalWire.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from rooms import outbox
from rooms.audit import current_context
from rooms.models import AuditEntry, Conference, Room, Stream, SyncState
from rooms.outbox import pushes_suppressed

__all__ = ["connect", "pushes_suppressed"]

MIRRORED = (Conference, Room, Stream)
KINDS: dict[type[models.Model], str] = {Conference: "conference", Room: "room", Stream: "stream"}


def _quiet(raw: bool = False) -> bool:
    """Tell whether a write must not be pushed: fixtures, services or the sync made it."""
    return raw or outbox.suppressed() or current_context().source == AuditEntry.Source.SYNC


def keep_bookkeeping(
    sender: type[models.Model], instance: Any, raw: bool = False, **kwargs: Any
) -> None:
    """Stop a stale in-memory row from rolling back its version, state or remote id."""
    if _quiet(raw) or instance.pk is None:
        return
    stored = (
        sender._default_manager.filter(pk=instance.pk)
        .values("local_version", "sync_state", "remote_id")
        .first()
    )
    if stored is None:
        return
    instance.local_version = max(instance.local_version, stored["local_version"])
    if stored["remote_id"] and not instance.remote_id:
        instance.remote_id = stored["remote_id"]
    if stored["sync_state"] == SyncState.PENDING_DELETE:
        instance.sync_state = SyncState.PENDING_DELETE


def queue_push(
    sender: type[models.Model], instance: Any, raw: bool = False, **kwargs: Any
) -> None:
    """Mark a row saved outside the services pending push and queue the push after commit."""
    if _quiet(raw):
        return
    sender._default_manager.filter(pk=instance.pk).exclude(
        sync_state=SyncState.PENDING_DELETE
    ).update(sync_state=SyncState.PENDING_PUSH, local_version=models.F("local_version") + 1)
    instance.refresh_from_db(fields=["sync_state", "local_version"])
    outbox.push_after_commit(KINDS[sender], instance.pk)


def queue_remote_delete(sender: type[models.Model], instance: Any, **kwargs: Any) -> None:
    """Queue the remote delete of a row deleted outside the services, after commit."""
    if _quiet() or not instance.remote_id:
        return
    outbox.remote_delete_after_commit(KINDS[sender], instance.remote_id, instance.space_id)


def connect() -> None:
    """Connect the hooks to the mirrored models (called once from AppConfig.ready)."""
    for model in MIRRORED:
        label = model._meta.label_lower
        models.signals.pre_save.connect(
            keep_bookkeeping, sender=model, dispatch_uid=f"rooms.keep_bookkeeping.{label}"
        )
        models.signals.post_save.connect(
            queue_push, sender=model, dispatch_uid=f"rooms.queue_push.{label}"
        )
        models.signals.post_delete.connect(
            queue_remote_delete, sender=model, dispatch_uid=f"rooms.queue_remote_delete.{label}"
        )
