"""Compare with and promote to another Space: a row's page, and an action on many rows.

"Compare with…" shows a conference or room beside its counterpart (same name) in another
Space the staff member may see; "Promote to…" on that page creates or updates it there
through rooms.services.promote, once per form. The list action previews what each selected
row would become and then records a run the worker carries out. Stream URLs never appear:
someone who may reveal them sees each stream's destination host and shape, others a count.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from rooms.admin import once
from rooms.admin.bulk_edit import action_page
from rooms.audit import audit_context
from rooms.models import ActionRun, AuditEntry, Space
from rooms.services import bulk, promote
from rooms.services.common import client_for
from rooms.signalwire.errors import SignalWireError

ALREADY_PROMOTED = (
    "That promotion was sent already (a second click or a reload of the page), so nothing "
    "more was done."
)
ALREADY_QUEUED = (
    "This promotion was confirmed already (a second click or a reload of the page), so "
    "nothing more was queued. Its run is listed below."
)
# Rows the preview lists one by one; the counts cover every selected row.
PREVIEW_ROWS = 200
OUTCOME_TEXT = {
    promote.CREATED: "created",
    promote.UPDATED: "updated",
    promote.SAME: "already the same",
    promote.PENDING: "saved there and pending (SignalWire could not be reached in time)",
}


def visible_spaces(request: HttpRequest) -> QuerySet[Space]:
    """The Spaces this staff member may see and act in."""
    return Space.objects.visible_to(request.user)


def _may_reveal_streams(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(promote.STREAM_REVEAL))


class PromoteMixin:
    """The compare page, the promote form and the bulk action of a conference or room admin."""

    admin_site: Any
    model: Any

    def get_urls(self) -> list:
        """Add the compare page and the promote form of one row."""
        name = self.model._meta.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/compare/",
                wrap(self.compare_view),
                name=f"rooms_{name}_compare",
            ),
            path(
                "<path:object_id>/promote/",
                wrap(self.promote_view),
                name=f"rooms_{name}_promote",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    # --- one row ----------------------------------------------------------------------

    def _visible_row(self, request: HttpRequest, object_id: str) -> Any:
        """The row, or 404 when it does not exist or lies in a Space the user may not see."""
        row = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if row is None or not visible_spaces(request).filter(pk=row.space_id).exists():
            raise Http404(f"No {self.model._meta.verbose_name} with id “{object_id}”.")
        if not self.has_view_permission(request, row):  # type: ignore[attr-defined]
            raise PermissionDenied
        return row

    @staticmethod
    def _target(request: HttpRequest, row: Any, value: str | None) -> Space | None:
        """The other Space asked for; 404 unless the user may see it (None when none asked)."""
        if not value:
            return None
        if not value.isdigit():
            raise Http404("No such Space.")
        space = visible_spaces(request).exclude(pk=row.space_id).filter(pk=int(value)).first()
        if space is None:
            raise Http404("No such Space.")
        return space

    def _purpose(self, row: Any, space: Space) -> str:
        return f"promote:{self.model._meta.label_lower}:{row.pk}:{space.pk}"

    def _compare_url(self, row: Any, space: Space | None = None) -> str:
        url = reverse(f"admin:rooms_{self.model._meta.model_name}_compare", args=[row.pk])
        return f"{url}?space={space.pk}" if space is not None else url

    def compare_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Show the row beside its counterpart in another Space, and the promote form."""
        row = self._visible_row(request, object_id)
        space = self._target(request, row, request.GET.get("space"))
        return self._compare_page(request, row, space)

    def _compare_page(
        self, request: HttpRequest, row: Any, space: Space | None, errors: list[str] | None = None
    ) -> TemplateResponse:
        opts = self.model._meta
        comparison = None
        can_promote = False
        nonce = ""
        if space is not None:
            comparison = promote.compare(
                row=row, space=space, stream_details=_may_reveal_streams(request)
            )
            can_promote = bool(self.has_change_permission(request, row))  # type: ignore[attr-defined]
            if can_promote:
                nonce = once.issue(request, self._purpose(row, space))
        return TemplateResponse(
            request,
            "admin/rooms/promote/compare.html",
            {
                **self.admin_site.each_context(request),
                "opts": opts,
                "title": f"Compare “{row}” with another Space",
                "original": row,
                "spaces": visible_spaces(request).exclude(pk=row.space_id),
                "space": space,
                "comparison": comparison,
                "can_promote": can_promote,
                "can_copy_streams": _may_reveal_streams(request),
                "nonce": nonce,
                "errors": errors or [],
                "promote_url": reverse(
                    f"admin:rooms_{opts.model_name}_promote", args=[row.pk]
                ),
                "change_url": reverse(f"admin:rooms_{opts.model_name}_change", args=[row.pk]),
            },
        )

    def promote_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Promote the row to the Space the form names, once per form."""
        row = self._visible_row(request, object_id)  # 404 first: another Space's id
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request, row):  # type: ignore[attr-defined]
            raise PermissionDenied
        space = self._target(request, row, request.POST.get("space"))
        if space is None:
            raise Http404("No such Space.")
        copy_streams = request.POST.get("copy_streams") == "on"
        if copy_streams and not _may_reveal_streams(request):
            raise PermissionDenied
        if not once.spend(request, self._purpose(row, space), ALREADY_PROMOTED):
            return HttpResponseRedirect(self._compare_url(row, space))
        try:
            with audit_context(source=AuditEntry.Source.ADMIN, actor=request.user):
                done = promote.promote_one(
                    row=row, space=space, actor=request.user, copy_streams=copy_streams,
                    client=client_for(space, "interactive"),
                )
        except ValidationError as exc:
            refusal = [f"{space.name} refused the promotion; nothing was changed."]
            return self._compare_page(request, row, space, [*refusal, bulk.refusal_message(exc)])
        except SignalWireError as exc:
            refusal = [f"{space.name} refused the promotion; nothing was changed."]
            return self._compare_page(request, row, space, [*refusal, str(exc)])
        self._report_promotion(request, row, space, done)
        return HttpResponseRedirect(self._compare_url(row, space))

    def _report_promotion(
        self, request: HttpRequest, row: Any, space: Space, done: promote.Promotion
    ) -> None:
        text = f"“{row.name}” in {space.name}: {OUTCOME_TEXT.get(done.outcome, done.outcome)}"
        if done.changes:
            text += " (" + ", ".join(promote.label(self.model, f) for f in done.changes) + ")"
        if done.streams_copied:
            text += f"; {done.streams_copied} stream(s) copied"
        level = messages.WARNING if done.outcome == promote.PENDING else messages.SUCCESS
        self.message_user(request, text + ".", level)  # type: ignore[attr-defined]
        for error in done.stream_errors:
            self.message_user(request, error, messages.ERROR)  # type: ignore[attr-defined]


# --- many rows ----------------------------------------------------------------------------


@admin.action(description="Promote to another Space…", permissions=["change"])
def promote_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse:
    """Choose a Space, preview what each selected row becomes there, then queue the run."""
    spaces = visible_spaces(request)
    if queryset.exclude(space__in=spaces).exists():
        raise Http404("No such rows.")
    opts = modeladmin.model._meta
    step = request.POST.get("promote_step", "")
    copy_streams = request.POST.get("copy_streams") == "on"
    if copy_streams and not _may_reveal_streams(request):
        raise PermissionDenied
    common = {"spaces": spaces, "can_copy_streams": _may_reveal_streams(request)}
    if step not in ("preview", "confirm"):
        return action_page(
            modeladmin, request, queryset, "admin/rooms/promote/choose.html",
            title=f"Promote {opts.verbose_name_plural} to another Space", **common,
        )
    value = request.POST.get("space", "")
    space = spaces.filter(pk=int(value)).first() if value.isdigit() else None
    if space is None:
        raise Http404("No such Space.")
    purpose = f"promote-many:{opts.label_lower}"
    if step == "confirm":
        if not once.spend(request, purpose, ALREADY_QUEUED):
            return HttpResponseRedirect(reverse("admin:rooms_actionrun_changelist"))
        pks = list(queryset.order_by("pk").values_list("pk", flat=True))
        run = promote.promote_many(
            model=modeladmin.model, pks=pks, space=space, actor=request.user,
            copy_streams=copy_streams,
        )
        return _started(modeladmin, request, run, space)
    preview = promote.promote_preview(rows=queryset, space=space)
    counts = {
        key: sum(1 for p in preview if p.outcome == key)
        for key in (promote.CREATED, promote.UPDATED, promote.SAME, promote.FAILED,
                    promote.SKIPPED_SAME_SPACE)
    }
    return action_page(
        modeladmin, request, queryset, "admin/rooms/promote/preview.html",
        title=f"Promote {opts.verbose_name_plural} to {space.name}: preview",
        space=space, preview=preview[:PREVIEW_ROWS], counts=counts, copy_streams=copy_streams,
        nonce=once.issue(request, purpose), **common,
    )


def _started(modeladmin: Any, request: HttpRequest, run: ActionRun, space: Space) -> HttpResponse:
    """Say whether the run was queued and show its progress page."""
    opts = modeladmin.model._meta
    noun = opts.verbose_name if run.total == 1 else opts.verbose_name_plural
    if run.queued is False:
        modeladmin.message_user(
            request,
            f"Nothing was queued: the task queue (Redis) cannot be reached, so the promotion "
            f"of {run.total} {noun} did not start and nothing changed. Try again once it is "
            "back.",
            messages.ERROR,
        )
        return HttpResponseRedirect(request.get_full_path())
    modeladmin.message_user(
        request,
        format_html(
            "Queued the promotion of {} {} to {}: the worker creates or updates each there. "
            "This page shows its progress.",
            run.total, noun, space.name,
        ),
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:rooms_actionrun_change", args=[run.pk]))
