"""Pushes run by the tasks of rooms.tasks.push: land pending rows, finish pending deletes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

from django.db import models, transaction

from rooms import intents, outbox, registry
from rooms.models import (
    UNPUSHED_STATES,
    AuditEntry,
    Conference,
    Room,
    Space,
    SyncState,
)
from rooms.registry import NamedResource, Resource
from rooms.services import alerts
from rooms.services.common import (
    PUSH_ROUNDS,
    TASK_LOCK_WAIT,
    RowBusyError,
    absorb_answer,
    acting,
    api_client,
    fetch_tokens,
    land_row,
    mirror_for,
    named_mirror_for,
    replay_row_intents,
    row_lock,
    store_tokens,
)
from rooms.services.mirror import (
    delete_remote_object,
    delete_row,
)
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    SignalWireError,
)
from rooms.signalwire.errors import ValidationError as RemoteValidationError

logger = logging.getLogger("rooms.services")

# Answers no retry will change: the row is marked failed with the reason at once. A Space
# whose own settings are broken (ConfigurationError) is one of them.
REFUSED = (RemoteValidationError, AuthenticationError, ConfigurationError, NotFoundError)


# --- pushes (run by the tasks of rooms.tasks.push) -------------------------------------


def _push(
    spec: NamedResource[Any], *, pk: int, version: int | None, client: SignalWireClient | None
) -> str:
    """Land a pending row; the newest local version wins. Retryable errors propagate."""
    with acting(AuditEntry.Source.PUSH, None):
        with row_lock(spec.kind, pk, wait=TASK_LOCK_WAIT):
            replay_row_intents(spec, pk)
            # A local edit made while a push is in the air is pushed right after it.
            for _ in range(PUSH_ROUNDS):
                row = spec.model.objects.filter(pk=pk).first()
                if row is None or row.sync_state != SyncState.PENDING_PUSH:
                    return "nothing to push"
                pushed = row.local_version
                if version is not None and pushed > version:
                    logger.debug("%s %s: pushing v%s, newer than v%s", spec.kind, pk, pushed,
                                 version)
                spec.model.objects.filter(pk=pk).update(
                    push_attempts=models.F("push_attempts") + 1
                )
                try:
                    # The row's own Space: a Space refusing us fails only its rows.
                    client = api_client(client, space=row.space)
                    answer = land_row(spec, row, client, look_up=row.remote_id is None)
                except REFUSED as exc:
                    push_mark_failed(kind=spec.kind, pk=pk, error=refusal_text(row, exc))
                    return "failed"
                except SignalWireError as exc:
                    _keep_identity(spec, pk, row.remote_id, exc)
                    raise
                with transaction.atomic():
                    fresh = spec.model.objects.select_for_update().filter(pk=pk).first()
                    if fresh is None:
                        return "deleted meanwhile"
                    if fresh.local_version == pushed:
                        # Only the answer is written: it holds the values just pushed.
                        written = absorb_answer(spec, fresh, answer)
                        fresh.save(update_fields=[*written, "updated_at"])
                        landed = fresh
                    else:
                        _keep_identity(spec, pk, row.remote_id, None)
                        landed = None
                if landed is not None:
                    if spec.has_tokens and not landed.tokens.exists():
                        tokens = fetch_tokens(landed, client)
                        if tokens is not None:
                            with transaction.atomic():
                                store_tokens(landed, tokens)
                    return "pushed"
            raise RowBusyError("the row kept changing while it was pushed")


def refusal_text(row: Any, exc: SignalWireError) -> str:
    """Say why a push was refused; a refused sign-in names the Space that refused it."""
    if isinstance(exc, AuthenticationError):
        return f"the Space “{row.space.name}” refused the portal's API token: {exc}"
    return str(exc)


def _keep_identity(
    spec: Resource[Any], pk: int, remote_id: str | None, exc: SignalWireError | None
) -> None:
    """Remember the remote object a push created, so the next round replaces it."""
    fields: dict[str, Any] = {} if exc is None else {"last_error": str(exc)[:2000]}
    if remote_id:
        spec.model.objects.filter(pk=pk, remote_id__isnull=True).update(remote_id=remote_id)
    if fields:
        spec.model.objects.filter(pk=pk).update(**fields)


def _push_delete(spec: Resource[Any], *, pk: int, client: SignalWireClient | None) -> str:
    """Finish a pending delete: remote first, then the local row. Retryable errors propagate."""
    with acting(AuditEntry.Source.PUSH, None):
        with row_lock(spec.kind, pk, wait=TASK_LOCK_WAIT):
            row = spec.rows().filter(pk=pk).first()
            if row is None:
                return "already gone"
            if row.sync_state != SyncState.PENDING_DELETE:
                return "not pending delete"
            asked, fresh = intents.delete_asked(kind=spec.kind, pk=pk)
            if fresh:
                raise RowBusyError(
                    f"a delete of this {spec.row_noun} is still on its way to SignalWire"
                )
            try:
                delete_remote_object(spec, row, api_client(client, space=row.space))
            except (AuthenticationError, ConfigurationError) as exc:
                push_mark_failed(
                    kind=spec.kind, pk=pk, error=spec.error_text(row, refusal_text(row, exc))
                )
                return "failed"
            except SignalWireError as exc:
                spec.hide_secrets(row, exc)
                raise
            # A delete someone asked for is recorded as theirs, even when finished here.
            with intents.acting_as(asked) if asked is not None else nullcontext():
                with transaction.atomic():
                    row.delete()
                    intents.drop_row(kind=spec.kind, pk=pk)
            return "deleted"


def mirror_push(
    *, kind: str, pk: int, version: int | None = None, client: SignalWireClient | None = None
) -> str:
    """Push one pending row of any registered kind (the push task, admin action runs)."""
    return _push(named_mirror_for(kind), pk=pk, version=version, client=client)


def mirror_push_delete(*, kind: str, pk: int, client: SignalWireClient | None = None) -> str:
    """Finish deleting a row of any registered kind left pending delete (the delete task)."""
    return _push_delete(mirror_for(kind), pk=pk, client=client)


def mirror_delete(
    *,
    row: Conference | Room,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> bool:
    """Delete a row of either kind, SignalWire first; False when left pending delete."""
    return delete_row(mirror_for(row), row=row, actor=actor, source=source, client=client)


def conference_push(
    *, conference_id: int, version: int | None = None, client: SignalWireClient | None = None
) -> str:
    """Push a pending conference to SignalWire (used by the push task)."""
    return _push(registry.CONFERENCE, pk=conference_id, version=version, client=client)


def room_push(
    *, room_id: int, version: int | None = None, client: SignalWireClient | None = None
) -> str:
    """Push a pending room to SignalWire (used by the push task)."""
    return _push(registry.ROOM, pk=room_id, version=version, client=client)


def conference_push_delete(*, conference_id: int, client: SignalWireClient | None = None) -> str:
    """Finish deleting a conference left pending delete (used by the delete task)."""
    return _push_delete(registry.CONFERENCE, pk=conference_id, client=client)


def room_push_delete(*, room_id: int, client: SignalWireClient | None = None) -> str:
    """Finish deleting a room left pending delete (used by the delete task)."""
    return _push_delete(registry.ROOM, pk=room_id, client=client)


def remote_delete(
    *,
    kind: str,
    remote_id: str,
    space_id: int | None = None,
    client: SignalWireClient | None = None,
) -> None:
    """Delete an object in SignalWire whose local row is already gone; gone counts as done.

    space_id names the Space the row belonged to (None: the environment's).
    """
    spec = mirror_for(kind)
    space = Space.objects.get(pk=space_id) if space_id is not None else None
    try:
        spec.delete(api_client(client, space=space), remote_id)
    except NotFoundError:
        pass


def push_mark_failed(*, kind: str, pk: int, error: str | BaseException) -> None:
    """Record that a row's push will not land without a person's help."""
    spec = mirror_for(kind)
    # A row another push has landed meanwhile stays as it is; a secret the error echoed
    # (a stream's URL) is masked by the resource.
    spec.model._default_manager.filter(pk=pk, sync_state__in=UNPUSHED_STATES).update(
        sync_state=SyncState.PUSH_FAILED, last_error=spec.error_text(pk, error)
    )
    alerts.soon(pushes_refused=True)


def push_note_waiting(*, kind: str, pk: int, error: str | BaseException) -> None:
    """Say why a row's push still waits; it stays pending and the periodic push retries it."""
    spec = mirror_for(kind)
    spec.model._default_manager.filter(pk=pk, sync_state__in=UNPUSHED_STATES).update(
        last_error=f"Waiting for SignalWire: {spec.error_text(pk, error)}"[:2000]
    )


def remote_delete_enqueue(kind: str, remote_id: str, space_id: int | None = None) -> bool:
    """Queue the remote delete of a row already deleted locally (a shell delete)."""
    return outbox.remote_delete_enqueue(kind, remote_id, space_id)


def pending_rows() -> Iterator[tuple[str, int, bool]]:
    """Yield (kind, pk, is_delete) for every row whose change still waits to land."""
    for spec in registry.RESOURCES.values():
        rows = spec.model.objects.filter(
            sync_state__in=(SyncState.PENDING_PUSH, SyncState.PENDING_DELETE)
        ).values_list("pk", "sync_state")
        for pk, state in rows.iterator():
            yield spec.kind, pk, state == SyncState.PENDING_DELETE


