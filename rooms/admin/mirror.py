"""What the conference and room admins share: remote-first forms, badges, actions, deletes.

The change form's validation ends with the service call, so SignalWire's 422 messages land
on the form's fields and the page re-renders with the staff member's input intact and
nothing saved; save_model then only reports what the service did. The add, change and
delete views run without Django's surrounding transaction: the services open their own
short ones and never keep one open while SignalWire is asked. Web requests use the
client's interactive profile (a few seconds at most); actions on many rows only record an
ActionRun and leave the work to the worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField, JSONField, QuerySet
from django.forms.formsets import all_valid
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from rooms.admin import (
    once,
    runs,  # noqa: F401 - registers the action runs' pages linked below
)
from rooms.admin.bulk_edit import edit_selected
from rooms.admin.context import current_mirror_view, mirror_view_state
from rooms.admin.history import AuditHistoryMixin
from rooms.admin.scoping import (
    SpaceScopedMixin,
    one_space_action,
    sees_several_spaces,
    visible_spaces,
)
from rooms.admin.validation import check_mirror_form, mark_odd_values
from rooms.audit import audit_context
from rooms.models import ActionRun, AuditEntry, Space, SyncState
from rooms.services import bulk
from rooms.services.common import client_for
from rooms.signalwire import schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import SignalWireError
from rooms.strictjson import StrictJSONField

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

ENUM_FIELDS = ("quality", "layout", "size")
PENDING_WARNING = (
    "SignalWire could not be reached in time, so “{obj}” is saved here and marked pending. "
    "It will be pushed in the background as soon as SignalWire answers."
)
PENDING_NOT_QUEUED = (
    "SignalWire could not be reached in time, so “{obj}” is saved here and marked pending. "
    "Its background push could not be queued either (the task queue is unreachable); "
    "the periodic push sends it once the queue is back."
)
RUN_NOT_QUEUED = (
    "Nothing was queued: the task queue (Redis) cannot be reached, so the {what} of "
    "{count} {noun} did not start and nothing changed. Try again once it is back."
)
PUSH_NOT_QUEUED = (
    "Nothing was queued: the task queue (Redis) cannot be reached. Marked {count} {noun} "
    "pending push; the periodic push sends them once the queue is back."
)


def interactive_client(space: Space | None = None) -> SignalWireClient:
    """The client a web request uses for a Space: it waits on SignalWire a few seconds at most."""
    return client_for(space, "interactive")


class ColourInput(forms.TextInput):
    """The browser's colour picker for #RRGGBB theme colours."""

    input_type = "color"


class NotSetBooleanSelect(forms.NullBooleanSelect):
    """Yes / No / not set: an unset SignalWire option is not "unknown", it takes the default."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.choices = [
            ("unknown", "Not set (SignalWire default)"),
            ("true", "Yes"),
            ("false", "No"),
        ]


class ColourField(forms.CharField):
    """A #RRGGBB colour; the picker's lower-case spelling of the same colour is no change."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Compare colours without regard to letter case."""
        return (initial or "").lower() != (data or "").lower()


class MirrorForm(forms.ModelForm):
    """A change form whose validation ends with the remote-first service call."""

    # Set per request by MirrorAdmin.get_form.
    request: HttpRequest | None = None
    model_admin: MirrorAdmin | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unknown: dict[str, str] = {}
        for name in ENUM_FIELDS:
            field = self.fields.get(name)
            value = getattr(self.instance, name, None)
            if field is None or not value:
                continue
            choices = list(getattr(field, "choices", ()))
            known = {str(key) for key, _ in choices}
            if value not in known:
                # A value SignalWire added after this release: keep it selectable.
                field.choices = [  # type: ignore[attr-defined]
                    *choices,
                    (value, f"{value} (unknown to the portal)"),
                ]
                self._unknown[name] = value
        mark_odd_values(self)

    def _get_validation_exclusions(self) -> set[str]:
        """Skip the model's choice check for an unknown value that is kept as it was."""
        excluded = set(super()._get_validation_exclusions())  # type: ignore[misc]
        for name, value in self._unknown.items():
            if self.cleaned_data.get(name) == value:
                excluded.add(name)
        return excluded

    def clean(self) -> dict[str, Any]:
        """Keep a colour's stored spelling when only its letter case differs."""
        cleaned = super().clean() or {}
        for name in schema.COLOUR_FIELDS:
            stored = getattr(self.instance, name, None) if self.instance.pk else None
            value = cleaned.get(name)
            if stored and value and value.lower() == stored.lower():
                cleaned[name] = stored
        check_mirror_form(self, cleaned)
        self._check_name_free_in_space(cleaned)
        return cleaned

    def _check_name_free_in_space(self, cleaned: dict[str, Any]) -> None:
        """Say on the name field when the row's Space already has a row of that name."""
        name = cleaned.get("name")
        if self.instance.pk:
            space = self.instance.space
        else:
            space = cleaned.get("space") or getattr(self, "only_space", None)
        if space is None or not name:
            return
        model = self._meta.model
        taken = model._default_manager.filter(space=space, name=name).exclude(pk=self.instance.pk)
        if taken.exists():
            self.add_error(
                "name",
                f"The Space “{space}” already has a {model._meta.verbose_name} named "
                f"“{name}”. Names are unique within a Space: pick another name or Space.",
            )

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.errors or self.request is None or self.model_admin is None:
            return
        if not all_valid(current_mirror_view().formsets):
            return  # the page re-renders for the inline errors; SignalWire is not touched
        model_fields = {f.name for f in self._meta.model._meta.fields}
        data = {k: v for k, v in self.cleaned_data.items() if k in model_fields}
        try:
            self.instance = self.model_admin.save_remote(self.request, self.instance, data)
        except DjangoValidationError as exc:
            self._add_remote_errors(exc)
        except SignalWireError as exc:
            self.add_error(None, f"SignalWire refused the change: {exc}")

    def _add_remote_errors(self, exc: DjangoValidationError) -> None:
        """Put each message on its field, or above the form when the field is not on it."""
        for field, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else ():
            if field in self.fields or field == NON_FIELD_ERRORS:
                self.add_error(field if field != NON_FIELD_ERRORS else None, errors)
            else:
                self.add_error(None, [f"{field}: {m}" for e in errors for m in e.messages])
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)


@admin.display(description="state", ordering="sync_state")
def sync_badge(obj: Any) -> str:
    """Show the sync state as a coloured badge."""
    return format_html(
        '<span class="sw-badge sw-badge--{}" title="{}">{}</span>',
        obj.sync_state,
        obj.last_error or "",
        obj.get_sync_state_display(),
    )


class DeletedRemotelyFilter(admin.SimpleListFilter):
    """Filter rows SignalWire no longer has."""

    title = "deleted remotely"
    parameter_name = "deleted_remotely"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer yes and no."""
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the rows that match the choice."""
        if self.value() == "yes":
            return queryset.filter(sync_state=SyncState.DELETED_REMOTELY)
        if self.value() == "no":
            return queryset.exclude(sync_state=SyncState.DELETED_REMOTELY)
        return queryset


ACTION_CONFIRMED_ALREADY = (
    "This action was confirmed already (or the page was open too long); it did not run "
    "again. Its run is under Action runs."
)


def confirm(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    title: str,
    explanation: str,
    run: Callable[[], object],
) -> HttpResponse | None:
    """Ask before an action that touches SignalWire; run it once confirmed (once only)."""
    purpose = f"action:{modeladmin.model._meta.label}:{request.POST.get('action', '')}"
    if request.POST.get("confirm") == "yes":
        if once.spend(request, purpose, ACTION_CONFIRMED_ALREADY):
            run()
        return None
    return TemplateResponse(
        request,
        "admin/rooms/confirm_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "explanation": explanation,
            "opts": modeladmin.model._meta,
            "objects": queryset[:100],
            "count": queryset.count(),
            "action": request.POST.get("action", ""),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "nonce": once.issue(request, purpose),
        },
    )


class MirrorAdmin(SpaceScopedMixin, AuditHistoryMixin, admin.ModelAdmin):
    """Admin of a mirrored SignalWire object; every write goes through rooms.services."""

    form = MirrorForm
    # meta is typed by staff: NaN, 1e999 or deep nesting are refused on the field.
    formfield_overrides = {JSONField: {"form_class": StrictJSONField}}
    search_fields = ("name", "display_name", "=remote_id")
    show_full_result_count = False
    list_per_page = 100
    save_on_top = True
    actions: tuple[Any, ...] = ("push_selected", "refresh_from_signalwire", edit_selected)
    mirror_readonly: tuple[Any, ...] = (
        "remote_id",
        sync_badge,
        "last_error",
        "last_synced_at",
        "remote_created_at",
        "remote_updated_at",
        "local_version",
        "push_attempts",
        "raw_payload",
    )
    # The change form shows the raw payload in its own collapsed fieldset.
    mirror_fieldsets = (
        ("SignalWire", {"fields": tuple(f for f in mirror_readonly if f != "raw_payload")}),
        ("Last payload from SignalWire", {"classes": ("collapse",), "fields": ("raw_payload",)}),
    )
    # Fields the API cannot change after creation (name) or at all.
    fixed_after_create: tuple[str, ...] = ("space", "name")
    # Shown first on the add form (read-only after): the Space the new row is made in.
    space_fieldset = ("Space", {"fields": ("space",)})
    never_editable: tuple[str, ...] = ()

    class Media:
        css = {"all": ["rooms/admin.css"]}
        js = ["rooms/admin.js"]

    # --- the remote-first save -----------------------------------------------------

    def create_remote(self, **kwargs: Any) -> Any:  # pragma: no cover - subclasses
        """Call the service that creates this kind of object."""
        raise NotImplementedError

    def update_remote(self, obj: Any, **kwargs: Any) -> Any:  # pragma: no cover
        """Call the service that updates this kind of object."""
        raise NotImplementedError

    def delete_remote(self, obj: Any, **kwargs: Any) -> bool:  # pragma: no cover
        """Call the service that deletes this kind of object."""
        raise NotImplementedError

    def save_remote(self, request: HttpRequest, obj: Any, data: dict) -> Any:
        """Create or update through the service; its errors become form errors."""
        if obj.pk is None and not data.get("space"):
            only = self.only_space(request)
            if only is not None:
                data["space"] = only
        client = interactive_client(data.get("space") or obj.space)
        with audit_context(source=AuditEntry.Source.ADMIN, actor=request.user):
            if obj.pk is None:
                return self.create_remote(data=data, actor=request.user, client=client)
            return self.update_remote(obj, data=data, actor=request.user, client=client)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """Run the add and change views without Django's transaction around the POST.

        The form's validation calls SignalWire; the services write in their own short
        transactions, so no lock is held while SignalWire is slow.
        """
        with mirror_view_state():
            return self._changeform_view(  # type: ignore[attr-defined]
                request, object_id, form_url, extra_context
            )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """Run the delete view without Django's transaction around it (see changeform_view)."""
        self._found_or_404(request, object_id)
        with mirror_view_state():
            return self._delete_view(  # type: ignore[attr-defined]
                request, object_id, extra_context
            )

    def message_user(
        self,
        request: HttpRequest,
        message: StrOrPromise,
        level: int | str = messages.INFO,
        extra_tags: str = "",
        fail_silently: bool = False,
    ) -> None:
        """Drop Django's "changed successfully" when the change only waits to be pushed."""
        if level == messages.SUCCESS and current_mirror_view().pending:
            return
        super().message_user(request, message, level, extra_tags, fail_silently)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """Bind the form class to this request so its validation can call the service."""
        kwargs.setdefault("widgets", {}).update({f: ColourInput() for f in schema.COLOUR_FIELDS})
        kwargs.setdefault("field_classes", {}).update(
            {f: ColourField for f in schema.COLOUR_FIELDS}
        )
        kwargs["widgets"].update(
            {
                f.name: NotSetBooleanSelect()
                for f in self.model._meta.fields
                if isinstance(f, BooleanField) and f.null and f.editable
            }
        )
        form = super().get_form(request, obj, change, **kwargs)
        return type(
            form.__name__, (form,),
            {"request": request, "model_admin": self, "only_space": self.only_space(request)},
        )

    def only_space(self, request: HttpRequest) -> Space | None:
        """The one Space the user works in (new rows go there unasked), else None."""
        mine = visible_spaces(request)
        return mine[0] if len(mine) == 1 else None

    def space_fieldsets(self, request: HttpRequest) -> list[Any]:
        """The Space fieldset, shown only to whoever sees more than one Space."""
        return [self.space_fieldset] if sees_several_spaces(request) else []

    def _create_formsets(self, request: HttpRequest, obj: Any, change: bool) -> Any:
        formsets, inline_instances = super()._create_formsets(  # type: ignore[misc]
            request, obj, change
        )
        current_mirror_view().formsets = formsets
        return formsets, inline_instances

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """The service already saved; say so plainly when the change only waits."""
        if obj.sync_state == SyncState.PENDING_PUSH:
            text = PENDING_NOT_QUEUED if getattr(obj, "push_queued", None) is False else (
                PENDING_WARNING
            )
            self.message_user(request, text.format(obj=obj), messages.WARNING)
            current_mirror_view().pending = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """Remote-managed fields are read-only, and the name once the object exists."""
        fixed = self.fixed_after_create if obj is not None else ()
        return [*fixed, *self.never_editable, *self.mirror_readonly]

    @admin.display(description="last payload from SignalWire")
    def raw_payload(self, obj: Any) -> str:
        """Show the raw payload pretty-printed (unknown fields included)."""
        return format_html("<pre class=\"sw-json\">{}</pre>", json.dumps(obj.raw, indent=2))

    # --- deletes: SignalWire first, one outcome per row ----------------------------

    def _delete_one(self, request: HttpRequest, obj: Any) -> str:
        """Delete one row remotely first; return "deleted", "pending" or an error text."""
        try:
            with audit_context(source=AuditEntry.Source.ADMIN, actor=request.user):
                gone = self.delete_remote(
                    obj, actor=request.user, client=interactive_client(obj.space)
                )
        except SignalWireError as exc:
            return f"SignalWire refused: {exc}"
        return "deleted" if gone else "pending"

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        """Delete in SignalWire first; the outcome is reported by response_delete."""
        current_mirror_view().delete_outcome = self._delete_one(request, obj)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> Any:
        """Report a delete that only waits, or failed, instead of Django's success text."""
        outcome = current_mirror_view().delete_outcome
        if outcome == "deleted":
            return super().response_delete(request, obj_display, obj_id)
        self._report(request, obj_display, outcome)
        opts = self.model._meta
        if outcome == "pending":
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            )
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj_id])
        )

    def _report(self, request: HttpRequest, name: str, outcome: str) -> None:
        if outcome == "deleted":
            self.message_user(request, f"“{name}” was deleted in SignalWire and here.")
        elif outcome == "pending":
            self.message_user(
                request,
                f"SignalWire could not be reached: “{name}” is marked pending delete and "
                "will be deleted in the background.",
                messages.WARNING,
            )
        else:
            self.message_user(request, f"“{name}” was not deleted. {outcome}", messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Queue the deletion of the rows (SignalWire first, row by row, in the worker)."""
        self.start_run(request, queryset, ActionRun.Action.DELETE, "deletion")

    def get_actions(self, request: HttpRequest) -> dict:
        """Replace Django's bulk delete with one that goes to SignalWire row by row."""
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            actions["delete_selected"] = (
                one_space_action(delete_selected),
                "delete_selected",
                getattr(django_delete_selected, "short_description", "Delete selected"),
            )
        return actions

    # --- actions -------------------------------------------------------------------

    def start_run(
        self, request: HttpRequest, queryset: QuerySet, action: str, what: str
    ) -> ActionRun:
        """Record an action on the rows, queue it for the worker and say what happened."""
        run = bulk.action_run_start(action=action, rows=queryset, actor=request.user)
        opts = self.model._meta
        noun = opts.verbose_name if run.total == 1 else opts.verbose_name_plural
        if run.queued is False:
            text = PUSH_NOT_QUEUED if action == ActionRun.Action.PUSH else RUN_NOT_QUEUED
            self.message_user(
                request, text.format(what=what, count=run.total, noun=noun), messages.ERROR
            )
            return run
        url = reverse("admin:rooms_actionrun_change", args=[run.pk])
        self.message_user(
            request,
            format_html(
                "Queued the {} of {} {}: the worker carries it out in the background. "
                '<a href="{}">Follow its progress</a>.',
                what,
                run.total,
                noun,
                url,
            ),
            messages.SUCCESS,
        )
        return run

    @admin.action(description="Push selected to SignalWire", permissions=["change"])
    def push_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Queue a fresh push of the selected rows."""
        return confirm(
            self,
            request,
            queryset,
            title="Push to SignalWire",
            explanation="Send the portal's values of these rows to SignalWire, replacing "
            "what SignalWire holds.",
            run=lambda: self.start_run(request, queryset, ActionRun.Action.PUSH, "push"),
        )

    @admin.action(description="Refresh selected from SignalWire", permissions=["change"])
    def refresh_from_signalwire(
        self, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse | None:
        """Queue a reload of the selected rows (rows with unpushed edits are kept)."""
        return confirm(
            self,
            request,
            queryset,
            title="Refresh from SignalWire",
            explanation="Replace the portal's copy of these rows with what SignalWire holds. "
            "Rows with changes not yet pushed are left alone.",
            run=lambda: self.start_run(
                request, queryset, ActionRun.Action.REFRESH, "refresh from SignalWire"
            ),
        )


def delete_selected(
    modeladmin: MirrorAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    """Django's confirmation page, then a SignalWire-first delete run by the worker."""
    if request.POST.get("post") and not modeladmin.has_delete_permission(request):
        return None
    if request.POST.get("post"):
        modeladmin.delete_queryset(request, queryset)
        return None
    return django_delete_selected(modeladmin, request, queryset)
