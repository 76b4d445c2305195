"""Admin pages: the runs of actions on many rows (read-only), with progress and summary.

A run's page shows a progress bar while the worker goes (static JS polls the run's small
JSON endpoint; no inline script), what a bulk edit set, its outcomes, the rows SignalWire
refused, a link to its entries in the change log, and "Restore selected to before this
bulk edit", which asks first and then undoes the edit through the same path.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from rooms.admin import once
from rooms.admin.audit_display import changelog_url
from rooms.admin.records import RecordAdminMixin
from rooms.admin.scoping import SpaceScopedMixin, request_spaces
from rooms.models import ActionRun
from rooms.services import bulk

EDIT_ACTIONS = (ActionRun.Action.BULK_EDIT, ActionRun.Action.RESTORE)


def can_restore(request: HttpRequest, run: ActionRun) -> bool:
    """Tell whether this staff member may undo this run (a finished bulk edit they may make)."""
    return (
        run.action == ActionRun.Action.BULK_EDIT
        and run.state in bulk.DONE_STATES
        and run.state != ActionRun.State.NOT_QUEUED
        and request.user.has_perm(f"rooms.change_{run.kind}")
    )


@admin.register(ActionRun)
class ActionRunAdmin(SpaceScopedMixin, RecordAdminMixin, admin.ModelAdmin):
    """List admin action runs: who asked for what, how far the worker got, what happened."""

    change_form_template = "admin/rooms/actionrun/change_form.html"
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
        "changes_set",
        "undone_run",
        "summary",
        "change_log",
        "errors",
        "error",
    )
    readonly_fields = fields

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Leave out what names a promotion's source rows when the viewer cannot see them."""
        if obj is not None and not _sees_sources(request, obj):
            return [f for f in self.fields if f not in ("changes_set", "error")]
        return self.fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Leave the selected keys out of the listing's query."""
        return super().get_queryset(request).defer("pks")

    def get_urls(self) -> list[URLPattern]:
        """Add the run's progress endpoint and the restore of a bulk edit."""
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:run_id>/progress/",
                wrap(self.progress_view),
                name="rooms_actionrun_progress",
            ),
            path(
                "<int:run_id>/restore/",
                wrap(self.restore_view),
                name="rooms_actionrun_restore",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """Add the progress bar, the refused rows and the restore button to the run page."""
        run = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if run is not None and not _sees_sources(request, run):
            # A promotion seen from its target Space alone: the source rows stay unnamed.
            context.update(run=run, running=run.finished_at is None, sources_hidden=True,
                           progress_url=reverse("admin:rooms_actionrun_progress", args=[run.pk]))
        elif run is not None:
            context.update(
                run=run,
                running=run.finished_at is None,
                progress_url=reverse("admin:rooms_actionrun_progress", args=[run.pk]),
                outcomes=bulk.run_outcomes(run) if run.action in EDIT_ACTIONS else None,
                failures=run.failures,
                row_url_name=f"admin:rooms_{run.kind}_change",
                can_restore=can_restore(request, run),
                restore_url=reverse("admin:rooms_actionrun_restore", args=[run.pk]),
                recordings_freed=_recordings_freed(run),
                promoted=_promoted_rows(run),
            )
        return super().change_view(request, object_id, form_url, context)

    def progress_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        """Answer how far a run got, for the progress bar (no keys, no values, no secrets)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(self.get_queryset(request), pk=run_id)
        return JsonResponse(
            {
                "state": run.state,
                "done": run.done,
                "total": run.total,
                "summary": run.summary,
                "finished": run.finished_at is not None,
            }
        )

    def restore_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        """Ask before undoing a bulk edit; once confirmed, queue the restore and show it."""
        run = get_object_or_404(self.get_queryset(request).defer(None), pk=run_id)
        if not self.has_view_permission(request, run) or not can_restore(request, run):
            raise PermissionDenied
        page = reverse("admin:rooms_actionrun_change", args=[run.pk])
        rows = bulk.bulk_restore_rows(run=run)
        purpose = f"restore:{run.pk}"
        if request.method == "POST":
            if not once.spend(
                request,
                purpose,
                "This restore was confirmed already (a second click or a reload of the "
                "page), so nothing more was queued. Its runs are listed on this page.",
            ):
                return HttpResponseRedirect(page)
            try:
                undo = bulk.bulk_restore_start(run=run, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return HttpResponseRedirect(page)
            if undo.queued is False:
                self.message_user(
                    request,
                    "Nothing was queued: the task queue (Redis) cannot be reached, so the "
                    "restore did not start and nothing changed. Try again once it is back.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(page)
            self.message_user(
                request,
                f"Queued the restore of {undo.total} row(s) to before the bulk edit: the "
                "worker sends each to SignalWire. This page shows its progress.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:rooms_actionrun_change", args=[undo.pk]))
        return TemplateResponse(
            request,
            "admin/rooms/actionrun/restore_confirm.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Restore selected to before this bulk edit",
                "run": run,
                "count": len(rows),
                "changes": bulk.decoded_changes(run),
                "run_url": page,
                "nonce": once.issue(request, purpose),
            },
        )

    @admin.display(description="progress")
    def progress(self, run: ActionRun) -> str:
        """Show how many of the selected rows the worker has handled."""
        return f"{run.done} of {run.total}"

    @admin.display(description="summary")
    def summary(self, run: ActionRun) -> str:
        """Show the outcomes counted so far."""
        return run.summary

    @admin.display(description="fields set")
    def changes_set(self, run: ActionRun) -> str:
        """List the fields a bulk edit sets and their new values."""
        if run.action == ActionRun.Action.PROMOTE:
            streams = "with streams" if run.changes.get("copy_streams") else "without streams"
            return f"Promote to {run.changes.get('space', run.space)}, {streams}"
        if run.action != ActionRun.Action.BULK_EDIT:
            if run.action == ActionRun.Action.RESTORE:
                return "Each row's values from before the bulk edit"
            return "-"
        return format_html(
            '<ul class="sw-run-changes">{}</ul>',
            format_html_join(
                "", "<li><code>{}</code> → {}</li>", sorted(run.changes.items())
            ),
        )

    @admin.display(description="restores")
    def undone_run(self, run: ActionRun) -> str:
        """Link a restore to the bulk edit it undoes."""
        if run.undoes_id is None:
            return "-"
        url = reverse("admin:rooms_actionrun_change", args=[run.undoes_id])
        return format_html('<a href="{}">the bulk edit of {}</a>', url, run.undoes)

    @admin.display(description="change log")
    def change_log(self, run: ActionRun) -> str:
        """Link to the audit entries this run wrote, all under its id."""
        return format_html(
            '<a href="{}">Entries of this run in the change log</a>',
            changelog_url(cid=run.run_id.hex),
        )

    @admin.display(description="duration")
    def duration(self, run: ActionRun) -> str:
        """Show how long the run took, or that it is still waiting or going."""
        if run.started_at is None:
            return "not started"
        if run.finished_at is None:
            return "running"
        seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
        return f"{seconds:.1f} s"



def _recordings_freed(run: ActionRun) -> dict | None:
    """What a delete or retention run of recordings freed: counts, size and cost."""
    if run.kind != "recording":
        return None
    from rooms.selectors.recordings import size_text
    from rooms.services.recordings import run_freed

    freed = run_freed(run)
    counts = run.counts or {}
    return {
        "deleted": counts.get("deleted", 0) + counts.get("already_gone", 0),
        "pending": counts.get("pending_delete", 0),
        "failed": counts.get("failed", 0),
        "size": size_text(freed.size),
        "cost": freed.cost,
        "retention": run.changes if run.action == ActionRun.Action.RETENTION else None,
    }


def _sees_sources(request: HttpRequest, run: ActionRun) -> bool:
    """Tell whether the viewer may see the Spaces a promotion's rows came from."""
    if run.action != ActionRun.Action.PROMOTE or not isinstance(run.changes, dict):
        return True
    mine = request_spaces(request)
    if mine is None:
        return True
    return set(run.changes.get("source_space_ids", [])) <= {space.pk for space in mine}


def _promoted_rows(run: ActionRun) -> list[dict] | None:
    """Each promoted row's outcome as the worker recorded it (a promotion's run only)."""
    if run.action != ActionRun.Action.PROMOTE:
        return None
    rows: list[dict] = run.changes.get("rows", [])
    return rows
