"""What the admin pages of records (audit entries, sync runs, issued tokens) share."""

from typing import Any

from django.http import HttpRequest


class RecordAdminMixin:
    """A record is history: the portal writes it; nobody adds, edits or deletes it in admin."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """Records are written by the portal only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Records are read, never edited, not even by superusers."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Records are kept (audit entries leave only through the retention task)."""
        return False
