"""Admin pages: the change log (AuditEntry changelist, read-only for everyone).

Per-object history and restore live in rooms.admin.history; both read entries through
rooms.admin.audit_display.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from rooms.admin.audit_display import (
    EMPTY,
    action_label,
    changelog_url,
    changes_html,
    display_value,
    entry_changes,
    event_of,
    object_admin_url,
    related_labels,
    short_id,
    who,
)
from rooms.admin.paging import CappedCountPaginator, with_probed_dates
from rooms.admin.records import RecordAdminMixin
from rooms.admin.scoping import SpaceScopedMixin
from rooms.models import AuditEntry, Conference, ConferenceToken, IssuedRoomToken, Room

Action = AuditEntry.Action
# Objects whose entries a name search shows at most (the newest entries come first).
SEARCH_OBJECTS = 500


class ObjectTypeFilter(admin.SimpleListFilter):
    """Filter by the kind of object: conference, room, conference token, issued token."""

    title = "object type"
    parameter_name = "content_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        models = (Conference, Room, ConferenceToken, IssuedRoomToken)
        types = ContentType.objects.get_for_models(*models)
        return [(str(types[m].pk), str(capfirst(m._meta.verbose_name_plural))) for m in models]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> QuerySet[AuditEntry]:
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

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        users = get_user_model().objects.filter(is_staff=True).order_by("pk")
        return [("none", "No user (system)")] + [(str(u.pk), u.get_username()) for u in users]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> QuerySet[AuditEntry]:
        value = self.value()
        if value == "none":
            return queryset.filter(actor__isnull=True)
        if value and value.isdigit():
            return queryset.filter(actor_id=int(value))
        return queryset


class CorrelationFilter(admin.SimpleListFilter):
    """Show and clear the request/run id the change log is filtered by."""

    title = "request / run id"
    parameter_name = "cid"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = request.GET.get(self.parameter_name)
        return [(value, value[:12])] if value else []

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> QuerySet[AuditEntry]:
        return queryset.filter(cid=self.value()) if self.value() else queryset


class AboutObjectFilter(admin.SimpleListFilter):
    """Show one object's entries and its tokens' (the history page links here).

    The value is "<content type id>.<object id>"; both halves are matched on indexed
    columns: the entry's own object, or the object it belongs to.
    """

    title = "object and its tokens"
    parameter_name = "about"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = request.GET.get(self.parameter_name)
        return [(value, value)] if value else []

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> QuerySet[AuditEntry]:
        value = self.value()
        if not value:
            return queryset
        type_id, _, object_id = value.partition(".")
        if not (type_id.isdigit() and object_id.isdigit()):
            raise IncorrectLookupParameters(f"{value!r} is not <type id>.<object id>")
        return queryset.filter(
            Q(content_type_id=int(type_id), object_pk=object_id)
            | Q(related_object_type_id=int(type_id), related_object_id=int(object_id))
        )


class CapitalisedChoicesFilter(admin.ChoicesFieldListFilter):
    """A choices filter whose labels start with a capital (auditlog's actions are lower case)."""

    def choices(self, changelist: Any) -> Iterator[Any]:
        """Yield Django's choices with each label capitalised."""
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
class AuditEntryAdmin(SpaceScopedMixin, RecordAdminMixin, admin.ModelAdmin):
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
        AboutObjectFilter,
    )
    list_select_related = ("actor", "content_type")
    date_hierarchy = "timestamp"
    # Matched on indexed columns only (see get_search_results): a substring search would
    # read every row of a table that grows by a row per change.
    search_fields = ("object_repr", "object_remote_id", "cid", "object_pk")
    search_help_text = (
        "Search by part of a conference's or room's name, or a whole SignalWire ID or "
        "request/run id."
    )
    ordering = ("-timestamp", "-pk")
    list_per_page = 100
    show_full_result_count = False
    # Counts stop at 10,000 ("more than 10,000"); the date hierarchy probes the index.
    paginator = CappedCountPaginator
    actions = None

    class Media:
        css = {"all": ["rooms/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        """Entries whose date hierarchy is found with index probes, not a pass over all rows."""
        return with_probed_dates(super().get_queryset(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry], search_term: str
    ) -> tuple[QuerySet[AuditEntry], bool]:
        """Match the entries of objects named like the term, or a whole id, on indexes.

        Names are looked up in the conference and room tables (a few thousand rows at
        most, never the audit table), then their entries through the (type, object)
        index; SignalWire ids and request/run ids match whole, through their own indexes.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(object_remote_id=term) | Q(cid=term)
        types = ContentType.objects.get_for_models(Conference, Room)
        for model in (Conference, Room):
            named = model.objects.filter(
                Q(name__icontains=term) | Q(display_name__icontains=term)
            ).order_by()
            pks = [str(pk) for pk in named.values_list("pk", flat=True)[:SEARCH_OBJECTS]]
            if pks:
                match |= Q(content_type_id=types[model].pk, object_pk__in=pks)
        if term.isdigit():
            match |= Q(object_pk=term, content_type_id__in=[t.pk for t in types.values()])
        return queryset.filter(match), False

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """Name the objects the page's foreign-key changes point at, in one pass."""
        changelist = super().get_changelist_instance(request)
        entries = list(changelist.result_list)  # evaluates (and caches) the page's rows
        labels = related_labels(entries)
        for entry in entries:
            entry._related_labels = labels
        return changelist

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Refuse the per-row page: the change log itself shows everything an entry holds."""
        self._found_or_404(request, object_id)
        raise PermissionDenied

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Refuse history of audit rows: they never change."""
        self._found_or_404(request, object_id)
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
            format_html(' <span class="sw-nowrap">({})</span>', short_id(entry.object_remote_id))
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
