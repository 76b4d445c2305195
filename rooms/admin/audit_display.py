"""Reading audit entries for people: diffs, who acted, events, links.

The change log and the per-object history pages both render entries through these; only
related_labels queries, once per model for a whole page of entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.utils import quote
from django.core.exceptions import FieldDoesNotExist
from django.db.models import DateTimeField, ForeignKey, Model
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst

from rooms.models import AuditEntry

Action = AuditEntry.Action
EMPTY = "—"
# A list longer than this shows as "44 scopes" that opens to the full comma list.
LIST_SUMMARY_AFTER = 3
# {(related model, str(pk)): label}: names of the objects foreign keys in `changes` point at.
RelatedLabels = dict[tuple[type[Model], str], str]


def display_value(value: Any, *, is_datetime: bool = False, limit: int | None = None) -> str:
    """Render one stored value for people: empty as a dash, JSON as JSON, UTC marked."""
    if value is None:
        text = EMPTY
    elif value == "":
        text = "(blank)"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list) and all(_is_scalar(v) for v in value):
        # Lists such as scopes read best as a compact comma list.
        text = ", ".join(str(v) for v in value) if value else "(none)"
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
        if is_datetime:
            # Stored as naive UTC; seconds are precise enough for people.
            text = text.split(".")[0] + " UTC"
    return Truncator(text).chars(limit) if limit else text


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


@dataclass(frozen=True)
class FieldChange:
    """One changed field of an entry, ready to show.

    `old_summary`/`new_summary` name a long list ("44 scopes") whose items `old`/`new` hold.
    """

    name: str
    label: str
    old: str
    new: str
    old_summary: str = ""
    new_summary: str = ""


@dataclass
class EntryView:
    """An audit entry with what its pages show, computed without further queries."""

    entry: AuditEntry
    who: str
    event: str
    about: str = ""
    changes: list[FieldChange] = field(default_factory=list)
    details: str = ""
    restore_url: str = ""
    cid_url: str = ""
    action: str = ""
    changes_html: list[str] = field(default_factory=list)


def _pseudo_field_label(name: str) -> str:
    """Label a change key that is no model field: raw SignalWire keys and sync markers."""
    if name.startswith("raw."):
        return f"{name[4:]} (SignalWire only)"
    return str(capfirst(name.replace("_", " ")))


def _pairs(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    """Return an entry's changes as (field name, old, new)."""
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    pairs = []
    for name, pair in changes.items():
        old, new = (list(pair) + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        if entry.action == Action.CREATE:
            old = None  # nothing was there before (a masked secret's "old" value included)
        elif entry.action == Action.DELETE:
            new = None
        pairs.append((name, old, new))
    return pairs


def _model_field(model: type[Model] | None, name: str) -> Any:
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def related_labels(entries: Any) -> RelatedLabels:
    """Name the objects the entries' foreign-key changes point at: one query per model.

    Used for a whole page of entries at once, so a page costs the same few queries however
    many rows it has (none when no entry changed a foreign key).
    """
    wanted: dict[type[Model], set[str]] = {}
    for entry in entries:
        model = entry.content_type.model_class()
        for name, old, new in _pairs(entry):
            model_field = _model_field(model, name)
            if not isinstance(model_field, ForeignKey):
                continue
            for value in (old, new):
                if value is not None and _is_scalar(value) and not isinstance(value, bool):
                    wanted.setdefault(model_field.related_model, set()).add(str(value))
    labels: RelatedLabels = {}
    for related, pks in wanted.items():
        valid = {pk for pk in pks if pk.isdigit()} if _has_integer_pk(related) else pks
        for obj in related._default_manager.filter(pk__in=valid):
            # The fixed name (a conference's or room's `name`) reads the same on old entries;
            # a display name may have changed since.
            labels[(related, str(obj.pk))] = str(getattr(obj, "name", "") or obj)
    return labels


def _has_integer_pk(model: type[Model]) -> bool:
    return model._meta.pk.get_internal_type() in {
        "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    }


def _change_value(
    value: Any,
    model_field: Any,
    label: str,
    labels: RelatedLabels | None,
    limit: int | None,
) -> tuple[str, str]:
    """Render one side of a change; return (text, summary of a long list or "")."""
    if isinstance(model_field, ForeignKey) and value is not None and _is_scalar(value):
        name = (labels or {}).get((model_field.related_model, str(value)))
        return (Truncator(name).chars(limit) if limit else name) if name else f"#{value}", ""
    if isinstance(value, list) and len(value) > LIST_SUMMARY_AFTER:
        if all(_is_scalar(v) for v in value):
            return display_value(value), f"{len(value)} {label.lower()}"
    is_dt = isinstance(model_field, DateTimeField)
    return display_value(value, is_datetime=is_dt, limit=limit), ""


def entry_changes(
    entry: AuditEntry, *, limit: int | None = None, labels: RelatedLabels | None = None
) -> list[FieldChange]:
    """List an entry's field changes with verbose names and readable values.

    Foreign keys read as their object's name when `labels` (see related_labels) has it,
    else as "#<id>"; a long list of plain values comes with a "44 scopes" summary.
    """
    model = entry.content_type.model_class()
    rows = []
    for name, old, new in _pairs(entry):
        model_field = _model_field(model, name)
        label = _pseudo_field_label(name)
        if model_field is not None:
            label = str(capfirst(getattr(model_field, "verbose_name", name)))
        old_text, old_summary = _change_value(old, model_field, label, labels, limit)
        new_text, new_summary = _change_value(new, model_field, label, labels, limit)
        rows.append(FieldChange(name, label, old_text, new_text, old_summary, new_summary))
    return rows


def who(entry: AuditEntry) -> str:
    """Name who acted: the staff user, else the system actor's label."""
    if entry.actor_id is not None and entry.actor is not None:
        return entry.actor.get_username()
    return entry.actor_label or "system"


def event_of(entry: AuditEntry) -> str:
    """Return the named event of an entry (reveal, reset, ...) or an empty string."""
    extra = entry.additional_data
    if not isinstance(extra, dict):
        return ""
    return str(extra.get("event") or "")


def action_label(entry: AuditEntry) -> str:
    """Name what happened, capitalised: the event (Reveal, Reset...) or the action (Create)."""
    return str(capfirst(event_of(entry) or entry.get_action_display()))


def short_id(value: str, length: int = 8) -> str:
    """Show a long id (UUID, request id) by its first characters; the full id goes in a title."""
    return format_html('<span class="sw-cid" title="{}">{}</span>', value, value[:length])


def changes_html(
    rows: list[FieldChange], *, old_class: str = "", new_class: str = ""
) -> list[str]:
    """Render each change as "<b>Label</b>: old → new"; long lists open from "44 scopes"."""

    def side(text: str, summary: str, css: str) -> str:
        if summary:
            return format_html(
                '<details class="sw-list"><summary>{}</summary><span class="value {}">{}'
                "</span></details>",
                summary,
                css,
                text,
            )
        if text == EMPTY:
            return format_html('<span class="value none">{}</span>', text)
        return format_html('<span class="value {}">{}</span>', css, text)

    return [
        format_html(
            "<strong>{}</strong>: {} &rarr; {}",
            r.label,
            side(r.old, r.old_summary, old_class),
            side(r.new, r.new_summary, new_class),
        )
        for r in rows
    ]


def changelog_url(**params: Any) -> str:
    """Return the change log's URL, filtered by the given query parameters."""
    url = reverse("admin:rooms_auditentry_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def object_admin_url(entry: AuditEntry) -> str:
    """Return the admin URL of an entry's object, or "" when its model has no admin page."""
    ct = entry.content_type
    try:
        return reverse(f"admin:{ct.app_label}_{ct.model}_change", args=[quote(entry.object_pk)])
    except NoReverseMatch:
        return ""
