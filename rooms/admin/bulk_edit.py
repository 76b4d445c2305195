"""The "Edit selected…" action: tick the fields to change, preview, confirm, then the worker.

The form is the single-row change form (rooms.admin.mirror.MirrorForm with its widgets and
the checks of rooms.admin.validation) limited to the ticked fields and bound to no row,
so it validates the values once, locally, and never calls SignalWire. The preview counts
what would change and shows a few rows before and after; confirming records the run
(rooms.services.bulk.bulk_edit_start) and shows its progress page. The page never waits on
SignalWire: the worker changes the rows in batches.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from rooms.admin import once
from rooms.services import bulk
from rooms.signalwire import schema

TICK_PREFIX = "change_"
NO_FIELD_TICKED = "Tick “change this” beside at least one field."
ALREADY_CONFIRMED = (
    "This edit was confirmed already (a second click or a reload of the page), so "
    "nothing more was queued. Its run is listed below."
)


def bulk_fields(model_admin: Any) -> list[str]:
    """Name the fields of the single-row form that a bulk edit may change, in its order."""
    names: list[str] = []
    for _, options in model_admin.fieldsets_basics:
        for entry in options["fields"]:
            names.extend(entry if isinstance(entry, tuple | list) else [entry])
    fixed = {*model_admin.fixed_after_create, *model_admin.never_editable}
    allowed = set(bulk.bulk_editable_fields(model_admin.model))
    return [n for n in names if n not in fixed and n in allowed]


def _value_form_class(model_admin: Any, request: HttpRequest, fields: list[str]) -> Any:
    """The single-row form class for these fields, unbound from the remote-first save."""
    form_class = model_admin.get_form(request, None, fields=fields)
    # MirrorForm calls the service when it knows the request; a bulk edit only validates.
    return type(form_class.__name__, (form_class,), {"request": None, "model_admin": None})


class BulkEditor:
    """The tick boxes and values of a bulk edit, validated as the single-row form would."""

    def __init__(self, model_admin: Any, request: HttpRequest, data: Any = None) -> None:
        self.model_admin = model_admin
        self.fields = bulk_fields(model_admin)
        self.data = data
        self.ticked = [f for f in self.fields if data is not None and data.get(TICK_PREFIX + f)]
        self.form = _value_form_class(model_admin, request, self.fields)(
            data=data, instance=model_admin.model()
        )
        for field in self.form.fields.values():
            # Fields left unticked are not changed, so they need no value.
            field.required = False
        self._validated = _value_form_class(model_admin, request, self.ticked)(
            data=data, instance=model_admin.model()
        ) if self.ticked else None
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self.changes: dict[str, Any] = {}

    def is_valid(self) -> bool:
        """Validate the ticked fields' values with the single-row form's rules."""
        if self._validated is None:
            self.non_field_errors = [NO_FIELD_TICKED]
            return False
        valid = self._validated.is_valid()
        for name, errors in self._validated.errors.items():
            if name in self.ticked:
                self.errors[name] = list(errors)
            else:
                self.non_field_errors.extend(errors)
        changes = {f: self._validated.cleaned_data.get(f) for f in self.ticked}
        for name, message in schema.update_clear_errors(changes).items():
            if name not in self.errors:
                self.errors[name] = [message]
        if not valid or self.errors or self.non_field_errors:
            return False
        try:
            self.changes = bulk.bulk_edit_clean(model=self.model_admin.model, changes=changes)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                if name in self.ticked:
                    self.errors.setdefault(name, []).extend(errors)
                else:
                    self.non_field_errors.extend(errors)
            return False
        return True

    def rows(self) -> list[dict[str, Any]]:
        """One entry per editable field: its tick box, widget and errors, for the template."""
        return [
            {
                "name": name,
                "tick_name": TICK_PREFIX + name,
                "ticked": name in self.ticked,
                "field": self.form[name],
                "errors": self.errors.get(name, []),
            }
            for name in self.fields
        ]

    def hidden(self) -> list[Any]:
        """The ticked fields as hidden inputs, so the confirmation posts the same values."""
        return [self.form[name] for name in self.ticked]


def action_page(
    model_admin: Any, request: HttpRequest, queryset: QuerySet, template: str, **context: Any
) -> TemplateResponse:
    """A step of an admin action on the selected rows, carrying the selection to the next."""
    opts = model_admin.model._meta
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": opts,
            "media": model_admin.media,
            "count": queryset.count(),
            "action": request.POST.get("action", ""),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "form_url": request.get_full_path(),
            **context,
        },
    )


@admin.action(description="Edit selected…", permissions=["change"])
def edit_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse:
    """Change the ticked fields of every selected row: a form, a preview, then the worker."""
    step = request.POST.get("bulk_step", "")
    editor = BulkEditor(modeladmin, request, data=request.POST if step else None)
    opts = modeladmin.model._meta
    if step in ("preview", "confirm") and editor.is_valid():
        purpose = f"bulk-edit:{opts.label_lower}"
        if step == "confirm":
            if not once.spend(request, purpose, ALREADY_CONFIRMED):
                return HttpResponseRedirect(reverse("admin:rooms_actionrun_changelist"))
            pks = list(queryset.order_by("pk").values_list("pk", flat=True))
            run = bulk.bulk_edit_start(
                model=modeladmin.model, pks=pks, changes=editor.changes, actor=request.user
            )
            return _started(modeladmin, request, run)
        preview = bulk.bulk_edit_preview(rows=queryset, changes=editor.changes)
        return action_page(
            modeladmin,
            request,
            queryset,
            "admin/rooms/bulk_edit/preview.html",
            title=f"Edit {opts.verbose_name_plural}: preview",
            editor=editor,
            preview=preview,
            nonce=once.issue(request, purpose),
            labels=[str(opts.get_field(f).verbose_name) for f in editor.ticked],
        )
    return action_page(
        modeladmin,
        request,
        queryset,
        "admin/rooms/bulk_edit/form.html",
        title=f"Edit selected {opts.verbose_name_plural}",
        editor=editor,
    )


def _started(modeladmin: Any, request: HttpRequest, run: Any) -> HttpResponse:
    """Say what happened to the run's queueing and show its progress page."""
    opts = modeladmin.model._meta
    noun = opts.verbose_name if run.total == 1 else opts.verbose_name_plural
    url = reverse("admin:rooms_actionrun_change", args=[run.pk])
    if run.queued is False:
        modeladmin.message_user(
            request,
            f"Nothing was queued: the task queue (Redis) cannot be reached, so the edit of "
            f"{run.total} {noun} did not start and nothing changed. Try again once it is back.",
            messages.ERROR,
        )
        return HttpResponseRedirect(request.get_full_path())
    modeladmin.message_user(
        request,
        format_html(
            "Queued the edit of {} {}: the worker changes them in SignalWire and here. "
            "This page shows its progress.",
            run.total,
            noun,
        ),
        messages.SUCCESS,
    )
    return HttpResponseRedirect(url)

