"""SignalWire calls for room recordings: list, read (with a fresh link), delete; the mapping.

Each read of a recording carries a `uri` signed for `media_ttl` seconds. Callers that
mirror recordings drop it (`without_uri`); only a download asks for one and passes it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.session import API, quote_segment
from rooms.signalwire.sessions import iter_pages

RECORDINGS = f"{API}/room_recordings"
# Payload keys read as values, and the field each fills.
CHECKED = {
    "started_at": "started_at", "finished_at": "finished_at", "duration": "duration",
    "size_in_bytes": "size_in_bytes", "cost_in_dollars": "cost_in_dollars",
    "created_at": "remote_created_at",
}


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


def recording_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a recording payload into field values; odd values become None, raw keeps all."""
    text = payloads.remote_text
    values = {
        "remote_session_id": text(row.get("room_session_id"))[:64],
        "status": text(row.get("status"))[:40],
        "started_at": payloads.parse_remote_datetime(row.get("started_at")),
        "finished_at": payloads.parse_remote_datetime(row.get("finished_at")),
        "duration": payloads.remote_seconds(row.get("duration")),
        "size_in_bytes": payloads.remote_bytes(row.get("size_in_bytes")),
        "format": text(row.get("format"))[:40],
        "cost_in_dollars": payloads.remote_money(row.get("cost_in_dollars")),
        "remote_created_at": payloads.parse_remote_datetime(row.get("created_at")),
        "remote_updated_at": text(row.get("updated_at"))[:40],
        "raw": without_uri(row),
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, CHECKED)
    return values
