"""SignalWire Spaces (projects) the portal mirrors, and who on the staff may work in each."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from rooms import space_tokens
from rooms.signalwire.client import Credentials, settings_credentials

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# The name the Space configured by the environment takes when SIGNALWIRE_SPACE_NAME is unset.
SANDBOX_NAME = "Sandbox"
ENVIRONMENT_NAME = "Default"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# A token variable must carry this prefix: naming SECRET_KEY or DATABASE_URL would send it.
TOKEN_VARIABLE_PREFIX = "SIGNALWIRE_"


class SpaceQuerySet(models.QuerySet["Space"]):
    """Spaces, narrowed to those a staff user may work in."""

    def visible_to(self, user: AbstractBaseUser | AnonymousUser) -> SpaceQuerySet:
        """Return the Spaces a user may see and act in: all for superusers, else their grants."""
        if not getattr(user, "is_active", False) or not getattr(user, "is_staff", False):
            return self.none()
        if getattr(user, "is_superuser", False):
            return self.all()
        return self.filter(
            models.Q(staff=user) | models.Q(groups__in=user.groups.all())  # type: ignore[union-attr]
        ).distinct()


class Space(models.Model):
    """One SignalWire Space (project): where it is, how the portal signs in, who works in it.

    The Space the environment configures (SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID,
    SIGNALWIRE_API_TOKEN) has `from_settings` set and reads them at call time. Any other
    keeps its URL and project id here and its API token either in an environment variable
    it names or encrypted (rooms.space_tokens); the token is never kept in plain text.
    """

    name = models.CharField(max_length=100, unique=True)
    space_url = models.URLField(
        "Space URL", max_length=200, blank=True,
        help_text="https://example.signalwire.com (HTTPS; plain HTTP only on loopback).",
    )
    project_id = models.CharField("project ID", max_length=100, blank=True)
    token_env = models.CharField(
        "API token from environment variable", max_length=100, blank=True,
        help_text="The name of an environment variable that holds the API token.",
    )
    token_encrypted = models.TextField(blank=True, editable=False)
    from_settings = models.BooleanField(
        "configured by the environment", default=False, editable=False
    )
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="signalwire_spaces",
        help_text="Staff who may see and act in this Space (superusers always may).",
    )
    groups = models.ManyToManyField(
        Group, blank=True, related_name="signalwire_spaces",
        help_text="Groups whose staff may see and act in this Space.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SpaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_settings"], condition=models.Q(from_settings=True),
                name="rooms_space_one_from_settings",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def set_token(self, token: str) -> None:
        """Keep an API token encrypted; the plain value is never stored."""
        self.token_encrypted = space_tokens.encrypt(token) if token else ""

    @property
    def has_token(self) -> bool:
        """Tell whether a token is stored or named, without reading it."""
        return bool(self.token_encrypted or self.token_env or self.from_settings)

    def credentials(self) -> Credentials:
        """Return where this Space is and its API token, read now."""
        if self.from_settings:
            return settings_credentials()
        if self.token_env:
            token = os.environ.get(self.token_env, "")
        elif self.token_encrypted:
            token = space_tokens.decrypt(self.token_encrypted)
        else:
            token = ""
        return Credentials(space_url=self.space_url, project_id=self.project_id, api_token=token)

    def problems(self) -> list[str]:
        """Say what keeps this Space from being reached, one plain sentence each."""
        if self.from_settings:
            return []
        found: list[str] = []
        parts = urlsplit(self.space_url)
        if not self.space_url:
            found.append("its Space URL is missing")
        elif parts.scheme not in {"https", "http"} or not parts.hostname:
            found.append(f"its Space URL {self.space_url!r} is not an http(s) URL with a host")
        elif parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            found.append("its Space URL must use HTTPS (plain HTTP only on loopback)")
        if not self.project_id:
            found.append("its project ID is missing")
        if self.token_env and not self.token_env.startswith(TOKEN_VARIABLE_PREFIX):
            found.append(f"its token variable must start with {TOKEN_VARIABLE_PREFIX}")
        if self.token_env and self.token_encrypted:
            found.append("it has both a stored token and a token variable; keep one")
        elif self.token_env and not os.environ.get(self.token_env):
            found.append(f"the environment variable {self.token_env} it names is unset or empty")
        elif self.token_encrypted:
            try:
                space_tokens.decrypt(self.token_encrypted)
            except space_tokens.TokenUnreadable as exc:
                found.append(str(exc))
        elif not self.token_env:
            found.append("it has no API token")
        return found


def environment_space_name() -> str:
    """Return the name the environment's Space takes."""
    configured: str = getattr(settings, "SIGNALWIRE_SPACE_NAME", "")
    if configured:
        return configured
    return SANDBOX_NAME if settings.SIGNALWIRE_USES_SANDBOX else ENVIRONMENT_NAME


def environment_space() -> Space:
    """Return the Space the environment configures, made on first use."""
    space = Space.objects.filter(from_settings=True).first()
    if space is None:
        space, _ = Space.objects.get_or_create(
            from_settings=True, defaults={"name": environment_space_name()}
        )
    return space


def default_space_id() -> int:
    """Return the Space rows made without one belong to: the environment's."""
    return environment_space().pk


def space_field(**options: Any) -> models.ForeignKey:
    """Return the foreign key by which a mirrored row belongs to its Space."""
    return models.ForeignKey(
        Space, on_delete=models.PROTECT, default=default_space_id, related_name="+", **options
    )
