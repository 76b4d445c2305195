"""Admin pages: streams of conferences and rooms, their URLs masked."""

from __future__ import annotations

from django.contrib import admin

from rooms.models import Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    """Streams: listed with the URL masked."""

    list_display = ("__str__", "masked_url", "stream_type", "sync_state")
    fields = ("masked_url", "stream_type", "width", "height", "fps", "sync_state")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        """Streams are added from their own form (coming)."""
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        """Read-only for now."""
        return False
