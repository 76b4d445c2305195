"""Admin pages: rooms, their join-token minting page, and the record of issued tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminRadioSelect
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from rooms import services
from rooms.admin import once
from rooms.admin.audit_display import display_value
from rooms.admin.mirror import DeletedRemotelyFilter, MirrorAdmin, interactive_client, sync_badge
from rooms.admin.promote import PromoteMixin, promote_selected
from rooms.admin.records import RecordAdminMixin
from rooms.admin.scoping import SpaceScopedMixin
from rooms.admin.sessions import LiveActivityMixin, LiveFilter, live_badge
from rooms.admin.streams import StreamInline, queue_owner_streams_sync
from rooms.models import IssuedRoomToken, Room
from rooms.services import tokens
from rooms.signalwire import schema
from rooms.signalwire.errors import SignalWireError
from rooms.strictjson import StrictJSONField

MINT = "rooms.mint_room_token"


class DateTimeLocalInput(forms.DateTimeInput):
    """The browser's date-and-time picker."""

    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class MintTokenForm(forms.Form):
    """What a join token grants: a role preset or chosen scopes, a user, a time window."""

    nonce = forms.CharField(widget=forms.HiddenInput, required=False)
    role = forms.ChoiceField(
        choices=[
            ("guest", "Guest (own audio, video and screen only)"),
            ("moderator", "Moderator (room and member controls)"),
            ("audience", "Audience (watches and listens; sends no audio or video)"),
            ("custom", "Custom scopes"),
        ],
        initial="guest",
        widget=AdminRadioSelect(attrs={"class": "radiolist"}),
        help_text="A preset ticks its scopes below; ticking a scope by hand makes it custom.",
    )
    permissions = forms.MultipleChoiceField(
        choices=[(p, p) for p in schema.ROOM_TOKEN_PERMISSIONS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Used only with “Custom scopes”.",
    )
    user_name = forms.CharField(
        max_length=schema.USER_NAME_MAX,
        required=False,
        help_text="The name others in the room see.",
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )
    join_from = forms.DateTimeField(required=False, widget=DateTimeLocalInput())
    join_until = forms.DateTimeField(
        required=False,
        widget=DateTimeLocalInput(),
        help_text="The token admits no one after this time: it is the token's expiry. "
        f"Left blank, it is {tokens.DEFAULT_VALIDITY.total_seconds() / 3600:g} hours after "
        "the token becomes usable.",
    )
    remove_at = forms.DateTimeField(required=False, widget=DateTimeLocalInput())
    remove_after_seconds_elapsed = forms.IntegerField(
        required=False,
        min_value=schema.REMOVE_AFTER_MIN,
        max_value=schema.REMOVE_AFTER_MAX,
        help_text="Remove the user after this many seconds in the room.",
    )
    join_audio_muted = forms.BooleanField(required=False)
    join_video_muted = forms.BooleanField(required=False)
    media_allowed = forms.ChoiceField(
        choices=[
            ("all", "Audio and video"),
            ("video-only", "Video only"),
            ("audio-only", "Audio only"),
        ],
        initial="all",
        help_text="What the user receives from the room.",
    )
    end_room_session_on_leave = forms.BooleanField(
        required=False,
        label="End the room session when this user leaves",
    )
    room_display_name = forms.CharField(
        max_length=schema.DISPLAY_NAME_MAX,
        required=False,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="SignalWire uses it only for a room the token itself creates; the portal "
        "never lets a token create a room, so it changes nothing for an existing room.",
    )
    meta = StrictJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
        help_text='Member meta: a JSON object, such as {"seat": 12}.',
    )

    # How the page lays the form out, as admin fieldsets (the scopes have their own block).
    fieldsets = (
        (None, {"fields": ("role", "user_name")}),
        (
            "Time window",
            {"fields": ("join_from", "join_until", "remove_at", "remove_after_seconds_elapsed")},
        ),
        (
            "On joining",
            {
                "fields": (
                    ("join_audio_muted", "join_video_muted"),
                    "media_allowed",
                    "end_room_session_on_leave",
                )
            },
        ),
        ("Advanced", {"classes": ("collapse",), "fields": ("meta", "room_display_name")}),
    )
    # Shown in this order; a scope belongs to the longest prefix it starts with.
    scope_prefixes = (
        ("room.", "The room"),
        ("room.member.", "Other members"),
        ("room.self.", "Own audio, video and screen"),
    )

    def scope_groups(self) -> list[tuple[str, str, list[Any]]]:
        """Group the scope checkboxes in columns: room.*, room.member.*, room.self.*."""
        groups: dict[str, list[Any]] = {prefix: [] for prefix, _ in self.scope_prefixes}
        longest_first = sorted(groups, key=len, reverse=True)
        for box in self["permissions"]:
            value = str(box.data["value"])
            prefix = next(p for p in longest_first if value.startswith(p))
            groups[prefix].append((value[len(prefix) :], box))
        return [(f"{p}*", title, groups[p]) for p, title in self.scope_prefixes if groups[p]]

    def clean_meta(self) -> Any:
        """Accept a JSON object only, as the API does (an empty list is not "no meta")."""
        value = self.cleaned_data.get("meta")
        if value is None:
            return None
        try:
            tokens.validate_meta_value(value)
        except DjangoValidationError as exc:
            raise forms.ValidationError(exc.message_dict["meta"]) from exc
        return value

    def clean(self) -> dict[str, Any]:
        """Mirror SignalWire's rules: a custom role names scopes; the window is ordered."""
        cleaned = super().clean() or {}
        if cleaned.get("role") == "custom" and not cleaned.get("permissions"):
            self.add_error("permissions", "Pick at least one scope for a custom token.")
        start, end = cleaned.get("join_from"), cleaned.get("join_until")
        if start and end and start >= end:
            self.add_error("join_until", "Join until must be after join from.")
        return cleaned

    def mint_arguments(self) -> dict[str, Any]:
        """The cleaned values as room_token_mint takes them."""
        return {k: v for k, v in self.cleaned_data.items() if k != "nonce"}


# Both bases name their stylesheets in a Media class; Django's admin media merges them.
@admin.register(Room)
class RoomAdmin(PromoteMixin, LiveActivityMixin, MirrorAdmin):  # type: ignore[misc]
    """Rooms: remote-first edits, SignalWire-first deletes, a join-token minting page."""

    list_display = (
        "name",
        "display_name",
        "max_members",
        "quality",
        "layout",
        sync_badge,
        live_badge,
        "last_synced_at",
        "remote_updated_at",
        "mint_link",
    )
    list_filter = ("sync_state", "quality", "layout", DeletedRemotelyFilter, LiveFilter)
    actions = (*MirrorAdmin.actions, promote_selected)
    # The API's room requests carry none of these: SignalWire alone sets them.
    never_editable = (
        "fps",
        "prioritize_handraise",
        "tone_on_entry_and_exit",
        "user_join_video_off",
        "room_join_video_off",
    )
    fieldsets_basics = (
        ("Basics", {"fields": ("name", "display_name", "description", "max_members")}),
        (
            "Schedule",
            {"fields": ("join_from", "join_until", "remove_at", "remove_after_seconds_elapsed")},
        ),
        (
            "Media",
            {
                "fields": (
                    "quality",
                    "layout",
                    "record_on_start",
                    "enable_room_previews",
                    "sync_audio_video",
                )
            },
        ),
        ("Advanced", {"classes": ("collapse",), "fields": ("meta",)}),
    )

    inlines = (StreamInline,)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        """Streams exist only once SignalWire made the room."""
        return self.inlines if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Report the save, then list the room's streams again (their size follows it)."""
        super().save_model(request, obj, form, change)
        queue_owner_streams_sync(obj)

    def create_remote(self, **kwargs: Any) -> Room:
        """Create through the room service."""
        return services.room_create(**kwargs)

    def update_remote(self, obj: Any, **kwargs: Any) -> Room:
        """Update through the room service."""
        return services.room_update(room=obj, **kwargs)

    def delete_remote(self, obj: Any, **kwargs: Any) -> bool:
        """Delete through the room service."""
        return services.room_delete(room=obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        """Basics, schedule, media, meta; then what SignalWire alone sets."""
        fieldsets = [*self.space_fieldsets(request), *self.fieldsets_basics]
        if obj is not None:
            fieldsets.append(("Set by SignalWire", {"fields": self.never_editable}))
            fieldsets.extend(self.mirror_fieldsets)
        return fieldsets

    @admin.display(description="join token")
    def mint_link(self, obj: Room) -> str:
        """Link to the minting page of the room."""
        return format_html(
            '<a href="{}">Mint…</a>', reverse("admin:rooms_room_mint_token", args=[obj.pk])
        )

    def get_list_display(self, request: HttpRequest) -> Any:
        """Offer the minting link only to staff who may mint."""
        shown = super().get_list_display(request)
        return shown if request.user.has_perm(MINT) else [c for c in shown if c != "mint_link"]

    def get_urls(self) -> list:
        """Add the join-token minting page."""
        return [
            path(
                "<path:object_id>/mint-token/",
                self.admin_site.admin_view(self.mint_token_view),
                name="rooms_room_mint_token",
            ),
            *super().get_urls(),
        ]

    def mint_token_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Mint a join token and show it once, in the answer to the POST itself.

        The token is kept nowhere on the server: not in the session, not in a message.
        A one-time nonce in the form makes a reload (a re-sent POST), a double click or
        the same form sent twice at once mint one token only; the answer is marked
        no-store by admin_view.
        """
        if not request.user.has_perm(MINT):
            raise PermissionDenied
        room = self.get_object(request, object_id)
        if room is None:
            raise Http404(f"No room with id “{object_id}”.")
        if not self.has_view_permission(request, room):
            raise PermissionDenied
        purpose = f"mint:{room.pk}"
        token = record = None
        refusal = tokens.mint_refusal(room)
        form = MintTokenForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and not refusal:
            if not once.spend(
                request,
                purpose,
                "That mint form was already sent (or was open too long): the token it made "
                "was shown once and is not kept anywhere. Mint a new token if you need one.",
            ):
                return HttpResponseRedirect(request.path)
            if form.is_valid():
                try:
                    token, record = tokens.room_token_mint(
                        room=room,
                        actor=request.user,
                        # A page waits on the answer: the short interactive budget.
                        client=interactive_client(room.space),
                        **form.mint_arguments(),
                    )
                except DjangoValidationError as exc:
                    for field, errors in exc.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                except SignalWireError as exc:
                    form.add_error(None, f"SignalWire could not mint the token: {exc}")
        if token is None and not refusal:
            # A fresh nonce for the form on the page (the one just used is gone).
            data = form.data.copy() if isinstance(form.data, QueryDict) else None
            if data is not None:
                data["nonce"] = once.issue(request, purpose)
                form.data = data
            else:
                form = MintTokenForm(initial={"nonce": once.issue(request, purpose)})
        return TemplateResponse(
            request,
            "admin/rooms/room/mint_token.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Mint a join token for {room}",
                "opts": self.model._meta,
                "original": room,
                "form": form,
                # AdminForm lays out any form by its fieldsets, not only a ModelForm.
                "adminform": helpers.AdminForm(
                    form, list(form.fieldsets), {}  # type: ignore[arg-type]
                ),
                "token": token,
                "record": record,
                "refusal": refusal,
                "presets": {role: list(scopes) for role, scopes in tokens.ROLE_PRESETS.items()},
                "media": self.media + form.media,
            },
        )


@admin.register(IssuedRoomToken)
class IssuedRoomTokenAdmin(SpaceScopedMixin, RecordAdminMixin, admin.ModelAdmin):
    """The record of join tokens staff minted: read-only, never the token itself."""

    list_display = ("room_name", "user_name", "role", "issued_by", "issued_at", "expires_at")
    list_filter = ("role", "issued_at")
    search_fields = ("room_name", "user_name", "=fingerprint")
    list_select_related = ("issued_by",)
    show_full_result_count = False
    date_hierarchy = "issued_at"
    exclude = ("options",)
    readonly_fields = ("mint_options",)

    @admin.display(description="mint options")
    def mint_options(self, record: IssuedRoomToken) -> str:
        """List the options the token was minted with (join as, media, session, meta)."""
        options = record.options if isinstance(record.options, dict) else {}
        if not options:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><strong>{}</strong>: {}</li>",
                (
                    (capfirst(name.replace("_", " ")), display_value(value))
                    for name, value in options.items()
                ),
            ),
        )
