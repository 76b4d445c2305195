"""Admin pages: sync runs (read-only) and the "Sync now" button that queues a sync."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import path, reverse
from django.utils.html import format_html

from rooms import sync
from rooms.admin.records import RecordAdminMixin
from rooms.admin.scoping import SpaceScopedMixin, request_spaces
from rooms.models import Space, SyncRun
from rooms.selectors import runs

logger = logging.getLogger("rooms.admin.sync")

RUN_SYNC_PERMISSION = "rooms.run_sync"


@admin.register(SyncRun)
class SyncRunAdmin(SpaceScopedMixin, RecordAdminMixin, admin.ModelAdmin):
    """List sync runs with their counts and outcome; nobody adds, edits or deletes them."""

    change_list_template = "admin/rooms/syncrun/change_list.html"
    date_hierarchy = "started_at"
    list_display = (
        "started_at",
        "kind",
        "trigger",
        "outcome",
        "duration",
        *sync.COUNTERS[1:],
    )
    list_filter = ("kind", "outcome", "trigger")
    search_fields = ("=run_id", "error")
    fields = (
        "run_id",
        "kind",
        "trigger",
        "outcome",
        "started_at",
        "finished_at",
        "duration",
        *sync.COUNTERS,
        "error",
        "audit_link",
    )
    readonly_fields = fields

    @admin.display(description="duration")
    def duration(self, run: SyncRun) -> str:
        """Show how long the run took, or that it is still going."""
        if run.finished_at is None:
            return "running"
        # A skipped run is stamped finished a hair before its auto start time.
        seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        return f"{seconds:.1f} s"

    @admin.display(description="audit entries")
    def audit_link(self, run: SyncRun) -> str:
        """Link to the change log rows this run wrote (they carry its run id)."""
        url = reverse("admin:rooms_auditentry_changelist") + f"?cid={run.run_id}"
        return format_html('<a href="{}">Changes made by this run</a>', url)

    def get_urls(self) -> list:
        """Add the "Sync now" endpoint before the default routes."""
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "sync-now/",
                self.admin_site.admin_view(self.sync_now_view),
                name="{}_{}_sync_now".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Show the latest outcome of each kind and, to those allowed, the button."""
        spaces = request_spaces(request)
        extra_context = {
            **(extra_context or {}),
            "can_run_sync": request.user.has_perm(RUN_SYNC_PERMISSION),
            "sync_summaries": [
                (
                    label,
                    runs.latest_sync_summary(kind, spaces=spaces),
                    *self._summary_state(kind, spaces),
                )
                for kind, label in SyncRun.Kind.choices
                if kind != SyncRun.Kind.PUSH
            ],
        }
        return super().changelist_view(request, extra_context)

    @staticmethod
    def _summary_state(kind: str, spaces: list[Space] | None) -> tuple[str, str]:
        """Name how the latest run of a kind went, as a CSS modifier and a short label."""
        run = runs.latest_sync_run(kind, spaces=spaces)
        if run is None:
            return "never", "Never run"
        if run.outcome == SyncRun.Outcome.SUCCEEDED:
            return "succeeded", "Succeeded"
        if run.outcome == SyncRun.Outcome.FAILED:
            return "failed", "Failed"
        return "running", "Running"

    def sync_now_view(self, request: HttpRequest) -> HttpResponse:
        """Queue a sync of conferences, their new tokens and rooms; never sync in the request."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(RUN_SYNC_PERMISSION):
            raise PermissionDenied
        from rooms.tasks.sync import queue_full_sync

        changelist = reverse("admin:rooms_syncrun_changelist")
        try:
            queue_full_sync("admin", spaces=request_spaces(request))
        except Exception as exc:  # the broker is down: say so, the page must not break
            logger.exception("could not queue a sync from admin")
            self.message_user(
                request,
                f"The sync could not be queued ({type(exc).__name__}); try again shortly.",
                messages.ERROR,
            )
            return HttpResponseRedirect(changelist)
        self.message_user(
            request,
            "Sync queued: conferences, their tokens and rooms will be refreshed in the "
            "background. Reload this page to see the runs.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(changelist)
