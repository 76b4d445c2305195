"""Mapping between the portal's models and SignalWire's JSON objects.

Request bodies hold exactly the fields the API accepts for that call; answers are turned
into model field values with unknown values kept as they came (the raw payload keeps
everything, including fields the portal does not know yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from rooms import jsontext
from rooms.signalwire import schema


def format_datetime(value: datetime | None) -> str | None:
    """Render a datetime as RFC 3339 in UTC, as SignalWire expects."""
    if value is None:
        return None
    # Fractions of a second are kept (RFC 3339 allows them): dropping them could turn a
    # short but valid join window into an empty one.
    spec = "microseconds" if value.microsecond else "seconds"
    return value.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def parse_remote_datetime(value: Any) -> datetime | None:
    """Parse an RFC 3339 (or date-only) value from SignalWire, in UTC.

    None when absent, unreadable, or not a possible time: a valid-looking value such as
    9999-12-31T23:59:59-23:59 lies past year 9999 in UTC, which no database column holds.
    """
    if not value or not isinstance(value, str):
        return None
    if len(value) == 10:
        value = f"{value}T00:00:00Z"
    try:
        moment = parse_datetime(value)
        if moment is None:
            return None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# Largest values the mirror's columns hold: PositiveIntegerField, PositiveBigIntegerField
# and DecimalField(max_digits=14, decimal_places=4).
SECONDS_MAX = 2**31 - 1
BYTES_MAX = 2**63 - 1
MONEY_LIMIT = Decimal("1e10")
# Length of the remote id columns of sessions, members, recordings, streams and tokens.
REMOTE_ID_MAX = 64


def remote_text(value: Any) -> str:
    """A text value as sent, or "" for anything that is not text."""
    return value if isinstance(value, str) else ""


def remote_seconds(value: Any) -> int | None:
    """A count of seconds; None when absent, not a number, negative or out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value < 0 or value > SECONDS_MAX:  # NaN or out of range
        return None
    return int(value)


def remote_bytes(value: Any) -> int | None:
    """A size in bytes; None when absent, not a whole number, negative or too large to store."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= BYTES_MAX else None


def remote_money(value: Any) -> Decimal | None:
    """An amount in dollars to four places; None when unreadable, negative or too large."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.0001"))
    except (InvalidOperation, ValueError):
        return None
    # A cost is never negative: storing one would lower usage totals.
    if not amount.is_finite() or amount < 0 or amount >= MONEY_LIMIT:
        return None
    return amount


def unknown_values_note(
    data: dict[str, Any], values: dict[str, Any], fields: Mapping[str, str]
) -> str:
    """Say which values SignalWire sent that are stored as unknown; "" when none were.

    `fields` maps payload keys to the model fields read from them. A key that was sent
    with a value (not null, not empty) whose field holds None could not be stored.
    """
    odd = [
        f"{key} {_shown(data[key])}"
        for key, field in fields.items()
        if data.get(key) not in (None, "") and values.get(field) is None
    ]
    if not odd:
        return ""
    return (
        f"SignalWire sent values the portal cannot store, kept as unknown: {'; '.join(odd)} "
        "(the raw payload keeps them)."
    )


def _shown(value: Any) -> str:
    text = jsontext.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def holds_nul(value: object) -> bool:
    """Tell whether a JSON value holds a NUL character in any key or text."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


def nul_fields(item: dict[str, Any]) -> list[str]:
    """Name the top-level fields of a payload that hold a NUL character anywhere."""
    if "\\u0000" not in jsontext.dumps(item):  # one fast scan; the walk only when needed
        return []
    return sorted(str(key) for key, value in item.items() if holds_nul(key) or holds_nul(value))


def shown_id(remote_id: str) -> str:
    """A listed id as a run's error may quote it: at most 64 characters, NUL spelt out."""
    shown = remote_id[:REMOTE_ID_MAX].replace("\x00", "\\x00")
    return shown if len(remote_id) <= REMOTE_ID_MAX else f"{shown}..."


def listed_row_problem(item: dict[str, Any], *, refuses_nul: bool) -> str | None:
    """Say why a listed row with a text id cannot be stored, naming the field; else None.

    refuses_nul: the database cannot store U+0000 (PostgreSQL's text and jsonb).
    """
    if len(item["id"]) > REMOTE_ID_MAX:
        return f"its id is longer than {REMOTE_ID_MAX} characters"
    if refuses_nul and (held := nul_fields(item)):
        return (
            f"{', '.join(held)} holds a NUL character, which PostgreSQL cannot store; "
            "correct it in SignalWire"
        )
    return None


ENUM_FIELDS = frozenset({"quality", "layout", "size"})
# Text fields of the request schemas and their maxLength.
TEXT_LIMITS = {"display_name": schema.DISPLAY_NAME_MAX, "description": schema.DESCRIPTION_MAX}


def refused_text(field: str, value: Any) -> bool:
    """Tell a text value the API's request schema (or the portal's forms) would refuse."""
    limit = TEXT_LIMITS.get(field)
    return limit is not None and isinstance(value, str) and (len(value) > limit or "\x00" in value)


def _body(instance: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The request body of the given fields, in the shapes SignalWire accepts."""
    body: dict[str, Any] = {}
    remote = getattr(instance, "raw", None)
    remote = remote if isinstance(remote, dict) else {}
    kept_remote: set[str] = set()
    for field in fields:
        value = getattr(instance, field)
        if isinstance(value, datetime):
            value = format_datetime(value)
        if value is None or (value == "" and field in ENUM_FIELDS):
            # SignalWire's request schemas take no nulls, and an unset choice is no
            # value either: leave the field out so SignalWire keeps its default.
            continue
        if refused_text(field, value) and remote.get(field) == value:
            # SignalWire's own value, which its request schema would now refuse: left
            # out, so the PUT keeps it as it is and the other fields still land.
            kept_remote.add(field)
            continue
        body[field] = value
    # Conferences require a display name and rooms default it to the name: staff may
    # leave it blank, so the name stands in.
    blank_name = not body.get("display_name") and "display_name" not in kept_remote
    if "display_name" in fields and blank_name:
        body["display_name"] = instance.name
    return body


def conference_create_body(conference: Any) -> dict[str, Any]:
    """Body of POST /api/video/conferences for a local conference."""
    return _body(conference, schema.CONFERENCE_CREATE_FIELDS)


def conference_update_body(conference: Any) -> dict[str, Any]:
    """Body of PUT /api/video/conferences/{id}: every field the portal manages."""
    return _body(conference, schema.CONFERENCE_UPDATE_FIELDS)


def room_create_body(room: Any) -> dict[str, Any]:
    """Body of POST /api/video/rooms for a local room."""
    return _body(room, schema.ROOM_CREATE_FIELDS)


def room_update_body(room: Any) -> dict[str, Any]:
    """Body of PUT /api/video/rooms/{id}: every field the portal manages."""
    return _body(room, schema.ROOM_UPDATE_FIELDS)


# Fields a conference or room answer maps onto, and how to read each.
_DATETIME_FIELDS = {"join_from", "join_until", "remove_at"}
_TEXT_FIELDS = {"display_name", "description"}
_BOOL_FIELDS = {
    "record_on_start",
    "tone_on_entry_and_exit",
    "user_join_video_off",
    "room_join_video_off",
    "enable_chat",
    "prioritize_handraise",
}
_NULLABLE_BOOL_FIELDS = {"enable_room_previews", "sync_audio_video"}
_INT_FIELDS = {"max_members", "fps", "remove_after_seconds_elapsed"}

CONFERENCE_MODEL_FIELDS = tuple(
    f for f in schema.CONFERENCE_RESPONSE_FIELDS if f not in ("id", "created_at", "updated_at")
)
ROOM_MODEL_FIELDS = tuple(
    f for f in schema.ROOM_RESPONSE_FIELDS if f not in ("id", "created_at", "updated_at")
)
MIRROR_FIELDS = ("remote_id", "remote_created_at", "remote_updated_at", "raw")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _nullable_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _as_sent(value: Any) -> str:
    # name, quality, layout, size: kept as sent, even values the portal does not know.
    return "" if value is None else str(value)


def _colour(field: str) -> Any:
    default = schema.COLOUR_DEFAULTS[field]
    return lambda value: value if isinstance(value, str) else default


def _reader(field: str) -> Any:
    """How to read one field of an answer into its model value."""
    if field in _DATETIME_FIELDS:
        return parse_remote_datetime
    if field in _TEXT_FIELDS:
        return _text
    if field in _BOOL_FIELDS:
        return bool
    if field in _NULLABLE_BOOL_FIELDS:
        return _nullable_bool
    if field in _INT_FIELDS:
        return _int
    if field == "meta":
        return _object
    if field in schema.COLOUR_FIELDS:
        return _colour(field)
    return _as_sent


# Worked out once: the sync maps every listed row through these.
_READERS = {
    field: _reader(field) for field in (*CONFERENCE_MODEL_FIELDS, *ROOM_MODEL_FIELDS)
}


# Times of a conference, room or stream payload, by payload key: the model field each fills.
_MIRROR_MOMENTS = {
    **{f: f for f in sorted(_DATETIME_FIELDS)},
    "created_at": "remote_created_at",
    "updated_at": "remote_updated_at",
}


def _fields_from_payload(data: dict[str, Any], model_fields: tuple[str, ...]) -> dict[str, Any]:
    readers = _READERS
    values = {f: readers[f](data[f]) for f in model_fields if f in data}
    values["remote_id"] = str(data["id"])
    values["remote_created_at"] = parse_remote_datetime(data.get("created_at"))
    values["remote_updated_at"] = parse_remote_datetime(data.get("updated_at"))
    values["raw"] = data
    note = unknown_values_note(data, values, _MIRROR_MOMENTS)
    if note:
        values["last_error"] = note
    return values


def conference_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Model field values for a Conference from SignalWire's conference object."""
    return _fields_from_payload(data, CONFERENCE_MODEL_FIELDS)


def room_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Model field values for a Room from SignalWire's room object."""
    values = _fields_from_payload(data, ROOM_MODEL_FIELDS)
    if values.get("max_members") is None and "max_members" in values:
        values["max_members"] = 20
    return values


def token_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Model field values for a ConferenceToken from SignalWire's token object."""
    scopes = data.get("scopes")
    return {
        "remote_id": str(data["id"]),
        "name": data.get("name") or "",
        "token": data.get("token") or "",
        "scopes": scopes if isinstance(scopes, list) else [],
    }


STREAM_MODEL_FIELDS = ("url", "stream_type", "width", "height", "fps")


def _count(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and 0 <= number <= 2147483647 else None


_STREAM_CHECKED = {
    "width": "width", "height": "height", "fps": "fps",
    "created_at": "remote_created_at", "updated_at": "remote_updated_at",
}


def stream_body(stream: Any) -> dict[str, Any]:
    """The create or update body of a stream: its url, the only field the API takes."""
    return {"url": stream.url}


def stream_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Model field values for a Stream from SignalWire's stream object.

    The raw payload is kept without its url: the url holds the stream key and lives in
    the url field alone, so the raw copy shown in admin never reveals it.
    """
    values = {
        "remote_id": str(data["id"]),
        "url": _text(data.get("url")),
        "stream_type": _text(data.get("stream_type"))[:40],
        "width": _count(data.get("width")),
        "height": _count(data.get("height")),
        "fps": _count(data.get("fps")),
        "remote_created_at": parse_remote_datetime(data.get("created_at")),
        "remote_updated_at": parse_remote_datetime(data.get("updated_at")),
        "raw": {k: v for k, v in data.items() if k != "url"},
    }
    note = unknown_values_note(data, values, _STREAM_CHECKED)
    if note:
        values["last_error"] = note
    return values
