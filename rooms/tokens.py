"""Conference token and room join token writes: remote first, then a short transaction.

Reveals, resets and mints are audited through the same context as the mirror services; the
values themselves never reach an audit row, a log line or the session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from rooms.models import AuditEntry, Conference, ConferenceToken, IssuedRoomToken, Room
from rooms.services import _acting, _client, _form_error, _store_tokens
from rooms.signalwire import payloads, schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import ValidationError as RemoteValidationError

logger = logging.getLogger("rooms.tokens")

ROLE_PRESETS: dict[str, tuple[str, ...]] = {
    "moderator": schema.MODERATOR_PERMISSIONS,
    "guest": schema.GUEST_PERMISSIONS,
}


def conference_tokens_refresh(
    *,
    conference: Conference,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> list[ConferenceToken]:
    """Mirror a conference's moderator and guest tokens as SignalWire has them now."""
    if not conference.remote_id:
        return []
    with _acting(source, actor):
        answers = _client(client).list_conference_tokens(conference.remote_id)
        with transaction.atomic():
            return _store_tokens(conference, answers)


def conference_token_reset(
    *,
    token: ConferenceToken,
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> ConferenceToken:
    """Rotate a conference token in SignalWire and store the new value (audited, masked)."""
    with _acting(source, actor):
        answer = _client(client).reset_conference_token(token.remote_id)
        values = payloads.token_fields(answer)
        now = timezone.now()
        for field in ("name", "token", "scopes"):
            setattr(token, field, values[field])
        token.rotated_at = token.last_synced_at = now
        with transaction.atomic():
            token.save(update_fields=["name", "token", "scopes", "rotated_at", "last_synced_at"])
        return token


def conference_token_reveal(
    *, token: ConferenceToken, actor: Any = None, source: str = AuditEntry.Source.ADMIN
) -> str:
    """Return a token's value and record who saw it (never the value itself)."""
    with _acting(source, actor), transaction.atomic():
        AuditEntry.objects.log_create(
            token,
            action=AuditEntry.Action.ACCESS,
            changes=None,
            force_log=True,
            additional_data={**token.get_additional_data(), "access": "reveal"},
        )
    return token.token


# --- room join tokens ------------------------------------------------------------------


def _claims(token: str) -> dict:
    """Read the claims of a JWT-shaped token without checking it (for its expiry)."""
    try:
        part = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}


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
    actor: Any = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> tuple[str, IssuedRoomToken]:
    """Mint a join token for a room; keep who issued it for whom and its fingerprint only."""
    scopes = list(ROLE_PRESETS[role] if role in ROLE_PRESETS else permissions or [])
    unknown = sorted(set(scopes) - set(schema.ROOM_TOKEN_PERMISSIONS))
    if unknown:
        raise DjangoValidationError({"permissions": f"Unknown scopes: {', '.join(unknown)}"})
    if join_from and join_until and join_from >= join_until:
        raise DjangoValidationError({"join_until": "Join until must be after join from."})
    body: dict[str, Any] = {
        "room_name": room.name,
        "permissions": scopes,
        "join_audio_muted": bool(join_audio_muted),
        "join_video_muted": bool(join_video_muted),
    }
    if user_name:
        body["user_name"] = user_name
    for field, value in (("join_from", join_from), ("join_until", join_until),
                         ("remove_at", remove_at)):
        if value is not None:
            body[field] = payloads.format_datetime(value)
    if remove_after_seconds_elapsed is not None:
        body["remove_after_seconds_elapsed"] = remove_after_seconds_elapsed
    with _acting(source, actor):
        try:
            token = _client(client).create_room_token(body)
        except RemoteValidationError as exc:
            raise _form_error(exc, IssuedRoomToken) from exc
        exp = _claims(token).get("exp")
        record = IssuedRoomToken(
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
            expires_at=datetime.fromtimestamp(exp, UTC) if isinstance(exp, int) else None,
            fingerprint=hashlib.sha256(token.encode()).hexdigest(),
            issued_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        with transaction.atomic():
            record.save()
        return token, record
