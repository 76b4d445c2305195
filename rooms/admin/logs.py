"""Admin for video logs: a read-only list of what each session was charged, by day and room."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms.admin.scoping import SpaceScopedMixin
from rooms.models import VideoLog

# Room names offered by the room filter; more are reached through search.
ROOM_CHOICES_MAX = 200


class LogRoomFilter(admin.SimpleListFilter):
    """Filter logs by the room (or conference) of their session."""

    title = "room"
    parameter_name = "room"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer the room names that have logs."""
        names = (
            model_admin.get_queryset(request).exclude(room_name="")
            .order_by("room_name")
            .values_list("room_name", flat=True)
            .distinct()[:ROOM_CHOICES_MAX]
        )
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[VideoLog]) -> QuerySet[VideoLog]:
        """Keep the logs of the chosen room."""
        value = self.value()
        return queryset.filter(room_name=value) if value else queryset


@admin.register(VideoLog)
class VideoLogAdmin(SpaceScopedMixin, admin.ModelAdmin):
    """SignalWire's video logs as mirrored: read, never added, edited or deleted here."""

    list_display = (
        "remote_created_at", "room_name", "log_type", "status", "started_at", "ended_at",
        "charge", "sync_state",
    )
    list_filter = (LogRoomFilter, "remote_created_at", "log_type", "sync_state")
    search_fields = ("room_name", "=remote_id", "=remote_session_id")
    date_hierarchy = "remote_created_at"
    list_per_page = 100
    show_full_result_count = False
    fields = (
        "room_name", "remote_session_id", "log_type", "source", "status", "locked",
        "started_at", "ended_at", "charge", "remote_created_at", "discarded_at", "sync_state",
        "remote_id", "last_synced_at", "sync_note", "raw",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Logs are made in SignalWire only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Logs are read, never edited."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Logs are billing records: the mirror keeps them."""
        return False
