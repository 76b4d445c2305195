"""SignalWire calls for room recordings: list, read (with a fresh link), delete.

Each read of a recording carries a `uri` signed for `media_ttl` seconds. Callers that
mirror recordings drop it (`without_uri`); only a download asks for one and passes it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rooms.signalwire.activity import iter_pages
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.session import API, quote_segment

RECORDINGS = f"{API}/room_recordings"


def without_uri(row: dict[str, Any]) -> dict[str, Any]:
    """Return a recording payload without its signed link, for storing or showing."""
    return {key: value for key, value in row.items() if key != "uri"}


def iter_recording_pages(
    client: SignalWireClient, *, page_size: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Yield the Space's room recordings (newest first) page by page."""
    return iter_pages(client, RECORDINGS, page_size=page_size)


def get_recording(client: SignalWireClient, recording_id: str) -> dict[str, Any]:
    """Fetch one recording; a completed one carries a link SignalWire signed just now."""
    return client.get_object(f"{RECORDINGS}/{quote_segment(recording_id)}")


def delete_recording(client: SignalWireClient, recording_id: str) -> None:
    """Delete a recording (and its file) in SignalWire."""
    client.delete_object(f"{RECORDINGS}/{quote_segment(recording_id)}")
