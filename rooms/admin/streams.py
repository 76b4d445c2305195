"""Admin pages: streams of conferences and rooms; the URL is a secret, masked everywhere.

Pages show a stream's URL as scheme and host only. Its field on the change form is never
filled in (left empty, the URL stays as it is). Revealing it needs the reveal_stream_url
permission: a one-time form (its nonce in the session, never the URL) is answered with
the URL on a no-store page, and the reveal is audited. Every write goes through
rooms.services.streams, remote first, with no transaction open while SignalWire is asked.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from rooms import outbox
from rooms.admin import once
from rooms.admin.mirror import (
    DeletedRemotelyFilter,
    MirrorAdmin,
    interactive_client,
    sync_badge,
)
from rooms.audit import audit_context
from rooms.models import AuditEntry, Conference, Room, Stream, SyncState
from rooms.registry import STREAM
from rooms.services import streams
from rooms.signalwire import schema
from rooms.signalwire.errors import SignalWireError
from rooms.stream_urls import mask_stream_urls_in, validate_stream_url

REVEAL = "rooms.reveal_stream_url"
OWNER_SYNC_TASK = "rooms.tasks.sync_owner_streams"
EVERY_SESSION_WARNING = (
    "A stream starts in every session of its conference or room: whenever anyone joins, "
    "the meeting is broadcast to this destination, to everyone who can watch it there."
)
# Help text is rendered as HTML: the masked URL (its host may come from a Space listing)
# is escaped by format_html.
KEEP_URL_HELP = (
    "The current URL is a secret and is not shown here ({}). Leave this empty to "
    "keep it, or enter a new rtmp:// or rtmps:// URL to replace it."
)
URL_NOT_CHANGEABLE = (
    "You may not change this stream's {kind}, so you cannot change where the stream "
    "sends: it starts in every session of its {kind}."
)
OWNER_NOT_CHANGEABLE = (
    "You may not change this {kind}, so you cannot add a stream to it: a stream starts "
    "in every session of its {kind}."
)


def queue_owner_streams_sync(owner: Conference | Room) -> None:
    """List an owner's streams again once it is saved (its quality sets their size)."""
    if owner.pk is None or not owner.remote_id or owner.sync_state != SyncState.SYNCED:
        return
    kind = "conference" if isinstance(owner, Conference) else "room"
    outbox.send(OWNER_SYNC_TASK, kind, owner.pk)


class StreamForm(forms.ModelForm):
    """Add a stream to a conference or room, or replace its URL; SignalWire is asked last."""

    url = forms.CharField(
        label="URL",
        max_length=schema.STREAM_URL_MAX,
        validators=[validate_stream_url],
        # Never rendered with a value: the page does not carry the URL.
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false",
                                       "placeholder": "rtmps://live.example.com/app/STREAM-KEY"}
        ),
        help_text="The rtmp:// or rtmps:// address of the destination, with its stream key.",
    )

    # Set per request by StreamAdmin.get_form.
    request: HttpRequest | None = None
    model_admin: StreamAdmin | None = None

    class Meta:
        model = Stream
        fields = ("conference", "room", "url")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["url"].required = False
            self.fields["url"].help_text = format_html(KEEP_URL_HELP, self.instance.masked_url)
        for name in ("conference", "room"):
            if name in self.fields:
                self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        """A new stream names exactly one owner; an unchanged URL field keeps the URL."""
        cleaned = super().clean() or {}
        if not self.instance.pk and "conference" in self.fields:
            if bool(cleaned.get("conference")) == bool(cleaned.get("room")):
                raise DjangoValidationError(
                    "Choose the conference or the room the stream belongs to (one of them)."
                )
            for kind in ("conference", "room"):
                owner = cleaned.get(kind)
                if owner is not None and not self._may_change(owner):
                    self.add_error(kind, OWNER_NOT_CHANGEABLE.format(kind=kind))
        elif self.instance.pk and cleaned.get("url") and cleaned["url"] != self.instance.url:
            # A new URL sends every session of the owner somewhere else: the same right.
            owner = self.instance.owner
            if owner is not None and not self._may_change(owner):
                kind = owner._meta.model_name
                self.add_error("url", URL_NOT_CHANGEABLE.format(kind=kind))
        return cleaned

    def _may_change(self, owner: Conference | Room) -> bool:
        """Tell whether this staff member may change the stream's conference or room."""
        if self.request is None or self.model_admin is None:
            return False
        owner_admin = self.model_admin.admin_site.get_model_admin(type(owner))
        return bool(owner_admin.has_change_permission(self.request, owner))

    def _post_clean(self) -> None:
        # The model's own checks run in the service, on the values it sends.
        if self.errors or self.request is None or self.model_admin is None:
            return
        try:
            self.instance = self.model_admin.save_remote(
                self.request, self.instance, self.cleaned_data
            )
        except DjangoValidationError as exc:
            for field, errors in getattr(exc, "error_dict", {NON_FIELD_ERRORS: exc}).items():
                errors = errors if isinstance(errors, list) else [errors]
                self.add_error(field if field in self.fields else None, errors)
        except SignalWireError as exc:
            urls = (self.instance.url, self.cleaned_data.get("url") or "")
            STREAM.hide_secrets(self.instance, exc, *urls)
            self.add_error(None, f"SignalWire refused the change: {exc}")


class OwnerKindFilter(admin.SimpleListFilter):
    """Filter streams by the kind of their owner."""

    title = "owner kind"
    parameter_name = "owner_kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer conferences and rooms."""
        return [(str(value), str(label)) for value, label in Stream.OwnerKind.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the streams of the chosen kind of owner."""
        if self.value() == Stream.OwnerKind.CONFERENCE:
            return queryset.filter(conference__isnull=False)
        if self.value() == Stream.OwnerKind.ROOM:
            return queryset.filter(room__isnull=False)
        return queryset


def _owner_link(obj: Stream) -> str:
    owner = obj.owner
    if owner is None:
        return "—"
    kind = obj.owner_kind
    url = reverse(f"admin:rooms_{kind}_change", args=[owner.pk])
    return format_html('{} <a href="{}">{}</a>', str(kind).capitalize(), url, owner)


@admin.display(description="URL")
def masked_url(obj: Stream) -> str:
    """The URL as scheme and host only."""
    return format_html('<code class="sw-stream-url">{}</code>', obj.masked_url)


def shown_error(obj: Stream) -> str:
    """The stream's last error with its key masked (rows may predate masking by key)."""
    return mask_stream_urls_in(obj.last_error or "", obj.url)


@admin.display(description="state", ordering="sync_state")
def stream_badge(obj: Stream) -> str:
    """The sync state badge; its tooltip, the last error, never shows the key."""
    return format_html(
        '<span class="sw-badge sw-badge--{}" title="{}">{}</span>',
        obj.sync_state,
        shown_error(obj),
        obj.get_sync_state_display(),
    )


@admin.display(description="video")
def video(obj: Stream) -> str:
    """Width × height at fps, as SignalWire reported them."""
    if not obj.width or not obj.height:
        return "—"
    return f"{obj.width}×{obj.height}" + (f" at {obj.fps} fps" if obj.fps else "")


@admin.register(Stream)
class StreamAdmin(MirrorAdmin):
    """Streams: remote-first adds, URL changes and deletes; the URL masked everywhere."""

    form = StreamForm  # type: ignore[assignment]
    list_display = ("__str__", "owner", masked_url, "stream_type", video, stream_badge,
                    "last_synced_at")
    list_filter = (OwnerKindFilter, "sync_state", DeletedRemotelyFilter)
    list_select_related = ("conference", "room")
    # A Space may hold thousands of rooms: pick the owner by searching, not from a list.
    autocomplete_fields = ("conference", "room")
    search_fields = ("=remote_id", "conference__name", "room__name")
    actions: tuple[Any, ...] = ()
    fixed_after_create = ()
    stream_readonly = ("owner", masked_url, "stream_type", video)
    # The mirror's fields, with the badge and the last error masked by the stream's key.
    mirror_readonly = tuple(
        stream_badge if f is sync_badge else "error_masked" if f == "last_error" else f
        for f in MirrorAdmin.mirror_readonly
    )
    mirror_fieldsets = (
        ("SignalWire", {"fields": tuple(f for f in mirror_readonly if f != "raw_payload")}),
        ("Last payload from SignalWire", {"classes": ("collapse",), "fields": ("raw_payload",)}),
    )

    @admin.display(description="last error")
    def error_masked(self, obj: Stream) -> str:
        """SignalWire's last error about the stream, its key masked."""
        return shown_error(obj)

    @admin.display(description="belongs to")
    def owner(self, obj: Stream) -> str:
        """Link to the conference or room the stream belongs to."""
        return _owner_link(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Read the owners with the streams (the list and pages name them)."""
        return super().get_queryset(request).select_related("conference", "room")

    def get_actions(self, request: HttpRequest) -> dict:
        """No bulk actions: each stream is deleted from its own page, SignalWire first."""
        return {}

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        """The owner (chosen once), the URL with the every-session warning, then SignalWire's."""
        owner = ("conference", "room") if obj is None else ("owner",)
        # Without the right to change it, the URL field would be shown read-only, as it is
        # stored: the masked URL below is all such a staff member sees.
        editable = obj is None or self.has_change_permission(request, obj)
        url = ("url",) if editable else ()
        stream = {"fields": (*owner, *url), "description": EVERY_SESSION_WARNING}
        fieldsets: list = [("Stream", stream)]
        if obj is not None:
            fieldsets.append(("What SignalWire reports", {"fields": (masked_url, "stream_type",
                                                                     video)}))
            if request.user.has_perm(REVEAL):
                fieldsets.append(("Reveal", {"fields": ("reveal_link",)}))
            fieldsets.extend(self.mirror_fieldsets)
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """The owner is fixed once the stream exists; SignalWire's fields are read-only."""
        if obj is None:
            return []
        fields: list[Any] = [*self.stream_readonly, *self.mirror_readonly]
        if request.user.has_perm(REVEAL):
            fields.append("reveal_link")
        return fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """Bind the form class to this request so its validation can call the service."""
        form = admin.ModelAdmin.get_form(self, request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request, "model_admin": self})

    # --- the remote-first save -----------------------------------------------------

    def save_remote(self, request: HttpRequest, obj: Any, data: dict) -> Stream:
        """Create or change the stream through the stream service; its errors become form errors."""
        with audit_context(source=AuditEntry.Source.ADMIN, actor=request.user):
            if obj.pk is None:
                owner = data.get("conference") or data.get("room")
                if owner is None:
                    raise DjangoValidationError("Choose the conference or room of the stream.")
                client = interactive_client(owner.space)
                return streams.stream_create(
                    owner=owner, url=data["url"], actor=request.user, client=client
                )
            if not data.get("url"):
                return Stream.objects.get(pk=obj.pk)  # the field left empty keeps the URL
            client = interactive_client(obj.space)
            return streams.stream_update(
                stream=obj, url=data["url"], actor=request.user,
                client=interactive_client(obj.space),
            )

    def delete_remote(self, obj: Any, **kwargs: Any) -> bool:
        """Delete through the stream service."""
        return streams.stream_delete(stream=obj, **kwargs)

    # --- reveal ------------------------------------------------------------------------

    @admin.display(description="URL")
    def reveal_link(self, obj: Stream) -> str:
        """Link to the audited one-time reveal page."""
        url = reverse("admin:rooms_stream_reveal", args=[obj.pk])
        return format_html('<a class="button sw-reveal-url" href="{}">Reveal URL…</a>', url)

    def get_urls(self) -> list:
        """Add the reveal page of one stream; streams have no restore page.

        Nothing in a stream's history can be restored: its URL is masked there.
        """
        restore = f"{self.opts.app_label}_{self.opts.model_name}_audit_restore"
        return [
            path(
                "<path:object_id>/reveal/",
                self.admin_site.admin_view(self.reveal_view),
                name="rooms_stream_reveal",
            ),
            *(url for url in super().get_urls() if getattr(url, "name", None) != restore),
        ]

    def reveal_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Confirm, then show the URL once in the answer to the POST (audited, no-store).

        The URL is kept nowhere; the form's one-time nonce lets one POST show it: a
        re-sent POST (a reload) or a second one sent at once finds it used and shows nothing.
        """
        if not request.user.has_perm(REVEAL):
            raise PermissionDenied
        stream = self.get_object(request, object_id)
        if stream is None:
            raise Http404("No such stream.")
        if not self.has_view_permission(request, stream):
            raise PermissionDenied
        purpose = f"reveal-stream:{stream.pk}"
        url = None
        if request.method == "POST":
            if not once.spend(
                request,
                purpose,
                "That reveal form was already sent (or was open too long); the URL was "
                "shown once. Reveal it again if you need it.",
            ):
                return HttpResponseRedirect(request.path)
            url = streams.stream_url_reveal(stream=stream, actor=request.user)
        response = TemplateResponse(
            request,
            "admin/rooms/stream/reveal_url.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Reveal the URL of {stream}",
                "opts": self.model._meta,
                "original": stream,
                "url": url,
                "nonce": None if url else once.issue(request, purpose),
                "change_url": reverse("admin:rooms_stream_change", args=[stream.pk]),
            },
        )
        response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
        return response


class StreamInline(admin.TabularInline):
    """An owner's streams, masked; adding and editing happen on the stream's own page."""

    model = Stream
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    template = "admin/rooms/stream/inline.html"
    fields = ("url_masked", "stream_type", "video_line", "state", "last_synced_at")
    readonly_fields = fields
    verbose_name_plural = "streams (each starts in every session)"

    @admin.display(description="URL")
    def url_masked(self, obj: Stream) -> str:
        """The URL as scheme and host only."""
        return masked_url(obj)

    @admin.display(description="video")
    def video_line(self, obj: Stream) -> str:
        """Width × height at fps."""
        return video(obj)

    @admin.display(description="state")
    def state(self, obj: Stream) -> str:
        """The sync state badge."""
        return stream_badge(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Streams are added on their own page, which asks SignalWire first."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are read-only here; the change link opens the stream's page."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deletes go to SignalWire first, from the stream's page."""
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Shown to staff who may view streams."""
        return bool(request.user.has_perm("rooms.view_stream"))
