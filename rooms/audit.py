"""Audit wiring: every django-auditlog entry says who acted, from where, in which run.

Services, tasks and commands open an `audit_context`; entries written inside it carry its
source, actor and correlation id (a web request id or a sync/push run id). Writes made
outside any context (a shell, a script) are recorded as source "shell"; a management
command wraps its work in `audit_context(source=Source.COMMAND, actor_label=<its name>)`,
as a `with` block or as a decorator of `handle` (each call then gets its own run id).

Every entry's `changes` has one shape, whoever wrote it: a JSON object mapping a field
name to `[old, new]`, values as django-auditlog stores them with
AUDITLOG_STORE_JSON_CHANGES (JSON scalars, lists and objects; datetimes as naive-UTC
strings such as "2025-01-31 09:30:00"). The history pages and restore rely on that.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from auditlog.context import set_extra_data
from auditlog.diff import model_instance_diff
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db.models import DateTimeField, Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.encoding import smart_str

from rooms.bulk_sql import insert_rows
from rooms.models import AuditEntry, SyncState

Source = AuditEntry.Source
Action = AuditEntry.Action
MASK = "••••••••"
# Who may be named as acting: a user (request.user may be anonymous), or nobody.
Actor = AbstractBaseUser | AnonymousUser | None

# Keys whose values are secrets wherever they appear in an event's details; so is any key
# ending in "token" (old_token, api_token) or naming a password or secret.
SECRET_KEYS = frozenset({"token", "api_token", "password", "secret", "jwt", "authorization"})
_JWT_SHAPE = re.compile(r"\b[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")


def is_secret_key(key: Any) -> bool:
    """Tell whether a details key names a secret (token, api_token, password, ...)."""
    name = str(key).lower()
    return (
        name in SECRET_KEYS
        or name.endswith("token")
        or "password" in name
        or "secret" in name
    )

# Events that only read something (a token's value, a recording's file); every other
# event (reset, issue, retention deletion...) changes something.
READ_EVENTS = frozenset({"reveal", "copy", "download"})


@dataclass(frozen=True)
class AuditContext:
    """Who is acting and from where, for the entries written while it is current."""

    source: str = Source.SHELL
    actor: AbstractBaseUser | None = None
    actor_label: str = "shell"
    correlation_id: str = ""
    remote_addr: str | None = None


_current: ContextVar[AuditContext | None] = ContextVar("room_portal_audit", default=None)


def current_context() -> AuditContext:
    """Return the context in force; outside any, a shell or script is acting."""
    return _current.get() or AuditContext()


def new_correlation_id() -> str:
    """Make a fresh id that groups the entries of one request or run."""
    return uuid.uuid4().hex


def current_correlation_id() -> str | None:
    """Give django-auditlog the request or run id in force (its AUDITLOG_CID_GETTER)."""
    return current_context().correlation_id or None


def _actor_pk() -> Any:
    return getattr(current_context().actor, "pk", None)


def _actor_email() -> str | None:
    return getattr(current_context().actor, "email", None) or None


# What django-auditlog's `set_extra_data` stamps on each entry it saves. Each value is read
# at save time from the innermost context, so only the outermost `audit_context` enters
# auditlog's (which does not restore an enclosing one when a nested one ends).
_ENTRY_STAMPS: dict[str, Any] = {
    "source": lambda: current_context().source,
    "actor_label": lambda: current_context().actor_label,
    "remote_addr": lambda: current_context().remote_addr,
    "actor_id": _actor_pk,
    "actor_email": _actor_email,
}


@contextmanager
def audit_context(
    *,
    source: str,
    actor: Actor = None,
    actor_label: str = "",
    correlation_id: str | None = None,
    remote_addr: str | None = None,
) -> Iterator[AuditContext]:
    """Attribute the audit entries written inside the block to this actor and source."""
    user = actor if isinstance(actor, AbstractBaseUser) and actor.is_authenticated else None
    label = actor_label or (user.get_username() if user is not None else str(source))
    ctx = AuditContext(
        source=str(source),
        actor=user,
        actor_label=label[:150],
        correlation_id=str(correlation_id or new_correlation_id()),
        remote_addr=remote_addr or None,
    )
    outermost = _current.get() is None
    token = _current.set(ctx)
    try:
        if outermost:
            with set_extra_data(dict(_ENTRY_STAMPS)):
                yield ctx
        else:
            yield ctx
    finally:
        _current.reset(token)


def mask_value(value: Any) -> str:
    """Mask a secret completely (auditlog's own mask keeps half of the value)."""
    return MASK


def scrub(value: Any, *, secrets: Iterable[str] = ()) -> Any:
    """Return a copy of event details with secrets masked: by key, known value or JWT shape."""
    known = tuple(s for s in secrets if s)
    if isinstance(value, Mapping):
        return {
            str(k): MASK if is_secret_key(k) else scrub(v, secrets=known)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v, secrets=known) for v in value]
    if isinstance(value, str):
        if any(s in value for s in known) or _JWT_SHAPE.search(value):
            return MASK
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(smart_str(value), secrets=known)


# --- The one shape of `changes` ---------------------------------------------------------


def _audit_options(model: type[Model]) -> dict[str, Any]:
    from auditlog.registry import auditlog

    if not auditlog.contains(model):
        return {"include_fields": [], "exclude_fields": [], "mask_fields": []}
    return auditlog.get_model_fields(model)


def json_value(field: object, value: Any) -> Any:
    """Turn one field value into what auditlog stores in JSON `changes`."""
    if isinstance(field, DateTimeField):
        if isinstance(value, str):
            value = parse_datetime(value) or value
        if isinstance(value, datetime):
            if timezone.is_aware(value):
                value = timezone.make_naive(value, UTC)
            return str(value)
        return value
    if isinstance(value, tuple | set | frozenset):
        return [json_value(None, v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return smart_str(value)


@functools.cache
def _tracking(model: type[Model]) -> tuple[frozenset, frozenset, frozenset, dict[str, Any]]:
    """The model's audit include/exclude/mask sets and a field lookup, worked out once."""
    options = _audit_options(model)
    fields: dict[str, Any] = {}
    for field in model._meta.get_fields():
        fields[field.name] = field
        attname = getattr(field, "attname", None)
        if attname:
            fields[attname] = field
    return (
        frozenset(options["include_fields"]),
        frozenset(options["exclude_fields"]),
        frozenset(options["mask_fields"]),
        fields,
    )


class NormalisedChanges(dict):
    """A diff already in auditlog's JSON shape, filtered and masked: stored as it is."""


def normalise_changes(model: type[Model], changes: Mapping[str, Any] | None) -> dict[str, list]:
    """Bring a `{field: (old, new)}` diff to auditlog's JSON shape, masked and filtered.

    Drops fields the audit trail ignores for this model (bookkeeping, reverse relations)
    and pairs whose two values are equal once normalised. A sync_state change to or from
    "deleted_remotely" is kept: the sync records remote deletions that way.
    """
    include, exclude, masked, fields = _tracking(model)
    result: dict[str, list] = {}
    for name, pair in (changes or {}).items():
        old, new = pair
        notable = name == "sync_state" and SyncState.DELETED_REMOTELY in (old, new)
        if not notable and (name in exclude or (include and name not in include)):
            continue
        field = fields.get(name)
        old, new = json_value(field, old), json_value(field, new)
        if old == new:
            continue
        if name in masked:
            old, new = mask_value(old), mask_value(new)
        result[name] = [old, new]
    return result


def changes_between(old: Model | None, new: Model | None) -> dict[str, list]:
    """Diff two states of an object exactly as django-auditlog's own entries do."""
    diff = model_instance_diff(old, new, use_json_for_changes=True) or {}
    return {name: list(pair) for name, pair in diff.items()}


def bulk_record(
    *,
    model: type[Model],
    entries: Iterable[tuple[Model, int, Mapping[str, Any] | None]],
) -> int:
    """Write one audit entry per (object, action, changes), one INSERT per batch; return count.

    For writes that bypass model signals (the sync's bulk_create/bulk_update): call it in
    the same transaction, inside the run's `audit_context`. `changes` maps a field name to
    (old, new) in any Python form (aware datetimes, tuples); it is normalised to auditlog's
    JSON shape and masked here. None means "diff against nothing" for CREATE and DELETE.
    An UPDATE that changes nothing the audit trail tracks writes no entry. Objects must
    have their primary key set.
    """
    ctx = current_context()
    content_type_id = ContentType.objects.get_for_model(model).pk
    common = {
        "content_type_id": content_type_id,
        "serialized_data": None,
        "changes_text": "",
        "actor_id": getattr(ctx.actor, "pk", None),
        "actor_email": getattr(ctx.actor, "email", None) or None,
        "cid": ctx.correlation_id or None,
        "remote_addr": ctx.remote_addr,
        "remote_port": None,
        "timestamp": timezone.now(),
        "source": ctx.source,
        "actor_label": ctx.actor_label,
    }
    related_types: dict[type[Model], int] = {}
    rows = []
    for obj, action, changes in entries:
        if changes is None and action == Action.CREATE:
            diff = changes_between(None, obj)
        elif changes is None and action == Action.DELETE:
            diff = changes_between(obj, None)
        elif isinstance(changes, NormalisedChanges):
            diff = changes
        else:
            diff = normalise_changes(model, changes)
        if action == Action.UPDATE and not diff:
            continue
        get_extra = getattr(obj, "get_additional_data", None)
        related_type_id, related_id = _related_object(obj, related_types)
        pk = obj.pk
        rows.append(
            {
                "object_pk": str(pk),
                "object_id": pk if isinstance(pk, int) else None,
                "object_repr": smart_str(obj),
                "action": action,
                "changes": diff,
                "object_remote_id": getattr(obj, "remote_id", "") or "",
                "space_id": getattr(obj, "space_id", None),
                "additional_data": get_extra() if callable(get_extra) else {},
                "related_object_type_id": related_type_id,
                "related_object_id": related_id,
            }
        )
    # One executemany instead of bulk_create: these rows are already plain values, and
    # building Django's per-value SQL for them cost more than the sync's own writes.
    return insert_rows(AuditEntry, rows, shared=common)


def _related_object(obj: Model, cache: dict[type[Model], int]) -> tuple[int | None, int | None]:
    """Return the content type id and pk of the object an entry about `obj` belongs to."""
    related = getattr(obj, "audit_related_object", None)
    if not callable(related):
        return None, None
    model, pk = related()
    if pk is None:
        return None, None
    if model not in cache:
        cache[model] = ContentType.objects.get_for_model(model).pk
    return cache[model], pk


def record_event(
    *,
    obj: Model,
    event: str,
    details: Mapping[str, Any] | None = None,
    action: int | None = None,
) -> AuditEntry:
    """Record something done to an object beyond a save: a reveal, reset, issue, download.

    The one shape of every such entry: additional_data is the object's own additional data
    plus {"event": <name>, "details": {...}} with secrets scrubbed. Reveal, copy and
    download are ACCESS entries, any other event an UPDATE unless `action` says otherwise.
    """
    if action is None:
        action = Action.ACCESS if event in READ_EVENTS else Action.UPDATE
    get_extra = getattr(obj, "get_additional_data", None)
    extra = dict(get_extra()) if callable(get_extra) else {}
    extra["event"] = event
    if details:
        secret = getattr(obj, "token", "")
        extra["details"] = scrub(details, secrets=[secret] if isinstance(secret, str) else [])
    return AuditEntry.objects.log_create(
        obj, action=action, changes=None, force_log=True, additional_data=extra
    )


def delete_expired_entries(
    *, days: int | None = None, batch_size: int | None = None, now: datetime | None = None
) -> int:
    """Delete audit rows older than the retention period, in batches; return how many."""
    days = settings.AUDIT_RETENTION_DAYS if days is None else days
    if not days or days <= 0:
        return 0
    batch_size = batch_size or getattr(settings, "AUDIT_RETENTION_BATCH_SIZE", 5000)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = AuditEntry.objects.filter(timestamp__lt=cutoff).order_by()
    deleted = 0
    while True:
        ids = list(expired.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        count, _ = AuditEntry.objects.filter(pk__in=ids).delete()
        deleted += count


# Bookkeeping fields of the mirror: they change on every push and sync and say nothing
# about the room itself, so they stay out of the audit trail.
MIRROR_BOOKKEEPING = [
    "raw",
    "raw_digest",
    "remote_created_at",
    "remote_updated_at",
    "last_synced_at",
    "sync_state",
    "last_error",
    "push_attempts",
    "local_version",
    "created_at",
    "updated_at",
]


def _not_tracked(model: type[Model]) -> list[str]:
    """Name the primary key and reverse relations, which auditlog would diff as noise."""
    names = [model._meta.pk.name]
    names += [f.name for f in model._meta.get_fields() if f.auto_created and not f.concrete]
    return names


def register_models() -> None:
    """Register the mirrored models with django-auditlog (called once from AppConfig.ready)."""
    from auditlog.registry import auditlog

    from rooms.models import Conference, ConferenceToken, IssuedRoomToken, Room, Space

    for model in (Conference, Room):
        auditlog.register(model, exclude_fields=MIRROR_BOOKKEEPING + _not_tracked(model))
    auditlog.register(
        ConferenceToken,
        exclude_fields=["last_synced_at", *_not_tracked(ConferenceToken)],
        mask_fields=["token"],
    )
    auditlog.register(IssuedRoomToken, exclude_fields=_not_tracked(IssuedRoomToken))
    # The encrypted token never enters the trail, not even masked.
    auditlog.register(Space, exclude_fields=["token_encrypted", *_not_tracked(Space)])
