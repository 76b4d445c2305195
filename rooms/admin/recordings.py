"""Admin for room recordings: a list across rooms with totals, download and delete.

Download is a POST (with CSRF, so a link prefetch never triggers an audited download)
that asks SignalWire for a fresh link at that moment and redirects to it; the link is
never stored, logged or shown. Delete goes to SignalWire first, after a confirmation
page; the bulk delete of selected recordings is an action run carried out by the worker.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from rooms.admin import once
from rooms.admin.activity_lists import NAME_SEARCH_HELP, bounded_totals, search_by_room_name
from rooms.admin.history import AuditHistoryMixin
from rooms.admin.paging import CappedCountPaginator, IndexedValuesFilter, with_probed_dates
from rooms.admin.scoping import SpaceScopedMixin
from rooms.models import ActionRun, AuditEntry, Recording, RecordingState
from rooms.selectors import recordings
from rooms.services import bulk
from rooms.services import recordings as recording_services
from rooms.signalwire.errors import SignalWireError

logger = logging.getLogger("rooms.admin.recordings")

MIB = 1024 * 1024
# Size buckets of the list filter: (value, label, lower bound, upper bound) in bytes.
SIZE_BUCKETS = (
    ("lt100m", "Under 100 MiB", None, 100 * MIB),
    ("100m-1g", "100 MiB to 1 GiB", 100 * MIB, 1024 * MIB),
    ("gt1g", "Over 1 GiB", 1024 * MIB, None),
    ("unknown", "Size not known yet", None, None),
)
# Room names offered by the room filter; more are reached through search.
ROOM_CHOICES_MAX = 200
DOWNLOAD_PERMISSION = "rooms.download_recording"
# Recordings listed on a session's or room's page; the rest are a link away.
PANEL_ROWS = 20
# The purpose of the one-time nonce of the bulk delete's confirmation.
BULK_DELETE = "recordings:delete-selected"


def length_text(seconds: int | None) -> str:
    """Say a duration as h:mm:ss, or a dash when unknown."""
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class RoomFilter(admin.SimpleListFilter):
    """Filter recordings by the room (or conference) their session was in."""

    title = "room"
    parameter_name = "room"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer the room names that have recordings."""
        names = (
            model_admin.get_queryset(request).exclude(room_name="")
            .order_by("room_name")
            .values_list("room_name", flat=True)
            .distinct()[:ROOM_CHOICES_MAX]
        )
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the recordings of the chosen room."""
        value = self.value()
        return queryset.filter(room_name=value) if value else queryset


class SizeFilter(admin.SimpleListFilter):
    """Filter recordings by the size of their file."""

    title = "size"
    parameter_name = "size"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer the size buckets."""
        return [(value, label) for value, label, _, _ in SIZE_BUCKETS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the recordings in the chosen bucket."""
        for value, _, low, high in SIZE_BUCKETS:
            if self.value() != value:
                continue
            if value == "unknown":
                return queryset.filter(size_in_bytes__isnull=True)
            condition = Q()
            if low is not None:
                condition &= Q(size_in_bytes__gte=low)
            if high is not None:
                condition &= Q(size_in_bytes__lt=high)
            return queryset.filter(condition)
        return queryset


def recording_panel(queryset: QuerySet[Recording], list_url: str) -> dict[str, Any]:
    """The newest recordings of a session or room for its page, and their totals (2 queries)."""
    rows = list(queryset.order_by("-started_at", "-pk")[:PANEL_ROWS])
    total = recordings.recording_totals(queryset)
    total["size_text"] = recordings.size_text(total["size"])
    return {
        "rows": [
            {
                "recording": r,
                "url": reverse("admin:rooms_recording_change", args=[r.pk]),
                "length": length_text(r.duration),
                "size": recordings.size_text(r.size_in_bytes),
            }
            for r in rows
        ],
        "total": total,
        "more": total["count"] > len(rows),
        "list_url": list_url,
    }


def session_recordings(session: Any) -> dict[str, Any]:
    """The recordings panel of a session's page."""
    url = reverse("admin:rooms_recording_changelist") + "?" + urlencode(
        {"q": session.remote_id}
    )
    return recording_panel(Recording.objects.filter(session_id=session.pk), url)


def owner_recordings(field: str, pk: int, name: str) -> dict[str, Any]:
    """The recordings panel of a conference's or room's page (its sessions' recordings)."""
    url = reverse("admin:rooms_recording_changelist") + "?" + urlencode({"room": name})
    return recording_panel(Recording.objects.filter(**{f"session__{field}_id": pk}), url)


def no_store(response: HttpResponse) -> HttpResponse:
    """Keep a response out of every cache (it names or leads to a signed link)."""
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    return response


def media_form_targets() -> list[str]:
    """Where a download form may lead: SignalWire's media links are on hosts of its own.

    The portal's policy lets forms post only to itself, and browsers apply that to the
    redirect a form leads to; the page with the download button also allows https
    destinations (and the Space's own origin, for the local sandbox over http).
    """
    targets = ["'self'", "https:"]
    parts = urlsplit(str(settings.SIGNALWIRE_SPACE_URL or ""))
    if parts.scheme == "http" and parts.netloc:
        targets.append(f"http://{parts.netloc}")
    return targets


@admin.register(Recording)
class RecordingAdmin(SpaceScopedMixin, AuditHistoryMixin, admin.ModelAdmin):
    """Recordings across rooms: filter, totals of size and cost, download, delete."""

    change_list_template = "admin/rooms/recording/change_list.html"
    change_form_template = "admin/rooms/recording/change_form.html"
    list_display = (
        "__str__",
        "session_link",
        "status",
        "started_at",
        "finished_at",
        "length",
        "size",
        "cost_in_dollars",
        "state",
    )
    list_filter = (
        RoomFilter,
        ("status", IndexedValuesFilter),
        "started_at",
        SizeFilter,
        "sync_state",
    )
    # Matched on indexes only (see get_search_results).
    search_fields = ("room_name", "=remote_id", "=remote_session_id")
    search_help_text = NAME_SEARCH_HELP
    date_hierarchy = "started_at"
    list_select_related = ("session",)
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # Counts stop at 10,000 ("more than 10,000"); the date hierarchy probes the index.
    paginator = CappedCountPaginator
    actions = ("delete_selected_recordings",)
    fields = (
        "room_name",
        "session_link",
        "status",
        "started_at",
        "finished_at",
        "length",
        "size",
        "format",
        "cost_in_dollars",
        "state",
        "last_error",
        "remote_id",
        "remote_session_id",
        "last_synced_at",
        "sync_note",
    )
    readonly_fields = fields

    # --- permissions: recordings come from SignalWire; only delete changes them --------

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Recordings are made in SignalWire only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Recordings are read, never edited."""
        return False

    def has_download_permission(self, request: HttpRequest) -> bool:
        """Tell whether this staff member may ask for a recording's file."""
        return bool(request.user.has_perm(DOWNLOAD_PERMISSION))

    def get_actions(self, request: HttpRequest) -> dict:
        """Offer only the SignalWire-first delete (never Django's local one)."""
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Recordings whose date hierarchy is found with index probes."""
        return with_probed_dates(super().get_queryset(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Recordings of the rooms named like the term, or with that recording or session id."""
        found = search_by_room_name(queryset, search_term, "remote_id", "remote_session_id")
        return found, False

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="session")
    def session_link(self, obj: Recording) -> str:
        """Link to the session the recording was made in, when it is mirrored."""
        if obj.session_id is None:
            return format_html("{} (not mirrored yet)", obj.remote_session_id or "unknown")
        url = reverse("admin:rooms_roomsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.remote_session_id[:8] or "session")

    @admin.display(description="duration", ordering="duration")
    def length(self, obj: Recording) -> str:
        """The recording's length."""
        return length_text(obj.duration)

    @admin.display(description="size", ordering="size_in_bytes")
    def size(self, obj: Recording) -> str:
        """The file's size in readable units."""
        return recordings.size_text(obj.size_in_bytes)

    @admin.display(description="sync state", ordering="sync_state")
    def state(self, obj: Recording) -> str:
        """Synced, pending delete (with why), delete failed (with why) or deleted remotely."""
        if obj.sync_state == RecordingState.PENDING_DELETE:
            return format_html(
                '<span class="sw-state sw-state--pending" title="{}">Pending delete</span>',
                obj.last_error,
            )
        if obj.sync_state == RecordingState.SYNCED and obj.last_error.startswith(
            recording_services.REFUSED
        ):
            return format_html(
                '<span class="sw-state sw-state--failed" title="{}">Delete failed</span>',
                obj.last_error,
            )
        return obj.get_sync_state_display()

    # --- pages ------------------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        """Show the count, size and cost of the recordings the current filter selects.

        Past the list's count cap it says "more than" that many and leaves the sums to a
        narrower filter: summing every row of a year would cost every page a table scan.
        """
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if isinstance(context, dict) and "cl" in context:
            cl = context["cl"]
            context["recording_totals"] = bounded_totals(cl.queryset, cl.paginator)
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """Show the recording with its download button (with the permission) and delete."""
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        can_download = self.has_download_permission(request)
        context.update(
            can_download=can_download and obj is not None,
            download_url=reverse("admin:rooms_recording_download", args=[obj.pk]) if obj else "",
            downloadable=obj is not None and obj.is_completed
            and obj.sync_state == RecordingState.SYNCED,
        )
        response = super().change_view(request, object_id, form_url, context)
        if can_download:
            response._csp_update = {"form-action": media_form_targets()}  # type: ignore[attr-defined]
        return response

    def get_urls(self) -> list[URLPattern]:
        """Add the download endpoint; a recording has no "restore this version" page."""
        own = [
            pattern
            for pattern in super().get_urls()
            if not (getattr(pattern, "name", None) or "").endswith("_audit_restore")
        ]
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="rooms_recording_download",
            ),
            *own,
        ]

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Ask SignalWire for a fresh link now and redirect to it (POST only, audited)."""
        return _download(self, request, pk)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """Confirm, then delete in SignalWire first (no transaction open while it answers)."""
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("No such recording.")
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        page = reverse("admin:rooms_recording_change", args=[obj.pk])
        purpose = f"delete-recording:{obj.pk}"
        if request.method == "POST":
            if not once.spend(
                request,
                purpose,
                f"That delete was sent already (a second click or a reload of the page), "
                f"so {obj} was not deleted again.",
            ):
                return HttpResponseRedirect(page)
            try:
                outcome = recording_services.recording_delete(
                    recording=obj, actor=request.user, source=AuditEntry.Source.ADMIN
                )
            except SignalWireError as exc:
                self.message_user(
                    request, f"SignalWire refused to delete {obj}: {exc}", messages.ERROR
                )
                return HttpResponseRedirect(page)
            if outcome == recording_services.PENDING:
                self.message_user(
                    request,
                    f"SignalWire cannot be reached now, so {obj} is marked pending delete; "
                    "a background task deletes it as soon as SignalWire answers.",
                    messages.WARNING,
                )
                return HttpResponseRedirect(page)
            self.message_user(
                request,
                f"Deleted the recording {obj} in SignalWire and here "
                f"({recordings.size_text(obj.size_in_bytes)}, ${obj.cost_in_dollars or 0}).",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:rooms_recording_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Delete this recording?",
            "object": obj,
            "size": recordings.size_text(obj.size_in_bytes),
            "page_url": page,
            "nonce": once.issue(request, purpose),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/rooms/recording/delete_confirmation.html", context)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Delete selected recordings in SignalWire", permissions=["delete"])
    def delete_selected_recordings(
        self, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse | None:
        """Ask first; then the worker deletes each in SignalWire, then here, in batches."""
        if request.POST.get("confirm") == "yes":
            if not once.spend(
                request,
                BULK_DELETE,
                "This delete was confirmed already (a second click or a reload of the "
                "page), so nothing more was queued. Its run is listed below.",
            ):
                return HttpResponseRedirect(reverse("admin:rooms_actionrun_changelist"))
            run = bulk.action_run_start(
                action=ActionRun.Action.DELETE, rows=queryset, actor=request.user
            )
            if run.queued is False:
                self.message_user(
                    request,
                    "Nothing was queued: the task queue (Redis) cannot be reached, so no "
                    "recording was deleted. Try again once it is back.",
                    messages.ERROR,
                )
                return None
            url = reverse("admin:rooms_actionrun_change", args=[run.pk])
            self.message_user(
                request,
                format_html(
                    "Queued the delete of {} recording(s): the worker deletes each in "
                    'SignalWire, then here. <a href="{}">Follow its progress</a>.',
                    run.total,
                    url,
                ),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(url)
        totals = recordings.recording_totals(queryset)
        return TemplateResponse(
            request,
            "admin/rooms/recording/delete_selected_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": "Delete the selected recordings?",
                "opts": self.opts,
                "objects": queryset[:100],
                "count": totals["count"],
                "size": recordings.size_text(totals["size"]),
                "cost": totals["cost"],
                "action": request.POST.get("action", ""),
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "nonce": once.issue(request, BULK_DELETE),
            },
        )


def _download(model_admin: RecordingAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """The download: POST, permission, a fresh link from SignalWire, a no-store redirect."""
    if request.method != "POST":  # a prefetch or a pasted link never downloads
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_download_permission(request):
        raise PermissionDenied
    recording = model_admin.get_queryset(request).select_related("session").filter(pk=pk).first()
    if recording is None or not model_admin.has_view_permission(request, recording):
        raise Http404("No such recording.")
    page = reverse("admin:rooms_recording_change", args=[recording.pk])
    try:
        uri = recording_services.recording_link(
            recording=recording, actor=request.user, source=AuditEntry.Source.ADMIN
        )
    except recording_services.RecordingLinkUnavailable as exc:
        model_admin.message_user(request, str(exc), messages.WARNING)
        return no_store(HttpResponseRedirect(page))
    except SignalWireError as exc:
        logger.info("no link for recording %s: %s", recording.pk, type(exc).__name__)
        model_admin.message_user(
            request,
            f"SignalWire could not be asked for a download link now ({exc}). Try again in a "
            "moment.",
            messages.ERROR,
        )
        return no_store(HttpResponseRedirect(page))
    response = HttpResponseRedirect(uri)
    response["Referrer-Policy"] = "no-referrer"
    return no_store(response)
