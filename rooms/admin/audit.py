"""Admin pages: audit.

The change log (AuditEntry changelist, read-only for everyone) and `AuditHistoryMixin`,
which gives a conference or room admin a History page with readable diffs and
"Restore this version".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import DateTimeField, ForeignKey, Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, capfirst

from rooms.admin.records import RecordAdminMixin
from rooms.audit import json_value
from rooms.models import AuditEntry, Conference, ConferenceToken, IssuedRoomToken, Room
from rooms.restore import is_restorable, restore_entry, restore_plan

Action = AuditEntry.Action
EMPTY = "—"
# A list longer than this shows as "44 scopes" that opens to the full comma list.
LIST_SUMMARY_AFTER = 3
# {(related model, str(pk)): label}: names of the objects foreign keys in `changes` point at.
RelatedLabels = dict[tuple[type[Model], str], str]


# --- Reading entries --------------------------------------------------------------------


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
    # "access" is how entries written before record_event named a token reveal.
    return str(extra.get("event") or extra.get("access") or "")


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


def object_admin_url(entry: AuditEntry, view: str = "change") -> str:
    """Return the admin URL of an entry's object, or "" when its model has no admin page."""
    ct = entry.content_type
    try:
        return reverse(f"admin:{ct.app_label}_{ct.model}_{view}", args=[quote(entry.object_pk)])
    except NoReverseMatch:
        return ""


# --- The change log ---------------------------------------------------------------------


class ObjectTypeFilter(admin.SimpleListFilter):
    """Filter by the kind of object: conference, room, conference token, issued token."""

    title = "object type"
    parameter_name = "content_type"

    def lookups(self, request, model_admin):
        models = (Conference, Room, ConferenceToken, IssuedRoomToken)
        types = ContentType.objects.get_for_models(*models)
        return [(str(types[m].pk), capfirst(m._meta.verbose_name_plural)) for m in models]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"object type {value!r} is not a type id")
        return queryset.filter(content_type_id=int(value))


class ActorFilter(admin.SimpleListFilter):
    """Filter by the staff user who acted, or by no user at all (sync, push, shell...)."""

    title = "staff user"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        users = get_user_model().objects.filter(is_staff=True).order_by("pk")
        return [("none", "No user (system)")] + [(str(u.pk), u.get_username()) for u in users]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(actor__isnull=True)
        if self.value() and self.value().isdigit():
            return queryset.filter(actor_id=int(self.value()))
        return queryset


class CorrelationFilter(admin.SimpleListFilter):
    """Show and clear the request/run id the change log is filtered by."""

    title = "request / run id"
    parameter_name = "cid"

    def lookups(self, request, model_admin):
        value = request.GET.get(self.parameter_name)
        return [(value, value[:12])] if value else []

    def queryset(self, request, queryset):
        return queryset.filter(cid=self.value()) if self.value() else queryset


class CapitalisedChoicesFilter(admin.ChoicesFieldListFilter):
    """A choices filter whose labels start with a capital (auditlog's actions are lower case)."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            yield {**choice, "display": capfirst(choice["display"])}


@admin.display(description="when", ordering="timestamp")
def _when(entry: AuditEntry) -> str:
    local = timezone.localtime(entry.timestamp)
    return format_html("{}<br>{}", date_format(local, "Y-m-d"), date_format(local, "H:i:s T"))


if admin.site.is_registered(AuditEntry):
    # django-auditlog's own LogEntryAdmin registers the swapped model; ours replaces it.
    admin.site.unregister(AuditEntry)


@admin.register(AuditEntry)
class AuditEntryAdmin(RecordAdminMixin, admin.ModelAdmin):
    """The change log: every audited change, filterable and searchable, never editable."""

    list_display = (
        _when,
        "action_label",
        "object_link",
        "who_display",
        "changes_display",
        "cid_link",
    )
    list_display_links = None
    list_filter = (
        ObjectTypeFilter,
        "source",
        ("action", CapitalisedChoicesFilter),
        ActorFilter,
        ("timestamp", admin.DateFieldListFilter),
        CorrelationFilter,
    )
    list_select_related = ("actor", "content_type")
    date_hierarchy = "timestamp"
    search_fields = ("object_repr", "object_remote_id", "=cid", "actor_label", "object_pk")
    search_help_text = "Search by object name, SignalWire ID, request/run id or system actor."
    ordering = ("-timestamp", "-pk")
    list_per_page = 100
    show_full_result_count = False
    actions = None

    class Media:
        css = {"all": ["rooms/admin.css"]}

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """Name the objects the page's foreign-key changes point at, in one pass."""
        changelist = super().get_changelist_instance(request)
        entries = list(changelist.result_list)  # evaluates (and caches) the page's rows
        labels = related_labels(entries)
        for entry in entries:
            entry._related_labels = labels
        return changelist

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Refuse the per-row page: the change log itself shows everything an entry holds."""
        raise PermissionDenied

    def history_view(self, request, object_id, extra_context=None):
        """Refuse history of audit rows: they never change."""
        raise PermissionDenied

    @admin.display(description="action", ordering="action")
    def action_label(self, entry: AuditEntry) -> str:
        """Name the action, or the event for token reveals, resets and issuance."""
        return action_label(entry)

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, entry: AuditEntry) -> str:
        """Link to the object (its type, name and SignalWire id stay readable after delete)."""
        kind = capfirst(entry.content_type.name)
        remote = (
            format_html(" <span class=\"sw-nowrap\">({})</span>", short_id(entry.object_remote_id))
            if entry.object_remote_id
            else ""
        )
        url = "" if entry.action == Action.DELETE else object_admin_url(entry)
        if url:
            return format_html('{}: <a href="{}">{}</a>{}', kind, url, entry.object_repr, remote)
        return format_html("{}: {}{}", kind, entry.object_repr, remote)

    @admin.display(description="who / source", ordering="actor_label")
    def who_display(self, entry: AuditEntry) -> str:
        """Name the staff user or system actor, and where the change came from."""
        return format_html(
            '{}<div class="sw-quiet">{}</div>', who(entry), entry.get_source_display()
        )

    @admin.display(description="changes")
    def changes_display(self, entry: AuditEntry) -> str:
        """Show up to six changed fields as "field: old → new"."""
        labels = getattr(entry, "_related_labels", None)
        rows = entry_changes(entry, limit=60, labels=labels)
        shown = format_html_join("", "<div>{}</div>", ((h,) for h in changes_html(rows[:6])))
        more = format_html("<div>… {} more</div>", len(rows) - 6) if len(rows) > 6 else ""
        details = (entry.additional_data or {}).get("details") if event_of(entry) else None
        extra = format_html("<div>{}</div>", display_value(details, limit=200)) if details else ""
        return format_html("{}{}{}", shown, more, extra)

    @admin.display(description="request / run id", ordering="cid")
    def cid_link(self, entry: AuditEntry) -> str:
        """Link to every entry of the same request or run."""
        if not entry.cid:
            return EMPTY
        return format_html(
            '<a class="sw-cid" href="{}" title="{}">{}</a>',
            changelog_url(cid=entry.cid),
            entry.cid,
            entry.cid[:8],
        )


# --- Per-object history and restore -----------------------------------------------------


class AuditHistoryMixin:
    """Give a Conference or Room ModelAdmin a History page built from the audit trail.

    Put it before ModelAdmin in the bases: `class ConferenceAdmin(AuditHistoryMixin,
    admin.ModelAdmin)`. It replaces `history_view` and adds the "Restore this version"
    confirmation page at `<id>/history/<entry id>/restore/`.
    """

    audit_history_template = "admin/rooms/audit_history.html"
    audit_restore_template = "admin/rooms/audit_restore_confirm.html"
    audit_history_per_page = 50

    def get_urls(self) -> list:
        """Add the restore page in front of the ModelAdmin's own URLs."""
        info = self.opts.app_label, self.opts.model_name
        restore = path(
            "<path:object_id>/history/<int:entry_id>/restore/",
            self.admin_site.admin_view(self.audit_restore_view),
            name="{}_{}_audit_restore".format(*info),
        )
        return [restore, *super().get_urls()]

    def audit_entries(self, obj: Model) -> QuerySet[AuditEntry]:
        """Select the object's entries, with its tokens' and issued tokens' entries."""
        types = ContentType.objects.get_for_models(type(obj), ConferenceToken, IssuedRoomToken)
        query = Q(content_type=types[type(obj)], object_pk=str(obj.pk))
        if isinstance(obj, Conference):
            query |= Q(
                content_type=types[ConferenceToken], additional_data__conference_id=obj.pk
            )
        if isinstance(obj, Room):
            issued = types[IssuedRoomToken]
            query |= Q(content_type=issued, additional_data__room_id=obj.pk)
            query |= Q(content_type=issued, action=Action.CREATE, changes__room__1=obj.pk)
        return (
            AuditEntry.objects.filter(query)
            .select_related("actor", "content_type")
            .order_by("-timestamp", "-pk")
        )

    def _entry_view(
        self,
        request: HttpRequest,
        entry: AuditEntry,
        obj: Model,
        labels: RelatedLabels | None = None,
    ) -> EntryView:
        view = EntryView(entry=entry, who=who(entry), event=event_of(entry))
        view.action = action_label(entry)
        view.changes = entry_changes(entry, labels=labels)
        view.changes_html = changes_html(view.changes, old_class="old", new_class="new")
        details = (entry.additional_data or {}).get("details") if view.event else None
        view.details = display_value(details) if details else ""
        if entry.cid:
            view.cid_url = changelog_url(cid=entry.cid)
        same_object = entry.content_type.model_class() is type(obj)
        if not same_object:
            view.about = f"{capfirst(entry.content_type.name)}: {entry.object_repr}"
        if same_object and is_restorable(entry) and self.has_change_permission(request, obj):
            view.restore_url = reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
                "_audit_restore",
                args=[quote(obj.pk), entry.pk],
            )
        return view

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """Show the object's audit trail, newest first, with field-by-field diffs."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        paginator = self.get_paginator(
            request, self.audit_entries(obj), self.audit_history_per_page
        )
        page = paginator.get_page(request.GET.get(PAGE_VAR, 1))
        entries = list(page)
        labels = related_labels(entries)
        ct = ContentType.objects.get_for_model(type(obj))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change history: {obj}",
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "entries": [self._entry_view(request, e, obj, labels) for e in entries],
            "page_obj": page,
            "page_range": paginator.get_elided_page_range(page.number),
            "page_var": PAGE_VAR,
            "changelog_url": changelog_url(content_type=ct.pk, object_pk=obj.pk),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.audit_history_template, context)

    def audit_restore_view(
        self, request: HttpRequest, object_id: str, entry_id: int
    ) -> HttpResponse:
        """Confirm, then put the object back to its values before the chosen change."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        ct = ContentType.objects.get_for_model(type(obj))
        entry = AuditEntry.objects.filter(
            pk=entry_id, content_type=ct, object_pk=str(obj.pk)
        ).first()
        if entry is None or not is_restorable(entry):
            raise Http404("No restorable change with this id.")
        history_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_history",
            args=[quote(obj.pk)],
        )
        try:
            steps = restore_plan(entry=entry, obj=obj)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(history_url)
        if not steps:
            self.message_user(
                request, "Nothing to restore: it already has those values.", messages.INFO
            )
            return HttpResponseRedirect(history_url)
        if request.method == "POST":
            return self._do_restore(request, entry, obj, history_url)
        rows = []
        for step in steps:
            model_field = obj._meta.get_field(step.field)
            is_dt = isinstance(model_field, DateTimeField)
            current = json_value(model_field, step.current)
            restored = json_value(model_field, step.restored)
            rows.append(
                (
                    str(capfirst(step.label)),
                    display_value(current, is_datetime=is_dt),
                    display_value(restored, is_datetime=is_dt),
                )
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Restore {obj}?",
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "entry": entry,
            "entry_who": who(entry),
            "rows": rows,
            "history_url": history_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.audit_restore_template, context)

    def _do_restore(
        self, request: HttpRequest, entry: AuditEntry, obj: Model, history_url: str
    ) -> HttpResponse:
        try:
            restored = restore_entry(entry=entry, actor=request.user, profile="interactive")
        except ValidationError as exc:
            text = "; ".join(exc.messages)
            self.message_user(
                request, f"SignalWire refused the restore; nothing changed. {text}",
                messages.ERROR,
            )
            return HttpResponseRedirect(history_url)
        if getattr(restored, "is_unpushed", False):
            self.message_user(
                request,
                f"“{restored}” was restored locally; SignalWire cannot be reached now, so "
                "the change is pending and will be pushed automatically.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request, f"“{restored}” was restored in SignalWire.", messages.SUCCESS
            )
        return HttpResponseRedirect(history_url)

