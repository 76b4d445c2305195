"""Edits of conferences and rooms asked for by a person or a script, one code path for both.

Create, update, delete, refresh and mark pending, each driven by the kind's registry entry;
the per-kind functions (conference_*, room_*) only name the kind. Streams reuse its delete.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.utils import timezone

from rooms import intents, outbox, registry
from rooms.models import (
    AuditEntry,
    Conference,
    RemoteIntent,
    Room,
    SyncState,
)
from rooms.registry import NamedResource, Resource
from rooms.services.common import (
    TASK_LOCK_WAIT,
    RowBusyError,
    absorb_answer,
    acting,
    api_client,
    fetch_tokens,
    form_error,
    keep_pending,
    land_row,
    mirror_for,
    note_queued,
    replay_row_intents,
    row_lock,
    store_tokens,
)
from rooms.signalwire import schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import (
    NotFoundError,
    SignalWireError,
)
from rooms.signalwire.errors import ValidationError as RemoteValidationError

# --- conferences and rooms: create, update, delete -------------------------------------


def _create(
    spec: NamedResource[Any],
    *,
    data: dict[str, Any],
    actor: Any,
    source: str,
    client: SignalWireClient | None,
) -> Any:
    row = spec.model(**data)
    row.full_clean()
    with acting(source, actor):
        client = api_client(client, space=row.space)
        intent = intents.record(
            kind=spec.kind, model=spec.model, action=RemoteIntent.Action.CREATE, row=row,
            data=data,
        )
        try:
            answer = land_row(spec, row, client, look_up=False)
        except RemoteValidationError as exc:
            intents.drop(intent)
            raise form_error(exc, spec.model) from exc
        except SignalWireError as exc:
            if not exc.retryable:
                intents.drop(intent)
                raise
            # The client already retried; the push task finishes the job later. A create
            # whose answer was lost is looked up by name there, never repeated blindly.
            keep_pending(row, exc, intent=intent)
            return row
        absorb_answer(spec, row, answer)
        row.local_version = 1
        tokens = fetch_tokens(row, client) if spec.has_tokens else None
        _store_created(row, tokens, intent)
        return row


def _store_created(row: Any, tokens: list[dict[str, Any]] | None, intent: RemoteIntent) -> None:
    """Write a created row (and its tokens) and forget the intent, in one short transaction."""
    with transaction.atomic():
        row.save()
        if tokens is not None:
            store_tokens(row, tokens)
        intents.drop(intent)


def _update(
    spec: NamedResource[Any],
    *,
    row: Any,
    data: dict[str, Any],
    actor: Any,
    source: str,
    client: SignalWireClient | None,
) -> Any:
    with acting(source, actor):
        current = spec.model.objects.get(pk=row.pk)
        if current.sync_state == SyncState.PENDING_DELETE:
            raise DjangoValidationError(
                f"This {spec.kind} is waiting to be deleted in SignalWire; it cannot be edited."
            )
        if RemoteIntent.objects.filter(kind=spec.kind, object_pk=current.pk).exists():
            # An earlier edit whose answer was never stored comes first.
            try:
                replay_row_intents(spec, current.pk)
            except RowBusyError:
                pass  # still in the air: the row lock below decides
            current = spec.model.objects.get(pk=row.pk)
        changed = [f for f, v in data.items() if getattr(current, f) != v]
        _refuse_clears(current, data, changed)
        if not changed and current.sync_state == SyncState.SYNCED:
            return current
        previous_state = current.sync_state
        before = {f: getattr(current, f) for f in changed}
        for field in changed:
            setattr(current, field, data[field])
        # Only what changes is checked: stored values SignalWire already holds stay valid
        # even when the portal does not know them (a layout added after this release).
        current.full_clean(
            exclude=[f.name for f in spec.model._meta.fields if f.name not in changed]
        )
        intent = None
        try:
            with row_lock(spec.kind, current.pk, wait=_lock_wait(client)):
                current, changed, before = _rebase(spec, current, data, changed)
                if not changed and current.sync_state == SyncState.SYNCED:
                    return current
                previous_state = current.sync_state
                client = api_client(client, space=current.space)
                intent = intents.record(
                    kind=spec.kind, model=spec.model, action=RemoteIntent.Action.UPDATE,
                    row=current, data={f: data[f] for f in changed}, before=before,
                )
                answer = land_row(spec, current, client, look_up=current.remote_id is None)
        except RemoteValidationError as exc:
            if intent is not None:
                intents.withdraw(model=spec.model, intent=intent, previous_state=previous_state)
            raise form_error(exc, spec.model) from exc
        except NotFoundError as exc:
            intents.drop(intent)
            spec.model.objects.filter(pk=current.pk).update(
                sync_state=SyncState.DELETED_REMOTELY, last_error=str(exc)[:2000]
            )
            raise DjangoValidationError(
                f"This {spec.kind} no longer exists in SignalWire; nothing was changed."
            ) from exc
        except SignalWireError as exc:
            if not exc.retryable:
                if intent is not None:
                    intents.withdraw(model=spec.model, intent=intent, previous_state=previous_state)
                raise
            keep_pending(current, exc, fields=changed, intent=intent)
            return current
        written = absorb_answer(spec, current, answer)
        current.local_version += 1
        _store_answer(current, [*changed, *written, "local_version", "updated_at"], intent)
        return current


def _refuse_clears(current: Any, data: dict[str, Any], changed: list[str]) -> None:
    """Refuse clearing a field SignalWire's update cannot clear; the Space would keep it."""
    refused = schema.update_clear_errors(
        {f: data[f] for f in changed}, {f: getattr(current, f) for f in changed}
    )
    if refused:
        raise DjangoValidationError({f: [message] for f, message in refused.items()})


def _rebase(
    spec: Resource[Any], current: Any, data: dict[str, Any], changed: list[str]
) -> tuple[Any, list[str], dict[str, Any]]:
    """Apply an edit on the row as it is once its lock is held, not as it was before.

    Another edit may have landed while this one waited for the row lock; the PUT carries
    every managed field, so building it from the earlier read would undo that edit.
    """
    fresh = spec.model.objects.get(pk=current.pk)
    if fresh.local_version == current.local_version and fresh.updated_at == current.updated_at:
        return current, changed, {f: getattr(fresh, f) for f in changed}
    changed = [f for f in changed if getattr(fresh, f) != data[f]]
    before = {f: getattr(fresh, f) for f in changed}
    for field in changed:
        setattr(fresh, field, data[field])
    return fresh, changed, before


def _store_answer(row: Any, fields: list[str], intent: RemoteIntent | None) -> None:
    """Write what SignalWire answered and forget the intent, in one short transaction."""
    with transaction.atomic():
        row.save(update_fields=fields)
        intents.drop(intent)


def _lock_wait(client: SignalWireClient | None) -> float:
    """Say how long to wait for another push of the row: briefly in a web request."""
    wait = float(settings.SIGNALWIRE_PUSH_LOCK_WAIT)
    if getattr(client, "profile", None) == "interactive":
        # The page must answer within a few seconds; a busy row is kept as pending.
        return min(wait, TASK_LOCK_WAIT)
    return wait


def delete_row(
    spec: Resource[Any], *, row: Any, actor: Any, source: str, client: SignalWireClient | None
) -> bool:
    """Delete a row in SignalWire, then locally; False when it is left pending delete."""
    with acting(source, actor):
        current = spec.rows().filter(pk=row.pk).first()
        if current is None:
            return True
        intent = None
        try:
            with row_lock(spec.kind, current.pk, wait=_lock_wait(client)):
                client = api_client(client, space=current.space)
                intent = intents.record(
                    kind=spec.kind, model=spec.model, action=RemoteIntent.Action.DELETE,
                    row=current, data={},
                )
                delete_remote_object(spec, current, client)
        except SignalWireError as exc:
            if not exc.retryable:
                if intent is not None:
                    intents.withdraw(
                        model=spec.model, intent=intent, previous_state=current.sync_state
                    )
                spec.hide_secrets(current, exc)
                raise
            keep_pending_delete(spec, row, current, exc, intent)
            return False
        _store_deleted(current, intent)
        return True


def keep_pending_delete(
    spec: Resource[Any], row: Any, current: Any, exc: SignalWireError,
    intent: RemoteIntent | None,
) -> None:
    """Leave a delete SignalWire could not take now pending and queue the push that ends it.

    `current` is the row as read for the delete, `row` the caller's instance, which is told
    the new state and whether the push was queued.
    """
    with transaction.atomic():
        spec.model._default_manager.filter(pk=current.pk).update(
            sync_state=SyncState.PENDING_DELETE, last_error=spec.error_text(current, exc)
        )
        intents.drop(intent)
        outbox.push_after_commit(spec.kind, current.pk, delete=True, report=note_queued(row))
    row.sync_state = SyncState.PENDING_DELETE


def _store_deleted(row: Any, intent: RemoteIntent | None) -> None:
    """Delete the local row and forget the intent, in one short transaction."""
    with transaction.atomic():
        row.delete()
        intents.drop(intent)


def delete_remote_object(spec: Resource[Any], row: Any, client: SignalWireClient) -> None:
    """Delete a row's remote object; already gone counts as done."""
    remote_id = row.remote_id
    if not remote_id:
        # A pending create may have landed without us hearing the answer.
        found = spec.find_lost_create(client, row)
        if found is None:
            return
        remote_id = str(found["id"])
    try:
        spec.delete(client, remote_id)
    except NotFoundError:
        pass


def conference_create(
    *,
    data: dict[str, Any],
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Conference:
    """Create a conference in SignalWire, then mirror it with its tokens (pending if down)."""
    created = _create(registry.CONFERENCE, data=data, actor=actor, source=source, client=client)
    return cast(Conference, created)


def conference_update(
    *,
    conference: Conference,
    data: dict[str, Any],
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Conference:
    """Change a conference in SignalWire, then locally; the result's sync_state tells which."""
    updated = _update(
        registry.CONFERENCE, row=conference, data=data, actor=actor, source=source, client=client
    )
    return cast(Conference, updated)


def conference_delete(
    *,
    conference: Conference,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> bool:
    """Delete a conference in SignalWire, then locally; False when left pending delete."""
    return delete_row(
        registry.CONFERENCE, row=conference, actor=actor, source=source, client=client
    )


def room_create(
    *,
    data: dict[str, Any],
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Room:
    """Create a room in SignalWire, then mirror it (pending push when SignalWire is down)."""
    created = _create(registry.ROOM, data=data, actor=actor, source=source, client=client)
    return cast(Room, created)


def room_update(
    *,
    room: Room,
    data: dict[str, Any],
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Room:
    """Change a room in SignalWire, then locally; the result's sync_state tells which."""
    updated = _update(registry.ROOM, row=room, data=data, actor=actor, source=source, client=client)
    return cast(Room, updated)


def room_delete(
    *,
    room: Room,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> bool:
    """Delete a room in SignalWire, then locally; False when left pending delete."""
    return delete_row(registry.ROOM, row=room, actor=actor, source=source, client=client)


def mirror_refresh(
    *,
    row: Conference | Room,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> str:
    """Reload one row from SignalWire unless local changes wait; return what happened."""
    spec = mirror_for(row)
    with acting(source, actor):
        current = spec.model.objects.get(pk=row.pk)
        if current.is_unpushed or not current.remote_id:
            return "skipped"
        try:
            answer = spec.get(api_client(client, space=current.space), current.remote_id)
        except NotFoundError:
            spec.model.objects.filter(pk=current.pk).update(
                sync_state=SyncState.DELETED_REMOTELY
            )
            return "deleted_remotely"
        values = spec.fields(answer)
        if current.sync_state == SyncState.SYNCED and all(
            getattr(current, f) == v for f, v in values.items()
        ):
            # Nothing changed: no row write and no audit entry, only the time of the check.
            spec.model.objects.filter(pk=current.pk).update(last_synced_at=timezone.now())
            return "unchanged"
        written = absorb_answer(spec, current, answer)
        with transaction.atomic():
            # A local edit made while SignalWire answered wins: it is pushed, not overwritten.
            now = spec.model.objects.select_for_update().get(pk=current.pk)
            if now.is_unpushed or now.local_version != current.local_version:
                return "skipped"
            current.save(update_fields=[*written, "updated_at"])
        return "refreshed"


def mirror_mark_pending(*, rows: models.QuerySet[Any], queue: bool = True) -> list[int]:
    """Mark rows for a fresh push (and queue one each); rows waiting for deletion keep that."""
    spec = mirror_for(rows.model)
    with transaction.atomic():
        pks = list(
            rows.exclude(sync_state=SyncState.PENDING_DELETE).values_list("pk", flat=True)
        )
        spec.model.objects.filter(pk__in=pks).update(
            sync_state=SyncState.PENDING_PUSH, local_version=models.F("local_version") + 1
        )
        if queue:
            for pk in pks:
                outbox.push_after_commit(spec.kind, pk)
    return pks


