"""One compact JSON text form for stored SignalWire payloads, so they compare as text.

The sync tells an unchanged payload from a changed one by comparing the stored JSON text
with the listed payload serialised the same way; decoding the stored text instead would
cost more than the rest of a no-change page. Both writers agree on the form: orjson on
the sync's hot path, and CompactJSONEncoder when the ORM saves a row (Django's JSONField
serialises with the standard library). Where they could differ (floats in exponent form)
the comparison falls back to decoding, so a difference costs time, never correctness.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


class CompactJSONEncoder(json.JSONEncoder):
    """The standard library encoder made to write what orjson writes: no spaces, UTF-8."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["separators"] = (",", ":")
        kwargs["ensure_ascii"] = False
        super().__init__(*args, **kwargs)


def dumps(value: Any) -> str:
    """Serialise plain JSON data (from json.loads) in the compact text form."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # orjson refuses integers beyond 64 bits, which the standard library keeps.
        return json.dumps(value, cls=CompactJSONEncoder)


def same(stored: Any, value: Any) -> bool:
    """Tell whether a stored JSON value (SQLite text, or decoded by PostgreSQL) equals `value`."""
    if isinstance(stored, bytes | bytearray | memoryview):
        stored = bytes(stored).decode()
    if isinstance(stored, str):
        return stored == dumps(value) or json.loads(stored) == value
    return stored == value
