"""Request validation of the sandbox Space, worded like SignalWire's 422 answers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from rooms.signalwire import schema

ERROR_URL = "https://signalwire.com/docs/apis/error-codes"

INT32_MAX = 2**31 - 1
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_NAME_RE = re.compile(schema.NAME_PATTERN)
_COLOUR_RE = re.compile(schema.COLOUR_PATTERN)
# ASCII digits only, and matched whole (fullmatch): "$" alone would let a trailing newline in.
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)

_BOOLEAN_FIELDS = (
    "record_on_start",
    "tone_on_entry_and_exit",
    "room_join_video_off",
    "user_join_video_off",
    "enable_room_previews",
    "enable_chat",
    "sync_audio_video",
    "join_audio_muted",
    "join_video_muted",
    "auto_create_room",
    "end_room_session_on_leave",
)

RULES: dict[str, tuple[Any, ...]] = {
    "name": ("name", schema.NAME_MAX),
    "room_name": ("name", schema.NAME_MAX),
    "display_name": ("string", schema.DISPLAY_NAME_MAX),
    "room_display_name": ("string", schema.DISPLAY_NAME_MAX),
    "description": ("string", schema.DESCRIPTION_MAX),
    "user_name": ("string", schema.USER_NAME_MAX),
    "join_from": ("datetime",),
    "join_until": ("datetime",),
    "remove_at": ("datetime",),
    "quality": ("enum", schema.QUALITIES),
    "layout": ("enum", schema.LAYOUTS),
    "size": ("enum", schema.SIZES),
    "join_as": ("enum", schema.JOIN_AS),
    "media_allowed": ("enum", schema.MEDIA_ALLOWED),
    "max_members": ("int", schema.MAX_MEMBERS_MIN, schema.MAX_MEMBERS_MAX),
    "remove_after_seconds_elapsed": ("int", schema.REMOVE_AFTER_MIN, schema.REMOVE_AFTER_MAX),
    "meta": ("object",),
    "room_meta": ("object",),
    "permissions": ("permissions",),
    **{field: ("bool",) for field in _BOOLEAN_FIELDS},
    **{field: ("colour",) for field in schema.COLOUR_FIELDS},
}


def humanize(field: str) -> str:
    """Turn a field name into the words SignalWire's messages start with."""
    return field.replace("_", " ").capitalize()


def error_item(attribute: str | None, message: str) -> dict[str, Any]:
    """Build one entry of a 422 `errors` list."""
    return {
        "type": "validation_error",
        "code": "invalid_parameter",
        "message": message,
        "attribute": attribute,
        "url": ERROR_URL,
    }


def format_datetime(value: datetime) -> str:
    """Format an aware datetime as an RFC 3339 UTC string (fraction only when non-zero)."""
    # isoformat() always writes four year digits; strftime("%Y") writes "709" for 709.
    value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def format_stamp(value: datetime) -> str:
    """Format a created_at/updated_at stamp: always with microseconds, so it sorts as text."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_datetime(value: str) -> datetime | None:
    """Parse an RFC 3339 datetime or a date-only string; None when it is neither."""
    date_only = _DATE_RE.fullmatch(value)
    try:
        if date_only:
            year, month, day = (int(part) for part in date_only.groups())
            return datetime(year, month, day, tzinfo=UTC)
        match = _DATETIME_RE.fullmatch(value)
        if not match:
            return None
        year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        fraction, offset = match.group(7), match.group(8)
        leap = second == 60
        micro = int((fraction or ".0")[1:7].ljust(6, "0"))
        if offset in ("Z", "z"):
            tz = UTC
        else:
            sign = 1 if offset[0] == "+" else -1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        parsed = datetime(year, month, day, hour, minute, 59 if leap else second, micro, tzinfo=tz)
        if leap:
            parsed += timedelta(seconds=1)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. day 30 of February, or past year 9999 in UTC
        return None


def check_field(field: str, value: Any) -> tuple[Any, str | None]:
    """Check one known field; return (cleaned value, None) or (None, error message)."""
    rule = RULES[field]
    kind = rule[0]
    human = humanize(field)
    if kind in ("string", "name", "colour", "datetime", "enum") and not isinstance(value, str):
        return None, f"{human} must be a string"
    if kind == "name":
        if len(value) > rule[1]:
            return None, f"{human} is too long (maximum is {rule[1]} characters)"
        if not _NAME_RE.fullmatch(value):
            return None, f"{human} is invalid"
        return value, None
    if kind == "string":
        if len(value) > rule[1]:
            return None, f"{human} is too long (maximum is {rule[1]} characters)"
        return value, None
    if kind == "colour":
        if not _COLOUR_RE.fullmatch(value):
            return None, f"{human} is invalid"
        return value, None
    if kind == "datetime":
        parsed = parse_datetime(value)
        if parsed is None:
            return None, f"{human} must be a valid RFC 3339 datetime"
        return format_datetime(parsed), None
    if kind == "enum":
        if value not in rule[1]:
            return None, f"{human} is not included in the list"
        return value, None
    if kind == "bool":
        if not isinstance(value, bool):
            return None, f"{human} must be a boolean"
        return value, None
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"{human} must be an integer"
        if value < rule[1]:
            return None, f"{human} must be greater than or equal to {rule[1]}"
        if value > rule[2]:
            return None, f"{human} must be less than or equal to {rule[2]}"
        return value, None
    if kind == "object":
        if not isinstance(value, dict):
            return None, f"{human} must be a JSON object"
        if len(json.dumps(value, separators=(",", ":"))) > schema.META_MAX_JSON_CHARS:
            return None, f"{human} is too long (maximum is {schema.META_MAX_JSON_CHARS} characters)"
        return value, None
    if kind == "permissions":
        if not isinstance(value, list):
            return None, f"{human} must be an array"
        wrong = [item for item in value if item not in schema.ROOM_TOKEN_PERMISSIONS]
        if wrong:
            return None, f"{human} contains an invalid value: {wrong[0]!r}"
        return list(value), None
    raise AssertionError(f"no rule for {field}")  # pragma: no cover


def query_values(query: str) -> dict[str, list[str]]:
    """Group a query string's values by parameter name, in order."""
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def check_boolean_query(query: str, name: str) -> list[dict[str, Any]]:
    """The 422 errors of a boolean query parameter that is neither true nor false."""
    values = query_values(query).get(name)
    if values and values[-1] not in ("true", "false"):
        return [error_item(name, f"{humanize(name)} must be a boolean")]
    return []


def parse_query_integer(raw: str, name: str, minimum: int, maximum: int) -> tuple[int, str | None]:
    """Read an int32 query parameter written in ASCII digits; return (value, error message)."""
    human = humanize(name)
    if not _INTEGER_RE.fullmatch(raw):
        return 0, f"{human} must be an integer"
    value = int(raw) if len(raw) <= 12 else (maximum + 1 if raw[0] != "-" else minimum - 1)
    if value < minimum:
        return 0, f"{human} must be greater than or equal to {minimum}"
    if value > maximum:
        return 0, f"{human} must be less than or equal to {maximum}"
    return value, None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_body(
    body: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check a request body against its allowed and required fields; report every error."""
    errors: list[dict[str, Any]] = []
    clean: dict[str, Any] = {}
    missing = {field for field in required if _blank(body.get(field))}
    for field in required:
        if field in missing:
            errors.append(error_item(field, f"{humanize(field)} must be present"))
    for key, value in body.items():
        if key not in allowed:
            errors.append(error_item(key, f"{humanize(key)} is not a permitted parameter"))
            continue
        if key in missing:
            continue
        cleaned, message = check_field(key, value)
        if message:
            errors.append(error_item(key, message))
        else:
            clean[key] = cleaned
    return clean, errors


def check_join_window(
    body: dict[str, Any], clean: dict[str, Any], merged: dict[str, Any]
) -> list[dict[str, Any]]:
    """Require join_from before join_until when the body touches either of them."""
    if not ({"join_from", "join_until"} & clean.keys()):
        return []
    if any(field in body and field not in clean for field in ("join_from", "join_until")):
        return []
    start, end = merged.get("join_from"), merged.get("join_until")
    if not isinstance(start, str) or not isinstance(end, str):
        return []
    parsed_start, parsed_end = parse_datetime(start), parse_datetime(end)
    if parsed_start and parsed_end and parsed_start >= parsed_end:
        return [error_item("join_until", "Join until must be after join from")]
    return []


def conference_defaults() -> dict[str, Any]:
    """Values a new conference gets for every field the create body left out."""
    return {
        "description": None,
        "join_from": None,
        "join_until": None,
        "quality": "720p",
        "layout": "grid-responsive",
        "size": "medium",
        "record_on_start": False,
        "tone_on_entry_and_exit": True,
        "user_join_video_off": False,
        "room_join_video_off": False,
        "enable_chat": True,
        "enable_room_previews": None,
        **schema.COLOUR_DEFAULTS,
        "meta": None,
    }


def room_defaults() -> dict[str, Any]:
    """Values a new room gets for every field the create body left out."""
    return {
        "description": None,
        "max_members": 20,
        "quality": "720p",
        "fps": 20,
        "join_from": None,
        "join_until": None,
        "remove_at": None,
        "remove_after_seconds_elapsed": None,
        "layout": "grid-responsive",
        "record_on_start": False,
        "tone_on_entry_and_exit": True,
        "room_join_video_off": False,
        "user_join_video_off": False,
        "enable_room_previews": False,
        "sync_audio_video": None,
        "meta": None,
        "prioritize_handraise": False,
    }
