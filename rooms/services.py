"""Writes that reach SignalWire: remote first, then the local mirror, one short transaction each.

Admin, hooks, tasks and commands call these functions; nothing else both calls the client
and writes the mirrored models. No transaction is ever open while SignalWire is asked:
an edit first records its intent (rooms.models.RemoteIntent) in a short transaction, then
calls SignalWire with none open, then stores the answer and drops the intent in a second
short transaction. An intent left behind is replayed by the next push under its actor.
Each service opens an audit context so the django-auditlog entries its saves write name
the actor and the source, and keeps its own saves quiet for the hooks of rooms.signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.utils import timezone

from rooms import audit, intents, outbox, registry
from rooms.locks import redis_client
from rooms.models import (
    UNPUSHED_STATES,
    AuditEntry,
    Conference,
    ConferenceToken,
    RemoteIntent,
    Room,
    SyncState,
)
from rooms.outbox import pushes_suppressed
from rooms.registry import Resource
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient, build_client
from rooms.signalwire.errors import (
    AuthenticationError,
    NotFoundError,
    SignalWireError,
    UnavailableError,
)
from rooms.signalwire.errors import ValidationError as RemoteValidationError

logger = logging.getLogger("rooms.services")

# Bookkeeping written beside the values SignalWire answered.
_SYNCED_BOOKKEEPING = ("sync_state", "last_synced_at", "last_error", "push_attempts")
# A task that finds the row busy retries later instead of holding a worker.
TASK_LOCK_WAIT = 1.0
# Rounds one push makes when local edits keep arriving while it talks to SignalWire.
PUSH_ROUNDS = 5


class RowBusyError(UnavailableError):
    """Another push of the same row holds its lock; try again shortly."""

    default_message = "another push of this row is in progress; try again shortly"


# --- shared plumbing -------------------------------------------------------------------


def mirror_for(model_or_kind: str | models.Model | type[models.Model]) -> Resource:
    """Return the registered resource of a model class, an instance or a kind name."""
    return registry.resource_for(model_or_kind)


@contextmanager
def _acting(source: str, actor: Any) -> Iterator[None]:
    """Open an audit context unless the caller (a task, an admin request) already has one."""
    ctx = audit.current_context()
    same_actor = actor is None or ctx.actor == actor
    with pushes_suppressed():
        if ctx.correlation_id and ctx.source == str(source) and same_actor:
            yield
        else:
            with audit.audit_context(source=source, actor=actor):
                yield


@contextmanager
def row_lock(kind: str, pk: int | None, *, wait: float | None = None) -> Iterator[None]:
    """Serialize pushes of one row across processes; RowBusyError when it stays held."""
    if pk is None:
        yield
        return
    if wait is None:
        wait = settings.SIGNALWIRE_PUSH_LOCK_WAIT
    lock = redis_client().lock(
        f"{settings.REDIS_KEY_PREFIX}push:{kind}:{pk}",
        timeout=settings.SIGNALWIRE_PUSH_LOCK_TIMEOUT,
        blocking_timeout=wait,
    )
    try:
        acquired = lock.acquire()
    except redis.RedisError as exc:
        # Without Redis no push can be queued either; carrying on unlocked beats refusing
        # the edit, and the version check below still keeps the newest state.
        logger.warning("push lock for %s %s unavailable: %s", kind, pk, exc)
        yield
        return
    if not acquired:
        raise RowBusyError()
    try:
        yield
    finally:
        try:
            lock.release()
        except redis.RedisError:
            logger.warning("push lock for %s %s expired before release", kind, pk)


def _client(client: SignalWireClient | None, profile: str = "background") -> SignalWireClient:
    """Use the caller's client, or the process's client of that profile."""
    return client if client is not None else build_client(profile=profile)


def _form_error(exc: RemoteValidationError, model: type[models.Model]) -> DjangoValidationError:
    """Turn SignalWire's 422 into a Django error keyed by the model's field names."""
    known = {f.name for f in model._meta.get_fields()}
    errors: dict[str, list[str]] = {}
    for field, messages in exc.field_errors.items():
        if field in known:
            errors.setdefault(field, []).extend(messages)
        else:
            errors.setdefault(NON_FIELD_ERRORS, []).extend(f"{field}: {m}" for m in messages)
    if exc.non_field_errors:
        errors.setdefault(NON_FIELD_ERRORS, []).extend(exc.non_field_errors)
    return DjangoValidationError(errors or {NON_FIELD_ERRORS: [str(exc)]})


def _absorb(spec: Resource, row: Any, answer: dict) -> list[str]:
    """Copy SignalWire's answer onto the row as synced; return the fields written."""
    values = spec.fields(answer)
    for field, value in values.items():
        setattr(row, field, value)
    row.sync_state = SyncState.SYNCED
    row.last_synced_at = timezone.now()
    row.last_error = ""
    row.push_attempts = 0
    return [*values, *_SYNCED_BOOKKEEPING]


def _land(spec: Resource, row: Any, client: SignalWireClient, *, look_up: bool) -> dict:
    """Send a row's managed fields to SignalWire (replace or create); return the answer.

    look_up: a create that may already have happened (a pending create) is first looked
    up by name and then replaced, so retries never make a second remote room.
    """
    if row.remote_id:
        return spec.update(client, row.remote_id, spec.update_body(row))
    if look_up:
        found = spec.find(client, row.name)
        if found is not None:
            row.remote_id = str(found["id"])
            return spec.update(client, row.remote_id, spec.update_body(row))
    answer = spec.create(client, spec.create_body(row))
    row.remote_id = str(answer["id"])
    # The create request lacks some fields the update has (e.g. tone_on_entry_and_exit):
    # send them with one PUT when the new object does not already hold them.
    body = spec.update_body(row)
    if any(answer.get(f) != v for f, v in body.items() if f not in spec.create_fields):
        answer = spec.update(client, row.remote_id, body)
    return answer


def push_enqueue(kind: str, pk: int, *, delete: bool = False) -> bool:
    """Queue the background push (or delete) of one row now; False when it was not queued."""
    return outbox.push_enqueue(kind, pk, delete=delete)


def _note_queued(row: Any) -> Callable[[bool], None]:
    """Remember on the instance whether its push was queued, for the caller to report."""

    def note(queued: bool) -> None:
        row.push_queued = queued

    row.push_queued = None  # not known until the transaction commits
    return note


def _keep_pending(
    row: Any,
    exc: SignalWireError,
    *,
    fields: list[str] | None = None,
    intent: RemoteIntent | None = None,
) -> None:
    """Save a change SignalWire could not take now and queue the push that lands it."""
    row.sync_state = SyncState.PENDING_PUSH
    row.last_error = str(exc)[:2000]
    row.local_version += 1
    with transaction.atomic():
        if fields is None:
            row.save()
        else:
            row.save(update_fields=[*fields, "remote_id", "sync_state", "last_error",
                                    "local_version", "updated_at"])
        intents.drop(intent)
        outbox.push_after_commit(mirror_for(row).kind, row.pk, report=_note_queued(row))


def intents_replay() -> list[tuple[str, int]]:
    """Replay every stale intent as a pending edit (pending_rows then lists it)."""
    replayed = []
    for intent in list(intents.stale()[:1000]):
        pk = intents.replay(intent=intent, model=mirror_for(intent.kind).model)
        if pk is not None:
            replayed.append((intent.kind, pk))
    return replayed


def _replay_row_intents(spec: Resource, pk: int) -> None:
    """Replay a row's stale edits first; an edit still in the air makes the row busy."""
    if not intents.replay_row(kind=spec.kind, model=spec.model, pk=pk):
        raise RowBusyError("an edit of this row is still on its way to SignalWire")


# --- conferences and rooms: create, update, delete -------------------------------------


def _create(
    spec: Resource, *, data: dict, actor: Any, source: str, client: SignalWireClient | None
) -> Any:
    row = spec.model(**data)
    row.full_clean()
    with _acting(source, actor):
        client = _client(client)
        intent = intents.record(
            kind=spec.kind, model=spec.model, action=RemoteIntent.Action.CREATE, row=row,
            data=data,
        )
        try:
            answer = _land(spec, row, client, look_up=False)
        except RemoteValidationError as exc:
            intents.drop(intent)
            raise _form_error(exc, spec.model) from exc
        except SignalWireError as exc:
            if not exc.retryable:
                intents.drop(intent)
                raise
            # The client already retried; the push task finishes the job later. A create
            # whose answer was lost is looked up by name there, never repeated blindly.
            _keep_pending(row, exc, intent=intent)
            return row
        _absorb(spec, row, answer)
        row.local_version = 1
        tokens = _fetch_tokens(row, client) if spec.has_tokens else None
        _store_created(row, tokens, intent)
        return row


def _store_created(row: Any, tokens: list[dict] | None, intent: RemoteIntent) -> None:
    """Write a created row (and its tokens) and forget the intent, in one short transaction."""
    with transaction.atomic():
        row.save()
        if tokens is not None:
            _store_tokens(row, tokens)
        intents.drop(intent)


def _update(
    spec: Resource,
    *,
    row: Any,
    data: dict,
    actor: Any,
    source: str,
    client: SignalWireClient | None,
) -> Any:
    with _acting(source, actor):
        current = spec.model.objects.get(pk=row.pk)
        if current.sync_state == SyncState.PENDING_DELETE:
            raise DjangoValidationError(
                f"This {spec.kind} is waiting to be deleted in SignalWire; it cannot be edited."
            )
        if RemoteIntent.objects.filter(kind=spec.kind, object_pk=current.pk).exists():
            # An earlier edit whose answer was never stored comes first.
            try:
                _replay_row_intents(spec, current.pk)
            except RowBusyError:
                pass  # still in the air: the row lock below decides
            current = spec.model.objects.get(pk=row.pk)
        changed = [f for f, v in data.items() if getattr(current, f) != v]
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
                client = _client(client)
                intent = intents.record(
                    kind=spec.kind, model=spec.model, action=RemoteIntent.Action.UPDATE,
                    row=current, data={f: data[f] for f in changed}, before=before,
                )
                answer = _land(spec, current, client, look_up=current.remote_id is None)
        except RemoteValidationError as exc:
            intents.withdraw(model=spec.model, intent=intent, previous_state=previous_state)
            raise _form_error(exc, spec.model) from exc
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
            _keep_pending(current, exc, fields=changed, intent=intent)
            return current
        written = _absorb(spec, current, answer)
        current.local_version += 1
        _store_answer(current, [*changed, *written, "local_version", "updated_at"], intent)
        return current


def _store_answer(row: Any, fields: list[str], intent: RemoteIntent | None) -> None:
    """Write what SignalWire answered and forget the intent, in one short transaction."""
    with transaction.atomic():
        row.save(update_fields=fields)
        intents.drop(intent)


def _lock_wait(client: SignalWireClient | None) -> float:
    """Say how long to wait for another push of the row: briefly in a web request."""
    wait = settings.SIGNALWIRE_PUSH_LOCK_WAIT
    if getattr(client, "profile", None) == "interactive":
        # The page must answer within a few seconds; a busy row is kept as pending.
        return min(wait, TASK_LOCK_WAIT)
    return wait


def _delete(
    spec: Resource, *, row: Any, actor: Any, source: str, client: SignalWireClient | None
) -> bool:
    with _acting(source, actor):
        current = spec.model.objects.filter(pk=row.pk).first()
        if current is None:
            return True
        intent = None
        try:
            with row_lock(spec.kind, current.pk, wait=_lock_wait(client)):
                client = _client(client)
                intent = intents.record(
                    kind=spec.kind, model=spec.model, action=RemoteIntent.Action.DELETE,
                    row=current, data={},
                )
                _delete_remote(spec, current, client)
        except SignalWireError as exc:
            if not exc.retryable:
                if intent is not None:
                    intents.withdraw(
                        model=spec.model, intent=intent, previous_state=current.sync_state
                    )
                raise
            with transaction.atomic():
                spec.model.objects.filter(pk=current.pk).update(
                    sync_state=SyncState.PENDING_DELETE, last_error=str(exc)[:2000]
                )
                intents.drop(intent)
                outbox.push_after_commit(
                    spec.kind, current.pk, delete=True, report=_note_queued(row)
                )
            row.sync_state = SyncState.PENDING_DELETE
            return False
        _store_deleted(current, intent)
        return True


def _store_deleted(row: Any, intent: RemoteIntent | None) -> None:
    """Delete the local row and forget the intent, in one short transaction."""
    with transaction.atomic():
        row.delete()
        intents.drop(intent)


def _delete_remote(spec: Resource, row: Any, client: SignalWireClient) -> None:
    """Delete a row's remote object; already gone counts as done."""
    remote_id = row.remote_id
    if not remote_id:
        # A pending create may have landed without us hearing the answer.
        found = spec.find(client, row.name)
        if found is None:
            return
        remote_id = str(found["id"])
    try:
        spec.delete(client, remote_id)
    except NotFoundError:
        pass


def conference_create(
    *,
    data: dict,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Conference:
    """Create a conference in SignalWire, then mirror it with its tokens (pending if down)."""
    return _create(registry.CONFERENCE, data=data, actor=actor, source=source, client=client)


def conference_update(
    *,
    conference: Conference,
    data: dict,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Conference:
    """Change a conference in SignalWire, then locally; the result's sync_state tells which."""
    return _update(
        registry.CONFERENCE, row=conference, data=data, actor=actor, source=source, client=client
    )


def conference_delete(
    *,
    conference: Conference,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> bool:
    """Delete a conference in SignalWire, then locally; False when left pending delete."""
    return _delete(registry.CONFERENCE, row=conference, actor=actor, source=source, client=client)


def room_create(
    *,
    data: dict,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Room:
    """Create a room in SignalWire, then mirror it (pending push when SignalWire is down)."""
    return _create(registry.ROOM, data=data, actor=actor, source=source, client=client)


def room_update(
    *,
    room: Room,
    data: dict,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Room:
    """Change a room in SignalWire, then locally; the result's sync_state tells which."""
    return _update(registry.ROOM, row=room, data=data, actor=actor, source=source, client=client)


def room_delete(
    *,
    room: Room,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> bool:
    """Delete a room in SignalWire, then locally; False when left pending delete."""
    return _delete(registry.ROOM, row=room, actor=actor, source=source, client=client)


def mirror_refresh(
    *,
    row: Conference | Room,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> str:
    """Reload one row from SignalWire unless local changes wait; return what happened."""
    spec = mirror_for(row)
    with _acting(source, actor):
        current = spec.model.objects.get(pk=row.pk)
        if current.is_unpushed or not current.remote_id:
            return "skipped"
        try:
            answer = spec.get(_client(client), current.remote_id)
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
        written = _absorb(spec, current, answer)
        with transaction.atomic():
            current.save(update_fields=[*written, "updated_at"])
        return "refreshed"


def mirror_mark_pending(*, rows: models.QuerySet, queue: bool = True) -> list[int]:
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


# --- pushes (run by the tasks of rooms.tasks.push) -------------------------------------


def _push(
    spec: Resource, *, pk: int, version: int | None, client: SignalWireClient | None
) -> str:
    """Land a pending row; the newest local version wins. Retryable errors propagate."""
    with _acting(AuditEntry.Source.PUSH, None):
        with row_lock(spec.kind, pk, wait=TASK_LOCK_WAIT):
            client = _client(client)
            _replay_row_intents(spec, pk)
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
                    answer = _land(spec, row, client, look_up=row.remote_id is None)
                except (RemoteValidationError, AuthenticationError, NotFoundError) as exc:
                    push_mark_failed(kind=spec.kind, pk=pk, error=str(exc))
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
                        written = _absorb(spec, fresh, answer)
                        fresh.save(update_fields=[*written, "updated_at"])
                        landed = fresh
                    else:
                        _keep_identity(spec, pk, row.remote_id, None)
                        landed = None
                if landed is not None:
                    if spec.has_tokens and not landed.tokens.exists():
                        tokens = _fetch_tokens(landed, client)
                        if tokens is not None:
                            with transaction.atomic():
                                _store_tokens(landed, tokens)
                    return "pushed"
            raise RowBusyError("the row kept changing while it was pushed")


def _keep_identity(
    spec: Resource, pk: int, remote_id: str | None, exc: SignalWireError | None
) -> None:
    """Remember the remote object a push created, so the next round replaces it."""
    fields: dict[str, Any] = {} if exc is None else {"last_error": str(exc)[:2000]}
    if remote_id:
        spec.model.objects.filter(pk=pk, remote_id__isnull=True).update(remote_id=remote_id)
    if fields:
        spec.model.objects.filter(pk=pk).update(**fields)


def _push_delete(spec: Resource, *, pk: int, client: SignalWireClient | None) -> str:
    """Finish a pending delete: remote first, then the local row. Retryable errors propagate."""
    with _acting(AuditEntry.Source.PUSH, None):
        with row_lock(spec.kind, pk, wait=TASK_LOCK_WAIT):
            row = spec.model.objects.filter(pk=pk).first()
            if row is None:
                return "already gone"
            if row.sync_state != SyncState.PENDING_DELETE:
                return "not pending delete"
            asked, fresh = intents.delete_asked(kind=spec.kind, pk=pk)
            if fresh:
                raise RowBusyError("a delete of this row is still on its way to SignalWire")
            try:
                _delete_remote(spec, row, _client(client))
            except AuthenticationError as exc:
                push_mark_failed(kind=spec.kind, pk=pk, error=str(exc))
                return "failed"
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
    return _push(mirror_for(kind), pk=pk, version=version, client=client)


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
    return _delete(mirror_for(row), row=row, actor=actor, source=source, client=client)


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


def remote_delete(*, kind: str, remote_id: str, client: SignalWireClient | None = None) -> None:
    """Delete an object in SignalWire whose local row is already gone; gone counts as done."""
    spec = mirror_for(kind)
    try:
        spec.delete(_client(client), remote_id)
    except NotFoundError:
        pass


def push_mark_failed(*, kind: str, pk: int, error: str) -> None:
    """Record that a row's push will not land without a person's help."""
    spec = mirror_for(kind)
    # A row another push has landed meanwhile stays as it is.
    spec.model.objects.filter(pk=pk, sync_state__in=UNPUSHED_STATES).update(
        sync_state=SyncState.PUSH_FAILED, last_error=error[:2000]
    )


def push_note_waiting(*, kind: str, pk: int, error: str) -> None:
    """Say why a row's push still waits; it stays pending and the periodic push retries it."""
    spec = mirror_for(kind)
    spec.model.objects.filter(pk=pk, sync_state__in=UNPUSHED_STATES).update(
        last_error=f"Waiting for SignalWire: {error}"[:2000]
    )


def remote_delete_enqueue(kind: str, remote_id: str) -> bool:
    """Queue the remote delete of a row already deleted locally (a shell delete)."""
    return outbox.remote_delete_enqueue(kind, remote_id)


def pending_rows() -> Iterator[tuple[str, int, bool]]:
    """Yield (kind, pk, is_delete) for every row whose change still waits to land."""
    for spec in registry.RESOURCES.values():
        rows = spec.model.objects.filter(
            sync_state__in=(SyncState.PENDING_PUSH, SyncState.PENDING_DELETE)
        ).values_list("pk", "sync_state")
        for pk, state in rows.iterator():
            yield spec.kind, pk, state == SyncState.PENDING_DELETE


# --- conference tokens, shared with rooms.tokens ---------------------------------------


def _fetch_tokens(conference: Conference, client: SignalWireClient) -> list[dict] | None:
    """Read a conference's tokens now if SignalWire answers; the background fetch retries."""
    try:
        return client.list_conference_tokens(conference.remote_id)
    except SignalWireError as exc:
        logger.info("tokens of conference %s left to the background: %s", conference.pk, exc)
        return None


def _store_tokens(conference: Conference, answers: list[dict]) -> list[ConferenceToken]:
    """Upsert the conference's token rows from SignalWire's list; drop the ones it lost."""
    now = timezone.now()
    existing = {t.remote_id: t for t in conference.tokens.all()}
    kept = []
    for answer in answers:
        values = payloads.token_fields(answer)
        token = existing.pop(values["remote_id"], None) or ConferenceToken(
            conference=conference
        )
        changed = [f for f, v in values.items() if getattr(token, f) != v]
        token.last_synced_at = now
        if token.pk is None:
            for field, value in values.items():
                setattr(token, field, value)
            token.save()
        else:
            for field in changed:
                setattr(token, field, values[field])
            token.save(update_fields=[*changed, "last_synced_at"])
        kept.append(token)
    for gone in existing.values():
        gone.delete()
    return kept
