"""Admin pages: the runs of actions on many rows (read-only), with progress and summary."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from rooms.admin.records import RecordAdminMixin
from rooms.models import ActionRun


@admin.register(ActionRun)
class ActionRunAdmin(RecordAdminMixin, admin.ModelAdmin):
    """List admin action runs: who asked for what, how far the worker got, what happened."""

    date_hierarchy = "requested_at"
    list_display = (
        "requested_at",
        "action",
        "kind",
        "requested_by",
        "state",
        "progress",
        "summary",
        "duration",
    )
    list_filter = ("action", "kind", "state")
    list_select_related = ("requested_by",)
    search_fields = ("=run_id", "error")
    show_full_result_count = False
    fields = (
        "run_id",
        "action",
        "kind",
        "requested_by",
        "state",
        "requested_at",
        "started_at",
        "finished_at",
        "duration",
        "progress",
        "summary",
        "errors",
        "error",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Leave the selected keys out of the listing's query."""
        return super().get_queryset(request).defer("pks")

    @admin.display(description="progress")
    def progress(self, run: ActionRun) -> str:
        """Show how many of the selected rows the worker has handled."""
        return f"{run.done} of {run.total}"

    @admin.display(description="summary")
    def summary(self, run: ActionRun) -> str:
        """Show the outcomes counted so far."""
        return run.summary

    @admin.display(description="duration")
    def duration(self, run: ActionRun) -> str:
        """Show how long the run took, or that it is still waiting or going."""
        if run.started_at is None:
            return "not started"
        if run.finished_at is None:
            return "running"
        seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        return f"{seconds:.1f} s"
