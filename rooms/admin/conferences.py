"""Admin pages: conferences, with their moderator and guest tokens inline."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from rooms import services
from rooms.admin import once
from rooms.admin.mirror import (
    DeletedRemotelyFilter,
    MirrorAdmin,
    confirm,
    interactive_client,
    sync_badge,
)
from rooms.admin.promote import PromoteMixin, promote_selected
from rooms.admin.sessions import LiveActivityMixin, LiveFilter, live_badge
from rooms.admin.streams import StreamInline, queue_owner_streams_sync
from rooms.models import ActionRun, Conference, ConferenceToken
from rooms.services import tokens
from rooms.signalwire.errors import SignalWireError

REVEAL = "rooms.reveal_conferencetoken"
RESET = "rooms.reset_conferencetoken"


def _token_url(name: str, token: ConferenceToken) -> str:
    return reverse(f"admin:rooms_conference_token_{name}", args=[token.conference_id, token.pk])


def _embed_button(conference: Conference, name: str) -> str:
    """A copy button that reveals one of the conference's tokens (audited) into a snippet."""
    token = next((t for t in conference.tokens.all() if t.name == name), None)
    if token is None:
        return f"No {name} token yet."
    return format_html(
        '<button type="button" class="button sw-embed" data-reveal-url="{}" '
        'data-room="{}">Copy {} embed snippet</button> '
        '<pre class="sw-json sw-embed-preview" hidden></pre>',
        _token_url("reveal", token),
        conference.name,
        name,
    )


class ConferenceTokenInline(admin.TabularInline):
    """The conference's tokens: masked; reveal, copy and reset only with their permission."""

    model = ConferenceToken
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Tokens are made by SignalWire, never by staff."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Token rows are read-only; reset is its own confirmed view."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Tokens live as long as their conference in SignalWire."""
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """Show the controls a staff member's permissions allow, and no others."""
        fields = ["name", "scope_list", "masked_value"]
        if request.user.has_perm(REVEAL):
            fields.append("reveal_controls")
        if request.user.has_perm(RESET):
            fields.append("reset_link")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every column is read-only."""
        return self.get_fields(request, obj)

    @admin.display(description="scopes")
    def scope_list(self, obj: ConferenceToken) -> str:
        """List the token's scopes as SignalWire reported them."""
        return format_html(
            '<details><summary>{} scopes</summary><ul class="sw-scopes">{}</ul></details>',
            len(obj.scopes),
            format_html_join("", "<li>{}</li>", ((s,) for s in obj.scopes)),
        )

    @admin.display(description="value")
    def masked_value(self, obj: ConferenceToken) -> str:
        """Show the value masked; a reveal fills in the real value in place."""
        return format_html(
            '<code class="sw-token" id="sw-token-{}">{}</code>', obj.pk, obj.masked
        )

    @admin.display(description="reveal / copy")
    def reveal_controls(self, obj: ConferenceToken) -> str:
        """Buttons that fetch the value by an audited POST; the page never carries it."""
        url = _token_url("reveal", obj)
        return format_html(
            '<button type="button" class="button sw-reveal" data-reveal-url="{}" '
            'data-target="sw-token-{}">Reveal</button> '
            '<button type="button" class="button sw-copy" data-reveal-url="{}">Copy</button>',
            url,
            obj.pk,
            url,
        )

    @admin.display(description="reset")
    def reset_link(self, obj: ConferenceToken) -> str:
        """Link to the confirmation page of a reset."""
        return format_html('<a class="button" href="{}">Reset…</a>', _token_url("reset", obj))


# Both bases name their stylesheets in a Media class; Django's admin media merges them.
@admin.register(Conference)
class ConferenceAdmin(PromoteMixin, LiveActivityMixin, MirrorAdmin):  # type: ignore[misc]
    """Conferences: remote-first edits, tokens inline, SignalWire-first deletes."""

    list_display = (
        "name",
        "display_name",
        "size",
        "quality",
        "layout",
        sync_badge,
        live_badge,
        "last_synced_at",
        "remote_updated_at",
    )
    list_filter = ("sync_state", "size", "quality", "layout", DeletedRemotelyFilter, LiveFilter)
    inlines = (ConferenceTokenInline, StreamInline)
    actions = (*MirrorAdmin.actions, "refresh_tokens", promote_selected)
    never_editable = ("meta",)
    fieldsets_basics = (
        ("Basics", {"fields": ("name", "display_name", "description", "size")}),
        ("Schedule", {"fields": ("join_from", "join_until")}),
        (
            "Media",
            {
                "fields": (
                    "quality",
                    "layout",
                    "record_on_start",
                    "tone_on_entry_and_exit",
                    "user_join_video_off",
                    "room_join_video_off",
                    "enable_chat",
                    "enable_room_previews",
                )
            },
        ),
        (
            "Theme colours",
            {
                "classes": ("collapse",),
                "fields": (
                    ("dark_primary", "dark_background", "dark_foreground"),
                    ("dark_success", "dark_negative"),
                    ("light_primary", "light_background", "light_foreground"),
                    ("light_success", "light_negative"),
                ),
            },
        ),
    )

    def create_remote(self, **kwargs: Any) -> Conference:
        """Create through the conference service."""
        return services.conference_create(**kwargs)

    def update_remote(self, obj: Any, **kwargs: Any) -> Conference:
        """Update through the conference service."""
        return services.conference_update(conference=obj, **kwargs)

    def delete_remote(self, obj: Any, **kwargs: Any) -> bool:
        """Delete through the conference service."""
        return services.conference_delete(conference=obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        """Basics, schedule, media, colours; then what SignalWire manages."""
        fieldsets = [*self.space_fieldsets(request), *self.fieldsets_basics]
        if obj is None:
            return fieldsets
        if request.user.has_perm(REVEAL):
            fieldsets.append(("Embed", {"fields": ("embed_snippet", "moderator_embed_snippet")}))
        fieldsets.append(("Advanced", {"classes": ("collapse",), "fields": ("meta",)}))
        fieldsets.extend(self.mirror_fieldsets)
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """Add the embed snippet (only ever offered with the reveal permission)."""
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and request.user.has_perm(REVEAL):
            fields.extend(["embed_snippet", "moderator_embed_snippet"])
        return fields

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        """Tokens and streams exist only once SignalWire made the conference."""
        return self.inlines if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Report the save, then list the conference's streams again (they follow it)."""
        super().save_model(request, obj, form, change)
        queue_owner_streams_sync(obj)

    @admin.display(description="guest embed snippet")
    def embed_snippet(self, obj: Conference) -> str:
        """A copy button that reveals the guest token (audited) and builds the snippet."""
        return _embed_button(obj, "guest")

    @admin.display(description="moderator embed snippet")
    def moderator_embed_snippet(self, obj: Conference) -> str:
        """A copy button that reveals the moderator token (audited) and builds the snippet."""
        return _embed_button(obj, "moderator")

    # --- token views -----------------------------------------------------------------

    def get_urls(self) -> list:
        """Add the reveal and reset views of one conference token."""
        urls = [
            path(
                "<path:object_id>/tokens/<int:token_id>/reveal/",
                self.admin_site.admin_view(self.reveal_view),
                name="rooms_conference_token_reveal",
            ),
            path(
                "<path:object_id>/tokens/<int:token_id>/reset/",
                self.admin_site.admin_view(self.reset_view),
                name="rooms_conference_token_reset",
            ),
        ]
        return urls + super().get_urls()

    def _token(self, request: HttpRequest, object_id: str, token_id: int) -> ConferenceToken:
        conference = self.get_object(request, object_id)
        if conference is None:
            raise Http404(f"No conference with id “{object_id}”.")
        if not self.has_view_permission(request, conference):
            raise PermissionDenied
        return get_object_or_404(ConferenceToken, pk=token_id, conference=conference)

    def reveal_view(self, request: HttpRequest, object_id: str, token_id: int) -> HttpResponse:
        """Return one token's value as JSON to a permitted POST, and audit the reveal."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(REVEAL):
            raise PermissionDenied
        token = self._token(request, object_id, token_id)
        value = tokens.conference_token_reveal(token=token, actor=request.user)
        # admin_view marks the answer never_cache, so the value is not kept by a cache.
        return JsonResponse({"token": value, "name": token.name})

    def reset_view(self, request: HttpRequest, object_id: str, token_id: int) -> HttpResponse:
        """Confirm, then rotate one token in SignalWire (once per confirmation page)."""
        if not request.user.has_perm(RESET):
            raise PermissionDenied
        token = self._token(request, object_id, token_id)
        change_url = reverse("admin:rooms_conference_change", args=[token.conference_id])
        purpose = f"reset-token:{token.pk}"
        if request.method == "POST":
            if not once.spend(
                request,
                purpose,
                f"That reset was sent already (a second click or a reload of the page), so "
                f"the {token.name} token was not reset again.",
            ):
                return HttpResponseRedirect(change_url)
            try:
                reset = tokens.conference_token_reset(
                    token=token, actor=request.user,
                    client=interactive_client(token.conference.space),
                )
            except tokens.TokenResetNotApplied:
                self.message_user(
                    request,
                    f"The {token.name} token was not reset: SignalWire's answer was lost, and "
                    "reading the token back shows it still has its old value, which stays "
                    "valid. Try the reset again.",
                    messages.ERROR,
                )
            except tokens.TokenResetUnknown:
                self.message_user(
                    request,
                    f"It is not known whether the {token.name} token was reset: SignalWire's "
                    "answer was lost and the token could not be read back. The value shown "
                    "here may be out of date; use “Refresh tokens from SignalWire” once "
                    "SignalWire answers.",
                    messages.WARNING,
                )
            except SignalWireError as exc:
                self.message_user(request, f"The token was not reset: {exc}", messages.ERROR)
            else:
                if reset.answer_lost:
                    self.message_user(
                        request,
                        f"The {token.name} token was reset in SignalWire. Its answer was lost, "
                        "so the portal read the token back: the new value is stored here and "
                        "the old one no longer works.",
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(request, f"The {token.name} token was reset in SignalWire.")
            return HttpResponseRedirect(change_url)
        return TemplateResponse(
            request,
            "admin/rooms/conference/reset_token.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Reset the {token.name} token of {token.conference}",
                "opts": self.model._meta,
                "token": token,
                "change_url": change_url,
                "nonce": once.issue(request, purpose),
            },
        )

    @admin.action(description="Refresh tokens from SignalWire", permissions=["change"])
    def refresh_tokens(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Queue a reload of the moderator and guest tokens of the selected conferences."""
        return confirm(
            self,
            request,
            queryset,
            title="Refresh tokens from SignalWire",
            explanation="Read the moderator and guest tokens of these conferences again.",
            run=lambda: self.start_run(
                request, queryset, ActionRun.Action.REFRESH_TOKENS, "token refresh"
            ),
        )
