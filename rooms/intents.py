"""Intents: the outbox row an edit writes before it asks SignalWire (rooms.models.RemoteIntent).

The service that sends an edit records its intent in a short transaction, calls SignalWire
with no transaction open, then stores the answer and drops the intent in a second short
transaction. An intent left behind (the process died, the database failed) is replayed
later as a pending edit under the actor who asked for it, so a change SignalWire took is
never lost and never attributed to the push or the sync.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from rooms import audit
from rooms.models import UNPUSHED_STATES, AuditEntry, RemoteIntent, SyncState
from rooms.outbox import pushes_suppressed

Action = RemoteIntent.Action


def record(
    *,
    kind: str,
    model: type[models.Model],
    action: str,
    row: Any,
    data: dict[str, Any],
    before: dict[str, Any] | None = None,
) -> RemoteIntent:
    """Record, in its own short transaction, the edit about to be sent to SignalWire.

    `before` holds the values the edit replaces, so a replay never undoes a later edit.
    """
    ctx = audit.current_context()
    waiting = SyncState.PENDING_DELETE if action == Action.DELETE else SyncState.PENDING_PUSH
    intent = RemoteIntent(
        # The Space the edit goes to: a replay lands it there, never in another Space.
        space_id=row.space_id,
        kind=kind,
        action=action,
        object_pk=row.pk,
        name=row.name,
        data={"values": _stored(_without_space(data)), "before": _stored(before or {})},
        source=ctx.source,
        actor=cast(Any, ctx.actor),
        actor_label=ctx.actor_label,
        correlation_id=ctx.correlation_id,
    )
    with transaction.atomic():
        intent.save()
        if row.pk is not None:
            # The sync leaves a row alone while its edit is in the air, so a listing read
            # before the push landed cannot undo the edit; the stored values do not change,
            # so updated_at and the audit trail do not either.
            model._default_manager.filter(pk=row.pk).update(sync_state=waiting)
    return intent


def withdraw(*, model: type[models.Model], intent: RemoteIntent, previous_state: str) -> None:
    """Forget an intent SignalWire refused; the row gets back the state it had."""
    with transaction.atomic():
        if intent.object_pk is not None:
            model._default_manager.filter(
                pk=intent.object_pk, sync_state__in=UNPUSHED_STATES
            ).update(sync_state=previous_state)
        drop(intent)


def drop(intent: RemoteIntent | None) -> None:
    """Forget an intent whose outcome is stored (call it inside that transaction)."""
    if intent is not None and intent.pk is not None:
        RemoteIntent.objects.filter(pk=intent.pk).delete()


def acting_as(intent: RemoteIntent) -> AbstractContextManager[audit.AuditContext]:
    """Attribute what an intent leads to, done later, to the actor who asked for it."""
    return audit.audit_context(
        source=intent.source or AuditEntry.Source.SHELL,
        actor=intent.actor,
        actor_label=intent.actor_label,
        correlation_id=intent.correlation_id or None,
    )


def stale() -> models.QuerySet[RemoteIntent]:
    """The intents old enough that no request can still be waiting for their answer."""
    grace = timedelta(seconds=settings.SIGNALWIRE_INTENT_GRACE)
    return RemoteIntent.objects.filter(created_at__lte=timezone.now() - grace)


def _without_space(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out the row's Space: the intent keeps it in its own field."""
    return {k: v for k, v in values.items() if k not in ("space", "space_id")}


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """Write datetimes in full (microseconds too), so a replay compares them exactly."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _values(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    """Read an intent's stored JSON back into the model fields' types."""
    values = {}
    for name, value in data.items():
        field = cast("models.Field[Any, Any]", model._meta.get_field(name))
        if value is None or field.get_internal_type() == "JSONField":
            values[name] = value
        else:
            values[name] = field.to_python(value)
    return values


def replay(*, intent: RemoteIntent, model: type[models.Model]) -> int | None:
    """Write a stale intent as a pending edit under its actor; return the row's pk."""
    manager = model._default_manager
    if intent.action == Action.DELETE:
        # The delete push finishes it, under the intent's actor.
        with transaction.atomic():
            if not manager.filter(pk=intent.object_pk).update(
                sync_state=SyncState.PENDING_DELETE
            ):
                drop(intent)
                return None
        return intent.object_pk
    values = _values(model, intent.data.get("values", {}))
    before = _values(model, intent.data.get("before", {}))
    row: Any
    with acting_as(intent), pushes_suppressed(), transaction.atomic():
        # Locked, so an edit saved meanwhile cannot be overwritten with a stale version.
        locked = manager.select_for_update()
        if intent.object_pk is not None:
            row = locked.filter(pk=intent.object_pk).first()
        else:
            row = locked.filter(space_id=intent.space_id, name=intent.name).first()
        if row is None and (intent.action == Action.UPDATE or intent.object_pk is not None):
            # An update of a row that is gone has nothing to land; a create that named its
            # row (it was stored with the intent) and finds none was deleted locally since,
            # and rebuilding it would bring back what someone deleted. Only a create whose
            # row was never written (object_pk None) makes the row anew.
            drop(intent)
            return None
        if row is None:
            row = model(**values, space_id=intent.space_id)
            changed = None
        else:
            # A field edited again since (its value is no longer the one this edit
            # replaced) keeps the later value.
            changed = [
                f for f, v in values.items()
                if getattr(row, f) != v and (f not in before or getattr(row, f) == before[f])
            ]
            for field in changed:
                setattr(row, field, values[field])
        if row.sync_state != SyncState.PENDING_DELETE:
            row.sync_state = SyncState.PENDING_PUSH
        row.last_error = "Replayed an edit whose answer from SignalWire was never stored."
        row.local_version += 1
        if changed is None:
            row.save()
        else:
            row.save(update_fields=[*changed, "sync_state", "last_error", "local_version",
                                    "updated_at"])
        drop(intent)
        return int(row.pk)


def replay_row(*, kind: str, model: type[models.Model], pk: int) -> bool:
    """Replay a row's stale edits before it is pushed; False when one is still in the air."""
    pending = RemoteIntent.objects.filter(kind=kind, object_pk=pk).exclude(action=Action.DELETE)
    if pending.exclude(pk__in=stale().values("pk")).exists():
        return False
    for intent in pending:
        replay(intent=intent, model=model)
    return True


def delete_asked(*, kind: str, pk: int) -> tuple[RemoteIntent | None, bool]:
    """Return the delete intent of a row, if any, and whether it is still in the air."""
    asked = RemoteIntent.objects.filter(kind=kind, object_pk=pk, action=Action.DELETE).first()
    fresh = asked is not None and not stale().filter(pk=asked.pk).exists()
    return asked, fresh


def drop_row(*, kind: str, pk: int) -> None:
    """Forget every intent of a row that no longer exists (inside its delete's transaction)."""
    RemoteIntent.objects.filter(kind=kind, object_pk=pk).delete()
