"""Conference token and room join token writes: remote first, then a short transaction.

Reveals, resets and mints are audited through the same context as the mirror services; the
values themselves never reach an audit row, a log line or the session.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from rooms import audit
from rooms.models import (
    AuditEntry,
    Conference,
    ConferenceToken,
    IssuedRoomToken,
    Room,
    SyncState,
    validate_meta,
)
from rooms.registry import conference_token_values, mask_error
from rooms.secrets import mask_secrets_in
from rooms.services.common import acting, api_client, form_error, store_tokens
from rooms.signalwire import payloads, schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError, SignalWireError, UnavailableError
from rooms.signalwire.errors import ValidationError as RemoteValidationError

logger = logging.getLogger("rooms.services.tokens")

ROLE_PRESETS: dict[str, tuple[str, ...]] = {
    "moderator": schema.MODERATOR_PERMISSIONS,
    "guest": schema.GUEST_PERMISSIONS,
    # SignalWire gives an audience token no permissions, whatever the request names.
    "audience": (),
}
# The API has no expiry parameter: a token stops admitting anyone at join_until. A token
# minted without a window is given this one, so no token stays usable for ever.
DEFAULT_VALIDITY = timedelta(hours=24)


def conference_tokens_refresh(
    *,
    conference: Conference,
    actor: audit.Actor = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> list[ConferenceToken]:
    """Mirror a conference's moderator and guest tokens as SignalWire has them now."""
    if not conference.remote_id:
        return []
    with acting(source, actor):
        answers = api_client(client, space=conference.space).list_conference_tokens(
            conference.remote_id
        )
        with transaction.atomic():
            return store_tokens(conference, answers)


@dataclass(frozen=True)
class TokenReset:
    """What a reset did: the token as stored now, and whether SignalWire's answer was lost."""

    token: ConferenceToken
    answer_lost: bool = False


class TokenResetNotApplied(UnavailableError):
    """The reset's answer was lost, and SignalWire still holds the old value: not rotated."""

    default_message = (
        "SignalWire's answer was lost, and reading the token back shows the old value: "
        "the token was not reset"
    )


class TokenResetUnknown(UnavailableError):
    """The reset's answer was lost and the token could not be read back either."""

    default_message = (
        "SignalWire's answer was lost and the token could not be read back: it may have "
        "been rotated. Use “Refresh tokens from SignalWire” once SignalWire answers"
    )


def _maybe_applied(exc: UnavailableError) -> bool:
    """Tell whether a failed POST may still have been carried out by SignalWire."""
    # 503 (like 429) means the server did nothing; a lost answer or another 5xx may not.
    return exc.maybe_applied or (exc.status is not None and exc.status != 503)


def _store_rotation(token: ConferenceToken, answer: dict[str, Any]) -> ConferenceToken:
    values = payloads.token_fields(answer)
    now = timezone.now()
    for field in ("name", "token", "scopes"):
        setattr(token, field, values[field])
    token.rotated_at = token.last_synced_at = now
    with transaction.atomic():
        token.save(update_fields=["name", "token", "scopes", "rotated_at", "last_synced_at"])
    return token


def conference_token_reset(
    *,
    token: ConferenceToken,
    actor: audit.Actor = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> TokenReset:
    """Rotate a conference token in SignalWire and store the new value (audited, masked).

    When the answer is lost after SignalWire may have acted, the token is read back: a new
    value is stored as the reset it was; an unchanged one raises TokenResetNotApplied.
    """
    with acting(source, actor):
        try:
            return _reset(token, api_client(client, space=token.conference.space))
        except SignalWireError as exc:
            # Its message reaches the page and the logs: SignalWire may echo a token value.
            secrets = [token.token, *conference_token_values(token.conference_id)]
            mask_error(exc, lambda text: mask_secrets_in(text, secrets))
            raise


def _reset(token: ConferenceToken, api: SignalWireClient) -> TokenReset:
    """Ask SignalWire for the reset; read the token back when the answer was lost."""
    try:
        answer = api.reset_conference_token(token.remote_id)
    except UnavailableError as exc:
        if not _maybe_applied(exc):
            raise
        logger.info("reset of conference token %s: answer lost, reading it back", token.pk)
        try:
            current = api.get_conference_token(token.remote_id)
        except SignalWireError as reread:
            raise TokenResetUnknown(method=exc.method, path=exc.path) from reread
        if payloads.token_fields(current)["token"] == token.token:
            raise TokenResetNotApplied(method=exc.method, path=exc.path) from exc
        return TokenReset(token=_store_rotation(token, current), answer_lost=True)
    return TokenReset(token=_store_rotation(token, answer))


def conference_token_reveal(
    *, token: ConferenceToken, actor: audit.Actor = None, source: str = AuditEntry.Source.ADMIN
) -> str:
    """Return a token's value and record who saw it (never the value itself)."""
    with acting(source, actor), transaction.atomic():
        audit.record_event(obj=token, event="reveal")
    return token.token


# --- room join tokens ------------------------------------------------------------------


def mint_refusal(room: Room) -> str:
    """Say why no join token may be minted for this room now, or return "" when one may."""
    if room.sync_state == SyncState.DELETED_REMOTELY:
        return (
            f"“{room}” was deleted in SignalWire, so a join token for it would admit no one "
            "(the portal never lets a token create the room again)."
        )
    if not room.remote_id:
        return (
            f"“{room}” is not created in SignalWire yet (its creation is pending). Mint a "
            "token once it is synced."
        )
    if room.sync_state == SyncState.PENDING_DELETE:
        return f"“{room}” is being deleted in SignalWire; no new join tokens are minted for it."
    return ""


def _refuse(field: str, message: str) -> DjangoValidationError:
    return DjangoValidationError({field: [message]})


def room_token_mint(
    *,
    room: Room,
    role: str = "guest",
    permissions: list[str] | tuple[str, ...] | None = None,
    user_name: str = "",
    join_from: datetime | None = None,
    join_until: datetime | None = None,
    remove_at: datetime | None = None,
    remove_after_seconds_elapsed: int | None = None,
    join_audio_muted: bool = False,
    join_video_muted: bool = False,
    media_allowed: str = "all",
    end_room_session_on_leave: bool = False,
    room_display_name: str = "",
    meta: dict[str, Any] | None = None,
    actor: audit.Actor = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> tuple[str, IssuedRoomToken]:
    """Mint a join token for a room; keep who issued it for whom and its fingerprint only."""
    refusal = mint_refusal(room)
    if refusal:
        raise _refuse(NON_FIELD_ERRORS, refusal)
    scopes = list(ROLE_PRESETS[role] if role in ROLE_PRESETS else permissions or [])
    unknown = sorted(set(scopes) - set(schema.ROOM_TOKEN_PERMISSIONS))
    if unknown:
        raise _refuse("permissions", f"Unknown scopes: {', '.join(unknown)}")
    if media_allowed not in schema.MEDIA_ALLOWED:
        raise _refuse("media_allowed", f"Choose one of {', '.join(schema.MEDIA_ALLOWED)}.")
    if meta is not None:
        validate_meta_value(meta)
    now = timezone.now()
    if join_until is None:
        join_until = max(now, join_from or now) + DEFAULT_VALIDITY
    if join_until <= now:
        raise _refuse("join_until", "Join until is in the past: no one could use the token.")
    if join_from and join_from >= join_until:
        raise _refuse("join_until", "Join until must be after join from.")
    join_as = "audience" if role == "audience" else "member"
    body: dict[str, Any] = {
        "room_name": room.name,
        "permissions": scopes,
        "join_as": join_as,
        "media_allowed": media_allowed,
        # Sent false explicitly so a join with this token can never create a room the Space
        # does not have: such a room would be one nobody here asked for or could manage.
        "auto_create_room": False,
        "join_audio_muted": bool(join_audio_muted),
        "join_video_muted": bool(join_video_muted),
        "end_room_session_on_leave": bool(end_room_session_on_leave),
        "join_until": payloads.format_datetime(join_until),
    }
    if user_name:
        body["user_name"] = user_name
    if room_display_name:
        body["room_display_name"] = room_display_name
    if meta is not None:
        body["meta"] = meta
    for field, value in (("join_from", join_from), ("remove_at", remove_at)):
        if value is not None:
            body[field] = payloads.format_datetime(value)
    if remove_after_seconds_elapsed is not None:
        body["remove_after_seconds_elapsed"] = remove_after_seconds_elapsed
    assert room.remote_id  # mint_refusal refused a room SignalWire does not have
    with acting(source, actor):
        api = api_client(client, space=room.space)
        try:
            # The mirror may lag behind: ask SignalWire whether the room is still there.
            api.get_room(room.remote_id)
        except NotFoundError as exc:
            raise _refuse(
                NON_FIELD_ERRORS,
                f"SignalWire no longer has “{room}” (it was deleted there since the last "
                "sync), so a join token for it would admit no one.",
            ) from exc
        try:
            token = api.create_room_token(body)
        except RemoteValidationError as exc:
            raise form_error(exc, IssuedRoomToken) from exc
        options = {
            "join_as": join_as,
            "media_allowed": media_allowed,
            "end_room_session_on_leave": bool(end_room_session_on_leave),
            "room_display_name": room_display_name,
            "meta": meta,
        }
        record = IssuedRoomToken(
            space_id=room.space_id,
            room=room,
            room_name=room.name,
            user_name=user_name,
            role=role if role in ROLE_PRESETS else "custom",
            scopes=scopes,
            join_from=join_from,
            join_until=join_until,
            remove_at=remove_at,
            remove_after_seconds_elapsed=remove_after_seconds_elapsed,
            join_audio_muted=bool(join_audio_muted),
            join_video_muted=bool(join_video_muted),
            # The token admits no one after join_until: that is its expiry.
            expires_at=join_until,
            options=options,
            fingerprint=hashlib.sha256(token.encode()).hexdigest(),
            issued_by=(
                actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None
            ),
        )
        with transaction.atomic():
            record.save()
            audit.record_event(
                obj=record, event="issue", details={**options, "auto_create_room": False}
            )
        return token, record


def validate_meta_value(value: Any) -> None:
    """Check a meta value as the API does: a JSON object (even an empty list is refused)."""
    if not isinstance(value, dict):
        raise _refuse("meta", "Meta must be a JSON object, such as {\"topic\": \"demo\"}.")
    try:
        validate_meta(value)
    except DjangoValidationError as exc:
        raise _refuse("meta", " ".join(exc.messages)) from exc
