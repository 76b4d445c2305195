"""Save and delete hooks: changes made outside the services still reach SignalWire.

A shell or script that saves or deletes a Conference or Room only enqueues work here (the
outbox pattern): the row is marked pending push with a bumped local_version, and the push
task is queued once the transaction commits. No network call ever happens in save().
Services and the sync mark their own writes so they never echo back to SignalWire.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import models, transaction

from rooms.models import AuditEntry, Conference, Room, SyncState

_suppressed: ContextVar[bool] = ContextVar("room_portal_pushes_suppressed", default=False)
MIRRORED = (Conference, Room)


@contextmanager
def pushes_suppressed() -> Iterator[None]:
    """Keep the hooks quiet for writes that already agree with SignalWire (services, sync)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def _quiet(raw: bool = False) -> bool:
    """Tell whether a write must not be pushed: fixtures, services or the sync made it."""
    from rooms.audit import current_context

    return raw or _suppressed.get() or current_context().source == AuditEntry.Source.SYNC


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
    from rooms.services import mirror_for, push_enqueue

    sender._default_manager.filter(pk=instance.pk).exclude(
        sync_state=SyncState.PENDING_DELETE
    ).update(sync_state=SyncState.PENDING_PUSH, local_version=models.F("local_version") + 1)
    instance.refresh_from_db(fields=["sync_state", "local_version"])
    kind, pk = mirror_for(sender).kind, instance.pk
    transaction.on_commit(lambda: push_enqueue(kind, pk))


def queue_remote_delete(sender: type[models.Model], instance: Any, **kwargs: Any) -> None:
    """Queue the remote delete of a row deleted outside the services, after commit."""
    if _quiet() or not instance.remote_id:
        return
    from rooms.services import mirror_for, remote_delete_enqueue

    kind, remote_id = mirror_for(sender).kind, instance.remote_id
    transaction.on_commit(lambda: remote_delete_enqueue(kind, remote_id))


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
