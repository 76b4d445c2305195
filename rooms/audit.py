"""Audit wiring: every django-auditlog entry says who acted, from where, in which run.

Services, tasks and commands open an `audit_context`; entries written inside it carry its
source, actor and correlation id (a web request id or a sync/push run id). Writes made
outside any context (a shell, a script) are recorded as source "shell".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from auditlog.cid import correlation_id as auditlog_cid
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone

from rooms.models import AuditEntry

Source = AuditEntry.Source
MASK = "••••••••"


@dataclass(frozen=True)
class AuditContext:
    """Who is acting and from where, for the entries written while it is current."""

    source: str = Source.SHELL
    actor: Any = None
    actor_label: str = "shell"
    correlation_id: str = ""


_current: ContextVar[AuditContext | None] = ContextVar("room_portal_audit", default=None)


def current_context() -> AuditContext:
    """Return the context in force; outside any, a shell or script is acting."""
    return _current.get() or AuditContext()


@contextmanager
def audit_context(
    *,
    source: str,
    actor: Any = None,
    actor_label: str = "",
    correlation_id: str | None = None,
) -> Iterator[AuditContext]:
    """Attribute the audit entries written inside the block to this actor and source."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    label = actor_label or (actor.get_username() if actor is not None else str(source))
    ctx = AuditContext(
        source=str(source),
        actor=actor,
        actor_label=label,
        correlation_id=correlation_id or uuid.uuid4().hex,
    )
    token = _current.set(ctx)
    cid_token = auditlog_cid.set(ctx.correlation_id)
    try:
        yield ctx
    finally:
        auditlog_cid.reset(cid_token)
        _current.reset(token)


def mask_value(value: Any) -> str:
    """Mask a secret completely (auditlog's own mask keeps half of the value)."""
    return MASK


@receiver(pre_save, sender=AuditEntry, dispatch_uid="rooms.audit.fill_context")
def fill_context(sender, instance: AuditEntry, **kwargs) -> None:
    """Stamp each new entry with the current actor, source and correlation id."""
    if instance.pk is not None:
        return
    ctx = current_context()
    if instance.actor_id is None and ctx.actor is not None:
        instance.actor = ctx.actor
        instance.actor_email = getattr(ctx.actor, "email", None) or None
    if not instance.cid:
        instance.cid = ctx.correlation_id or None
    instance.source = ctx.source
    instance.actor_label = instance.actor_label or ctx.actor_label
    extra = instance.additional_data or {}
    if not instance.object_remote_id and isinstance(extra, dict):
        instance.object_remote_id = extra.get("remote_id") or ""


def bulk_record(
    *,
    model: type[Model],
    entries: Iterable[tuple[Model, int, dict[str, list[Any]]]],
) -> int:
    """Write one audit entry per (object, action, changes) in one query; return the count.

    For writes that bypass model signals (the sync's bulk_create/bulk_update). `changes`
    maps a field name to [old, new]; secrets must already be masked by the caller.
    """
    ctx = current_context()
    content_type = ContentType.objects.get_for_model(model)
    now = timezone.now()
    rows = []
    for obj, action, changes in entries:
        rows.append(
            AuditEntry(
                content_type=content_type,
                object_pk=str(obj.pk),
                object_id=obj.pk if isinstance(obj.pk, int) else None,
                object_repr=str(obj)[:1000],
                action=action,
                changes=changes,
                changes_text="",
                actor=ctx.actor,
                actor_email=getattr(ctx.actor, "email", None) or None,
                cid=ctx.correlation_id or None,
                timestamp=now,
                source=ctx.source,
                actor_label=ctx.actor_label,
                object_remote_id=getattr(obj, "remote_id", "") or "",
                additional_data={"remote_id": getattr(obj, "remote_id", None)},
            )
        )
    AuditEntry.objects.bulk_create(rows, batch_size=500)
    return len(rows)


# Bookkeeping fields of the mirror: they change on every push and sync and say nothing
# about the room itself, so they stay out of the audit trail.
MIRROR_BOOKKEEPING = [
    "raw",
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


def register_models() -> None:
    """Register the mirrored models with django-auditlog (called once from AppConfig.ready)."""
    from auditlog.registry import auditlog

    from rooms.models import Conference, ConferenceToken, IssuedRoomToken, Room

    auditlog.register(Conference, exclude_fields=MIRROR_BOOKKEEPING)
    auditlog.register(Room, exclude_fields=MIRROR_BOOKKEEPING)
    auditlog.register(
        ConferenceToken, exclude_fields=["last_synced_at"], mask_fields=["token"]
    )
    auditlog.register(IssuedRoomToken)
