"""Admin for room activity: sessions, their members and events, and live badges on rooms."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.db.models import Count, Exists, Model, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from rooms.admin.activity_lists import NAME_SEARCH_HELP, search_by_room_name
from rooms.admin.paging import CappedCountPaginator, IndexedValuesFilter, with_probed_dates
from rooms.admin.records import RecordAdminMixin
from rooms.admin.scoping import SpaceScopedMixin
from rooms.models import Recording, RoomSession, SessionMember
from rooms.models.sessions import LIVE
from rooms.services.common import client_for
from rooms.signalwire import sessions as remote_sessions
from rooms.signalwire.errors import SignalWireError

logger = logging.getLogger("rooms.admin.sessions")

# Rows of session history shown on a room's or conference's page.
HISTORY_ROWS = 20
# Events fetched for a session's page.
EVENT_LIMIT = 500


def duration_text(seconds: int | None) -> str:
    """Say a duration as h:mm:ss, or a dash when unknown."""
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def status_badge(session: RoomSession) -> str:
    """Show a session's status: live with its members, completed, or SignalWire's own word."""
    if session.is_live:
        return format_html(
            '<span class="sw-live sw-live--on">Live now: {} members</span>', session.members_now
        )
    return format_html('<span class="sw-live">{}</span>', session.status or "unknown")


def _owner_field(model: type[Model]) -> str:
    return "conference" if model._meta.model_name == "conference" else "room"


def _live_members(model: type[Model]) -> Subquery:
    """Members present now in the owner's live sessions (NULL when it has none)."""
    field = _owner_field(model)
    live = (
        RoomSession.objects.filter(**{field: OuterRef("pk")}, status=LIVE)
        .order_by()
        .values(field)
        .annotate(present=Sum("members_now"))
        .values("present")
    )
    return Subquery(live)


class LiveFilter(admin.SimpleListFilter):
    """Filter conferences or rooms by whether a session is in progress in them now."""

    title = "activity"
    parameter_name = "activity"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer live and idle."""
        return [("live", "Live now"), ("idle", "Idle")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the rows with (or without) a session in progress."""
        if self.value() not in ("live", "idle"):
            return queryset
        field = _owner_field(queryset.model)
        live = Exists(RoomSession.objects.filter(**{field: OuterRef("pk")}, status=LIVE))
        return queryset.filter(live) if self.value() == "live" else queryset.exclude(live)


@admin.display(description="live now", ordering="live_members")
def live_badge(obj: Any) -> str:
    """Show "Live now: N members" on a conference or room with a session in progress."""
    present = getattr(obj, "live_members", None)
    if present is None:
        return format_html('<span class="sw-live sw-live--idle">{}</span>', "idle")
    return format_html('<span class="sw-live sw-live--on">Live now: {} members</span>', present)


class LiveActivityMixin:
    """Give a conference or room admin its live member count (one subquery, no N+1)."""

    class Media:
        css = {"all": ("rooms/activity.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Annotate each row with the members present in its live sessions."""
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return queryset.annotate(live_members=_live_members(queryset.model))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """Show its live state and newest sessions, and their recordings, to who may view them."""
        context = dict(extra_context or {})
        if object_id.isdigit():
            model = self.model  # type: ignore[attr-defined]
            site = self.admin_site  # type: ignore[attr-defined]
            pk = int(object_id)
            if site.get_model_admin(RoomSession).has_view_permission(request):
                context["activity"] = owner_activity(model, pk)
            from rooms.admin.recordings import owner_recordings

            if site.get_model_admin(Recording).has_view_permission(request):
                name = model._default_manager.filter(pk=pk).values_list("name", flat=True)
                context["recordings"] = owner_recordings(
                    _owner_field(model), pk, name.first() or ""
                )
        return super().change_view(request, object_id, form_url, context)  # type: ignore[misc]


def owner_activity(model: type[Model], pk: int) -> dict[str, Any]:
    """A conference's or room's live state and newest sessions, in two queries."""
    field = _owner_field(model)
    owned = RoomSession.objects.filter(**{f"{field}_id": pk})
    recent = list(owned.order_by("-start_time", "-id")[:HISTORY_ROWS])
    totals = owned.filter(status=LIVE).aggregate(
        live=Count("id"), present=Coalesce(Sum("members_now"), 0)
    )
    return {
        "live": bool(totals["live"]),
        "present": totals["present"],
        "sessions": [
            {
                "url": reverse("admin:rooms_roomsession_change", args=[s.pk]),
                "session": s,
                "badge": status_badge(s),
                "length": duration_text(s.duration),
            }
            for s in recent
        ],
        "more": len(recent) == HISTORY_ROWS,
        "sessions_url": reverse("admin:rooms_roomsession_changelist") + f"?{field}__id__exact={pk}",
    }


class MemberInline(admin.TabularInline):
    """The members of a session: who joined, when they left, how long, what it cost."""

    model = SessionMember
    fields = ("name", "join_time", "leave_time", "length", "cost_in_dollars", "sync_note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Members come from SignalWire only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Members are read, never edited."""
        return False

    @admin.display(description="duration")
    def length(self, obj: SessionMember) -> str:
        """The member's time in the session."""
        return duration_text(obj.duration)


@admin.register(RoomSession)
class RoomSessionAdmin(SpaceScopedMixin, RecordAdminMixin, admin.ModelAdmin):
    """Sessions across rooms: filter by room, date and status; a page per session."""

    list_display = (
        "__str__",
        "owner",
        "state",
        "start_time",
        "end_time",
        "length",
        "member_count",
        "cost_in_dollars",
    )
    list_filter = (("status", IndexedValuesFilter), "start_time")
    # Matched on indexes only (see get_search_results): a year of sessions is a million rows.
    search_fields = ("room_name", "remote_id")
    search_help_text = NAME_SEARCH_HELP
    date_hierarchy = "start_time"
    list_select_related = ("conference", "room")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # Counts stop at 10,000 ("more than 10,000"); the date hierarchy probes the index.
    paginator = CappedCountPaginator
    inlines = (MemberInline,)
    fields = (
        "room_name",
        "owner",
        "state",
        "start_time",
        "end_time",
        "length",
        "locked",
        "member_count",
        "member_minutes",
        "cost_in_dollars",
        "remote_id",
        "remote_room_id",
        "last_synced_at",
        "sync_note",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("rooms/activity.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Sessions whose date hierarchy is found with index probes, not a pass over all rows."""
        return with_probed_dates(super().get_queryset(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Sessions of the rooms named like the term, or with that session or room id."""
        return search_by_room_name(queryset, search_term, "remote_id", "remote_room_id"), False

    @admin.display(description="room or conference")
    def owner(self, obj: RoomSession) -> str:
        """Link to the conference or room the session belongs to, when the portal knows it."""
        for kind, target in (("conference", obj.conference), ("room", obj.room)):
            if target is not None:
                url = reverse(f"admin:rooms_{kind}_change", args=[target.pk])
                return format_html('<a href="{}">{} {}</a>', url, kind, target.name)
        return format_html("{} (not mirrored)", obj.room_name)

    @admin.display(description="status", ordering="status")
    def state(self, obj: RoomSession) -> str:
        """Live with its members, or completed."""
        return status_badge(obj)

    @admin.display(description="duration", ordering="duration")
    def length(self, obj: RoomSession) -> str:
        """The session's duration."""
        return duration_text(obj.duration)

    @admin.display(description="member minutes")
    def member_minutes(self, obj: RoomSession) -> str:
        """The members' time in the session, in minutes."""
        return f"{obj.member_seconds / 60:.1f}"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """List the session's recordings on its page, to staff who may view recordings."""
        from rooms.admin.recordings import session_recordings

        context = dict(extra_context or {})
        session = self.get_object(request, object_id)
        if session is not None and self.admin_site.get_model_admin(
            Recording
        ).has_view_permission(request):
            context["recordings"] = session_recordings(session)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list:
        """Add the session's event timeline page and the usage page."""
        from rooms.admin.usage import usage_urls

        return [
            *usage_urls(self),
            path(
                "<path:object_id>/events/",
                self.admin_site.admin_view(self.events_view),
                name="rooms_roomsession_events",
            ),
            *super().get_urls(),
        ]

    def events_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Show a session's events, asked from SignalWire now (no transaction is open)."""
        session = self.get_object(request, object_id)
        if session is None or not self.has_view_permission(request, session):
            raise Http404("No such session.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": session,
            "title": f"Events of {session}",
            **_events_context(session),
        }
        return TemplateResponse(request, "admin/rooms/roomsession/events.html", context)


def _events_context(session: RoomSession) -> dict[str, Any]:
    """Fetch a session's events for its page; a failure becomes a message, not an error."""
    try:
        events = remote_sessions.list_session_events(
            client_for(session.space, "interactive"), session.remote_id, limit=EVENT_LIMIT
        )
    except SignalWireError as exc:
        logger.info("events of session %s not fetched: %s", session.remote_id, exc)
        return {"events": None, "events_error": f"SignalWire could not be asked now: {exc}"}
    rows = [
        {
            "at": event.get("created_at", ""),
            "name": event.get("name", ""),
            "who": (event.get("payload") or {}).get("name", "")
            if isinstance(event.get("payload"), dict)
            else "",
        }
        for event in events
        if isinstance(event, dict)
    ]
    return {"events": rows, "events_error": "", "events_capped": len(events) >= EVENT_LIMIT}
