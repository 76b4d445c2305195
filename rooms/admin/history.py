"""Admin pages: a conference's or room's History (readable diffs) and "Restore this version"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import PAGE_VAR
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import DateTimeField, Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import capfirst

from rooms.admin.audit_display import (
    EntryView,
    RelatedLabels,
    action_label,
    changelog_url,
    changes_html,
    display_value,
    entry_changes,
    event_of,
    related_labels,
    who,
)
from rooms.audit import json_value
from rooms.models import AuditEntry
from rooms.services.restore import is_restorable, restore_entry, restore_plan

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object


class AuditHistoryMixin(_ModelAdmin):
    """Give a Conference or Room ModelAdmin a History page built from the audit trail.

    Put it before ModelAdmin in the bases: `class ConferenceAdmin(AuditHistoryMixin,
    admin.ModelAdmin)`. It replaces `history_view` and adds the "Restore this version"
    confirmation page at `<id>/history/<entry id>/restore/`.
    """

    audit_history_template = "admin/rooms/audit_history.html"
    audit_restore_template = "admin/rooms/audit_restore_confirm.html"
    audit_history_per_page = 50

    def get_urls(self) -> list:
        """Add the restore page in front of the ModelAdmin's own URLs."""
        info = self.opts.app_label, self.opts.model_name
        restore = path(
            "<path:object_id>/history/<int:entry_id>/restore/",
            self.admin_site.admin_view(self.audit_restore_view),
            name="{}_{}_audit_restore".format(*info),
        )
        return [restore, *super().get_urls()]

    def audit_entries(self, obj: Model) -> QuerySet[AuditEntry]:
        """Select the object's entries and those of its tokens: one query on indexed columns."""
        ct = ContentType.objects.get_for_model(type(obj))
        query = Q(content_type=ct, object_pk=str(obj.pk)) | Q(
            related_object_type=ct, related_object_id=obj.pk
        )
        return (
            AuditEntry.objects.filter(query)
            .select_related("actor", "content_type")
            .order_by("-timestamp", "-pk")
        )

    def _entry_view(
        self,
        request: HttpRequest,
        entry: AuditEntry,
        obj: Model,
        labels: RelatedLabels | None = None,
    ) -> EntryView:
        view = EntryView(entry=entry, who=who(entry), event=event_of(entry))
        view.action = action_label(entry)
        view.changes = entry_changes(entry, labels=labels)
        view.changes_html = changes_html(view.changes, old_class="old", new_class="new")
        details = (entry.additional_data or {}).get("details") if view.event else None
        view.details = display_value(details) if details else ""
        if entry.cid:
            view.cid_url = changelog_url(cid=entry.cid)
        same_object = entry.content_type.model_class() is type(obj)
        if not same_object:
            view.about = f"{capfirst(entry.content_type.name)}: {entry.object_repr}"
        if same_object and is_restorable(entry) and self.has_change_permission(request, obj):
            view.restore_url = reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
                "_audit_restore",
                args=[quote(obj.pk), entry.pk],
            )
        return view

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """Show the object's audit trail, newest first, with field-by-field diffs."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            # The redirect ModelAdmin's own history page makes (a private, unstubbed helper).
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        paginator = self.get_paginator(
            request, self.audit_entries(obj), self.audit_history_per_page
        )
        page = paginator.get_page(request.GET.get(PAGE_VAR, 1))
        entries = list(page)
        labels = related_labels(entries)
        ct = ContentType.objects.get_for_model(type(obj))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change history: {obj}",
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "entries": [self._entry_view(request, e, obj, labels) for e in entries],
            "page_obj": page,
            "page_range": paginator.get_elided_page_range(page.number),
            "page_var": PAGE_VAR,
            "changelog_url": changelog_url(about=f"{ct.pk}.{obj.pk}"),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.audit_history_template, context)

    def audit_restore_view(
        self, request: HttpRequest, object_id: str, entry_id: int
    ) -> HttpResponse:
        """Confirm, then put the object back to its values before the chosen change."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        ct = ContentType.objects.get_for_model(type(obj))
        entry = AuditEntry.objects.filter(
            pk=entry_id, content_type=ct, object_pk=str(obj.pk)
        ).first()
        if entry is None or not is_restorable(entry):
            raise Http404("No restorable change with this id.")
        history_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_history",
            args=[quote(obj.pk)],
        )
        try:
            steps = restore_plan(entry=entry, obj=obj)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(history_url)
        if not steps:
            self.message_user(
                request, "Nothing to restore: it already has those values.", messages.INFO
            )
            return HttpResponseRedirect(history_url)
        if request.method == "POST":
            return self._do_restore(request, entry, obj, history_url)
        rows = []
        for step in steps:
            model_field = obj._meta.get_field(step.field)
            is_dt = isinstance(model_field, DateTimeField)
            current = json_value(model_field, step.current)
            restored = json_value(model_field, step.restored)
            rows.append(
                (
                    str(capfirst(step.label)),
                    display_value(current, is_datetime=is_dt),
                    display_value(restored, is_datetime=is_dt),
                )
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Restore {obj}?",
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "entry": entry,
            "entry_who": who(entry),
            "rows": rows,
            "history_url": history_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.audit_restore_template, context)

    def _do_restore(
        self, request: HttpRequest, entry: AuditEntry, obj: Model, history_url: str
    ) -> HttpResponse:
        try:
            restored = restore_entry(entry=entry, actor=request.user, profile="interactive")
        except ValidationError as exc:
            text = "; ".join(exc.messages)
            self.message_user(
                request, f"SignalWire refused the restore; nothing changed. {text}",
                messages.ERROR,
            )
            return HttpResponseRedirect(history_url)
        if getattr(restored, "is_unpushed", False):
            self.message_user(
                request,
                f"“{restored}” was restored locally; SignalWire cannot be reached now, so "
                "the change is pending and will be pushed automatically.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request, f"“{restored}” was restored in SignalWire.", messages.SUCCESS
            )
        return HttpResponseRedirect(history_url)
