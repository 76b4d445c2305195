"""Restore service: put a conference or room back to the values it had before a change.

A restore is an ordinary remote-first update through the service layer, so SignalWire
gets it first, a 422 changes nothing, and the audit trail records it like any other edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import DateTimeField, Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from rooms import services
from rooms.audit import MASK, Actor, json_value
from rooms.models import AuditEntry, Conference, Room
from rooms.services.common import api_client
from rooms.signalwire import schema
from rooms.signalwire.client import SignalWireClient

# Only what the portal manages remotely can be restored: the fields of a PUT.
RESTORABLE_FIELDS: dict[type[Model], tuple[str, ...]] = {
    Conference: schema.CONFERENCE_UPDATE_FIELDS,
    Room: schema.ROOM_UPDATE_FIELDS,
}


@dataclass(frozen=True)
class RestoreStep:
    """One field a restore would change: its current value and the value it gets back."""

    field: str
    label: str
    current: Any
    restored: Any


def is_restorable(entry: AuditEntry) -> bool:
    """Tell whether an entry is an update of a conference or room with restorable fields."""
    if entry.action != AuditEntry.Action.UPDATE or not isinstance(entry.changes, dict):
        return False
    model = entry.content_type.model_class()
    fields = RESTORABLE_FIELDS.get(model, ())
    return any(name in fields for name in entry.changes)


def parse_value(field: Any, value: Any) -> Any:
    """Turn a value stored in an entry's `changes` back into the model field's type."""
    if value is None:
        return None if field.null or isinstance(field, DateTimeField) else field.get_default()
    if isinstance(field, DateTimeField):
        parsed = parse_datetime(value) if isinstance(value, str) else value
        if not isinstance(parsed, datetime):
            raise ValidationError({field.name: f"Cannot read {value!r} as a date and time."})
        # auditlog stores datetimes as naive UTC.
        return timezone.make_aware(parsed, UTC) if timezone.is_naive(parsed) else parsed
    if field.get_internal_type() == "JSONField":
        return value
    return field.to_python(value)


def restore_values(*, entry: AuditEntry) -> dict[str, Any]:
    """Return the restorable fields of an update entry with their values before it."""
    if not is_restorable(entry):
        raise ValidationError("Only updates of conferences and rooms can be restored.")
    model = entry.content_type.model_class()
    fields = RESTORABLE_FIELDS[model]
    values: dict[str, Any] = {}
    for name, pair in entry.changes.items():
        if name not in fields or not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        if pair[0] == MASK:
            continue
        values[name] = parse_value(model._meta.get_field(name), pair[0])
    return values


def restore_plan(*, entry: AuditEntry, obj: Model) -> list[RestoreStep]:
    """List the fields a restore would really change on the object as it is now."""
    steps = []
    for name, value in restore_values(entry=entry).items():
        field = obj._meta.get_field(name)
        current = getattr(obj, name)
        if json_value(field, current) == json_value(field, value):
            continue
        label = getattr(field, "verbose_name", name)
        steps.append(RestoreStep(name, str(label), current, value))
    return steps


def restore_entry(
    *,
    entry: AuditEntry,
    actor: Actor = None,
    client: SignalWireClient | None = None,
    profile: str = "background",
) -> Conference | Room:
    """Send the object back to its values before `entry` through the remote-first service.

    Raises ValidationError when the entry cannot be restored or SignalWire rejects it;
    then nothing changes. The returned instance's sync_state says whether it landed (a
    web request passes profile="interactive", so it waits a few seconds at most).
    """
    model = entry.content_type.model_class()
    obj: Conference | Room | None = model._default_manager.filter(pk=entry.object_pk).first()
    if obj is None:
        raise ValidationError("The object of this entry no longer exists.")
    data = {step.field: step.restored for step in restore_plan(entry=entry, obj=obj)}
    if not data:
        return obj
    client = api_client(client, profile, space=obj.space)
    if isinstance(obj, Conference):
        return services.conference_update(
            conference=obj, data=data, actor=actor, source="admin", client=client
        )
    return services.room_update(room=obj, data=data, actor=actor, source="admin", client=client)
