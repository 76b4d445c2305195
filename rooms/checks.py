"""System checks that tell an operator when the SignalWire settings cannot work."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError

from rooms import space_tokens
from rooms.services import sessions
from rooms.services.recordings import RETENTION_DAYS_MAX, retention_days_problem
from rooms.signalwire.urls import SpaceURLError, normalise_space_url


@register(Tags.compatibility, deploy=False)
def check_signalwire_settings(app_configs=None, **kwargs) -> list:
    """Report missing, malformed or insecure SignalWire settings, each with a hint."""
    problems: list = []
    if not settings.SIGNALWIRE_USES_SANDBOX:
        try:
            normalise_space_url(settings.SIGNALWIRE_SPACE_URL)
        except SpaceURLError as exc:
            problems.append(
                Error(
                    f"SIGNALWIRE_SPACE_URL cannot be used: {exc}",
                    hint="Use your Space's host, e.g. example.signalwire.com, or an https:// URL.",
                    id="rooms.E001",
                )
            )
    for name in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"):
        if not getattr(settings, name):
            problems.append(
                Error(
                    f"{name} is not set.",
                    hint=f"Set {name} in the environment or .env; find it under API in your "
                    "SignalWire Space (the token needs the Video scope).",
                    id="rooms.E002",
                )
            )
    project_id = settings.SIGNALWIRE_PROJECT_ID
    if project_id and (":" in project_id or project_id.strip() != project_id):
        problems.append(
            Error(
                "SIGNALWIRE_PROJECT_ID is malformed (it holds a colon or surrounding spaces).",
                hint="Copy the project ID exactly as your SignalWire Space shows it.",
                id="rooms.E003",
            )
        )
    for name in ("SIGNALWIRE_CONNECT_TIMEOUT", "SIGNALWIRE_READ_TIMEOUT"):
        if getattr(settings, name) <= 0:
            problems.append(
                Error(f"{name} must be a positive number of seconds.", id="rooms.E004")
            )
    problem = retention_days_problem(getattr(settings, "RECORDING_RETENTION_DAYS", 0))
    if problem:
        problems.append(
            Error(
                f"RECORDING_RETENTION_DAYS {problem}.",
                hint="0 (the default) keeps every recording; N deletes completed recordings "
                f"N days after they ended, N at most {RETENTION_DAYS_MAX}.",
                id="rooms.E007",
            )
        )
    problem = sessions.retention_days_problem(getattr(settings, "SESSION_RETENTION_DAYS", 0))
    if problem:
        problems.append(
            Error(
                f"SESSION_RETENTION_DAYS {problem}.",
                hint="0 (the default) keeps every session; N removes sessions and their "
                f"members N days after they started, N at most {sessions.RETENTION_DAYS_MAX}. "
                "Usage keeps those days' figures.",
                id="rooms.E008",
            )
        )
    if settings.SIGNALWIRE_SYNC_INTERVAL < 10:
        problems.append(
            Error(
                "SIGNALWIRE_SYNC_INTERVAL is below 10 seconds.",
                hint="A sync lists every room; run it every few minutes (default 300).",
                id="rooms.E005",
            )
        )
    return problems


@register(Tags.security, deploy=True)
def check_not_on_sandbox(app_configs=None, **kwargs) -> list:
    """A deployed portal must manage a real Space, not the local sandbox."""
    if not settings.SIGNALWIRE_USES_SANDBOX:
        return []
    return [
        Error(
            "SIGNALWIRE_SPACE_URL is not set: the portal would talk to the local sandbox Space.",
            hint="Set SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN "
            "in the environment or .env.",
            id="rooms.E006",
        )
    ]


@register(Tags.compatibility, deploy=False)
def check_spaces(app_configs=None, **kwargs) -> list:
    """Report each Space whose settings cannot work, by name, and unusable token keys."""
    problems: list = []
    key_problem = space_tokens.key_problem()
    if key_problem:
        problems.append(
            Error(
                key_problem,
                hint="Make a key with cryptography's Fernet.generate_key(); list the newest "
                "first, keep the older ones until rotate_space_tokens has run.",
                id="rooms.E010",
            )
        )
        return problems  # no stored token can be read to check the Spaces
    from rooms.models import Space

    try:
        spaces = list(Space.objects.filter(from_settings=False).order_by("name"))
    except DatabaseError:
        return problems  # not migrated yet: nothing to check
    for space in spaces:
        found = space.problems()
        if found:
            problems.append(
                Error(
                    f"Space {space.name!r} cannot be used: {'; '.join(found)}.",
                    hint="Correct it under Spaces in admin (superusers).",
                    id="rooms.E009",
                )
            )
    return problems
