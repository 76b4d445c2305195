"""Plumbing every service shares: audit context, row lock, client, error mapping, landing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.utils import timezone

from rooms import audit, intents, outbox, registry
from rooms.connections import redis_client
from rooms.locks import Flight
from rooms.models import (
    Conference,
    ConferenceToken,
    RemoteIntent,
    Space,
    SyncState,
)
from rooms.outbox import pushes_suppressed
from rooms.registry import NamedResource, Resource
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient, build_client
from rooms.signalwire.errors import (
    ConfigurationError,
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


def mirror_for(model_or_kind: str | models.Model | type[models.Model]) -> Resource[Any]:
    """Return the registered resource of a model class, an instance or a kind name."""
    return registry.resource_for(model_or_kind)


def named_mirror_for(kind: str) -> NamedResource[Any]:
    """Return a registered resource that is created and found by name (not a stream)."""
    spec = registry.resource_for(kind)
    if not isinstance(spec, NamedResource):
        raise TypeError(f"a {kind} is created and pushed through its owner's service")
    return spec


@contextmanager
def acting(source: str, actor: Any) -> Iterator[None]:
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
    timeout = float(settings.SIGNALWIRE_PUSH_LOCK_TIMEOUT)
    # thread_local=False: the renewal thread must see the token the acquiring thread set.
    lock = redis_client().lock(
        f"{settings.REDIS_KEY_PREFIX}push:{kind}:{pk}",
        timeout=timeout,
        blocking_timeout=wait,
        thread_local=False,
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
    # Renewed while held, so a push slower than the timeout keeps the row to itself.
    flight = Flight(lock)
    flight.start_renewal(max(timeout / 3, 0.05))
    try:
        yield
    finally:
        flight.release()


class SpaceUnusable(ConfigurationError):
    """A Space's own settings keep the portal from reaching it (no request was sent)."""

    default_message = "the Space's settings are not usable"


def client_for(space: Space | None, profile: str = "background") -> SignalWireClient:
    """Return the process's client of a profile for one Space (None: the environment's).

    A Space whose settings are broken raises SpaceUnusable naming it and what is wrong,
    never its token.
    """
    if space is None:
        return build_client(profile=profile)
    problems = space.problems()
    if problems:
        raise SpaceUnusable(f"the Space “{space.name}” cannot be used: {'; '.join(problems)}")
    return build_client(profile=profile, credentials=space.credentials())


def api_client(
    client: SignalWireClient | None, profile: str = "background", space: Space | None = None
) -> SignalWireClient:
    """Use the caller's client, or the process's client of that profile for the Space."""
    return client if client is not None else client_for(space, profile)


def form_error(exc: RemoteValidationError, model: type[models.Model]) -> DjangoValidationError:
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
    if not errors:
        errors[NON_FIELD_ERRORS] = [str(exc)]
    return DjangoValidationError(errors)


def absorb_answer(spec: Resource[Any], row: Any, answer: dict[str, Any]) -> list[str]:
    """Copy SignalWire's answer onto the row as synced; return the fields written."""
    values = spec.fields(answer)
    for field, value in values.items():
        setattr(row, field, value)
    row.sync_state = SyncState.SYNCED
    row.last_synced_at = timezone.now()
    row.last_error = ""
    row.push_attempts = 0
    return [*values, *_SYNCED_BOOKKEEPING]


def land_row(
    spec: NamedResource[Any], row: Any, client: SignalWireClient, *, look_up: bool
) -> dict[str, Any]:
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


def note_queued(row: Any) -> Callable[[bool], None]:
    """Remember on the instance whether its push was queued, for the caller to report."""

    def note(queued: bool) -> None:
        row.push_queued = queued

    row.push_queued = None  # not known until the transaction commits
    return note


def keep_pending(
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
        outbox.push_after_commit(mirror_for(row).kind, row.pk, report=note_queued(row))


def intents_replay() -> list[tuple[str, int]]:
    """Replay every stale intent as a pending edit (pending_rows then lists it)."""
    replayed = []
    for intent in list(intents.stale()[:1000]):
        pk = intents.replay(intent=intent, model=mirror_for(intent.kind).model)
        if pk is not None:
            replayed.append((intent.kind, pk))
    return replayed


def replay_row_intents(spec: Resource[Any], pk: int) -> None:
    """Replay a row's stale edits first; an edit still in the air makes the row busy."""
    if not intents.replay_row(kind=spec.kind, model=spec.model, pk=pk):
        raise RowBusyError(f"an edit of this {spec.row_noun} is still on its way to SignalWire")



# --- conference tokens, shared with rooms.services.tokens ---------------------------------


def fetch_tokens(conference: Conference, client: SignalWireClient) -> list[dict[str, Any]] | None:
    """Read a conference's tokens now if SignalWire answers; the background fetch retries."""
    try:
        return client.list_conference_tokens(conference.remote_id)
    except SignalWireError as exc:
        logger.info("tokens of conference %s left to the background: %s", conference.pk, exc)
        return None


def store_tokens(conference: Conference, answers: list[dict[str, Any]]) -> list[ConferenceToken]:
    """Upsert the conference's token rows from SignalWire's list; drop the ones it lost."""
    now = timezone.now()
    existing = {t.remote_id: t for t in conference.tokens.all()}
    kept = []
    for answer in answers:
        values = payloads.token_fields(answer)
        token = existing.pop(values["remote_id"], None) or ConferenceToken(
            conference=conference, space_id=conference.space_id
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

