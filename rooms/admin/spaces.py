"""Admin of the SignalWire Spaces themselves: superusers only; the API token is write-only."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html_join

from rooms.models import Space
from rooms.models.spaces import LOOPBACK_HOSTS, TOKEN_VARIABLE_PREFIX
from rooms.signalwire.client import settings_credentials

TOKEN_HELP = (
    "Paste the Space's API token to store it encrypted; it is never shown again. Leave "
    "empty to keep the stored one. Or name an environment variable below instead."
)
ENVIRONMENT_SOURCE = (
    "The environment: SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN "
    "(the local sandbox Space while SIGNALWIRE_SPACE_URL is unset), read when the portal "
    "calls SignalWire. Change them there, not here."
)


class SpaceForm(forms.ModelForm):
    """A Space's settings; the API token is taken in, encrypted, and never rendered back."""

    space_url = forms.URLField(
        label="Space URL", max_length=200, assume_scheme="https",
        help_text="https://example.signalwire.com (HTTPS; plain HTTP only on loopback).",
    )
    project_id = forms.CharField(label="project ID", max_length=100)

    api_token = forms.CharField(
        label="API token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=TOKEN_HELP,
    )

    class Meta:
        model = Space
        fields = ("name", "space_url", "project_id", "api_token", "token_env", "staff", "groups")

    def clean(self) -> dict[str, Any]:
        """Keep exactly one source of the token: a new token, a variable, or the stored one."""
        cleaned = super().clean() or {}
        token, variable = cleaned.get("api_token"), cleaned.get("token_env", "")
        if token and variable:
            self.add_error(
                "api_token", "Give the API token or the name of a variable holding it, not both."
            )
        elif not token and not variable and not self.instance.token_encrypted:
            self.add_error("api_token", "Give the API token, or name a variable holding it.")
        if variable and not (
            variable.startswith(TOKEN_VARIABLE_PREFIX) and variable.replace("_", "").isalnum()
        ):
            self.add_error(
                "token_env",
                f"Name an environment variable starting with {TOKEN_VARIABLE_PREFIX} "
                "(letters, digits and _), so no other setting is ever sent as a token.",
            )
        if (
            self.instance.pk and "space_url" in self.changed_data and not token and not variable
            and self.instance.token_encrypted
        ):
            self.add_error(
                "api_token",
                "Give the API token again with a new Space URL: a stored token is sent only "
                "to the URL it was saved for.",
            )
        url = cleaned.get("space_url")
        if url:
            parts = urlsplit(url)
            if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
                self.add_error(
                    "space_url", "Use https://: the API token is sent only over HTTPS "
                    "(plain HTTP only to a loopback address such as the sandbox)."
                )
        return cleaned

    def save(self, commit: bool = True) -> Space:
        """Encrypt a new token; a variable named instead drops the stored token."""
        space: Space = super().save(commit=False)
        token = self.cleaned_data.get("api_token")
        if token:
            space.set_token(token)
            space.token_env = ""
        elif space.token_env:
            space.token_encrypted = ""
        if commit:
            space.save()
            self.save_m2m()
        return space


class EnvironmentSpaceForm(forms.ModelForm):
    """The environment's Space: only who may work in it is set here."""

    class Meta:
        model = Space
        fields = ("staff", "groups")


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    """SignalWire Spaces and who may work in each; superusers only."""

    form = SpaceForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "space_url", "project_id", "token_source", "state", "from_settings")
    search_fields = ("name", "project_id")
    filter_horizontal = ("staff", "groups")

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Only superusers manage Spaces."""
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only superusers see Spaces' settings."""
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Only superusers add Spaces."""
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only superusers change Spaces."""
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only superusers delete a Space, and never the environment's."""
        if obj is not None and obj.from_settings:
            return False
        return self.has_module_permission(request)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The environment's Space takes only its grants."""
        if obj is not None and obj.from_settings:
            kwargs["form"] = EnvironmentSpaceForm
            kwargs["fields"] = EnvironmentSpaceForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """Settings then grants; the environment's Space shows where its settings come from."""
        grants = ("Who may work in this Space", {"fields": ("staff", "groups")})
        if obj is not None and obj.from_settings:
            settings_fields = ("name", "settings_source", "environment_url", "environment_project")
            return [("Configured by the environment", {"fields": settings_fields}), grants]
        fields: tuple[str, ...] = ("name", "space_url", "project_id", "api_token", "token_env")
        if obj is not None:
            fields = (*fields, "token_source", "state")
        return [(None, {"fields": fields}), grants]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """What the portal works out or the environment sets is shown, never edited."""
        if obj is not None and obj.from_settings:
            return ("name", "settings_source", "environment_url", "environment_project")
        return ("token_source", "state")

    @admin.display(description="API token")
    def token_source(self, obj: Space) -> str:
        """Say where the token comes from, never the token."""
        if obj.from_settings:
            return "SIGNALWIRE_API_TOKEN (environment)"
        if obj.token_env:
            return f"Environment variable {obj.token_env}"
        return "Stored encrypted" if obj.token_encrypted else "None"

    @admin.display(description="settings")
    def state(self, obj: Space) -> Any:
        """List what keeps the Space from being reached, or say it is complete."""
        problems = obj.problems()
        if not problems:
            return "Complete"
        return format_html_join("", "<div>{}</div>", ((p,) for p in problems))

    @admin.display(description="settings come from")
    def settings_source(self, obj: Space) -> str:
        """Name the environment settings the Space reads."""
        return ENVIRONMENT_SOURCE

    @admin.display(description="Space URL")
    def environment_url(self, obj: Space) -> str:
        """The Space URL the environment sets now."""
        return settings_credentials().space_url or "(the local sandbox)"

    @admin.display(description="project ID")
    def environment_project(self, obj: Space) -> str:
        """The project id the environment sets now."""
        return settings_credentials().project_id or "—"
