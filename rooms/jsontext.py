"""One canonical JSON text form for stored SignalWire payloads, so they compare as text.

The sync tells an unchanged payload from a changed one by comparing the stored JSON text
with the listed payload serialised the same way; decoding the stored text instead would
cost more than the rest of a no-change page. The form is compact, UTF-8 and has its keys
sorted, so the order SignalWire happens to send keys in does not matter. Both writers
agree on it: orjson on the sync's hot path, and CanonicalJSONEncoder when the ORM saves a
row (Django's JSONField serialises with the standard library). Where they could differ
(floats in exponent form) the comparison falls back to decoding, so a difference costs
time, never correctness.

The sync keeps a digest of that text beside each mirrored payload (raw_digest), so a
no-change page compares 32-character digests in Python instead of sending every payload
to the database to be compared there.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson


class CanonicalJSONEncoder(json.JSONEncoder):
    """The standard library encoder made to write what dumps writes: no spaces, UTF-8, sorted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["separators"] = (",", ":")
        kwargs["ensure_ascii"] = False
        kwargs["sort_keys"] = True
        super().__init__(*args, **kwargs)


def dumps(value: Any, *, sort_keys: bool = True) -> str:
    """Serialise plain JSON data in the canonical text form (keys in their order if asked)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None).decode()
    except TypeError:
        # orjson refuses integers beyond 64 bits, which the standard library keeps.
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys
        )



# Characters of a payload digest (a 128-bit BLAKE2b, in hex).
DIGEST_LENGTH = 32


def canonical(value: Any) -> bytes:
    """The canonical text form of plain JSON data, as UTF-8 bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return dumps(value).encode()


def digest_text(text: bytes) -> str:
    """Digest a payload already in its canonical text form (see canonical)."""
    return hashlib.blake2b(text, digest_size=DIGEST_LENGTH // 2).hexdigest()


def digest(value: Any) -> str:
    """Digest a payload's canonical text form: equal payloads, equal digests."""
    return digest_text(canonical(value))
