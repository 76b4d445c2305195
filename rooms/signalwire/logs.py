"""SignalWire calls for video logs (the billing record of each session), and their mapping.

A log is read-only. The listing is newest first by creation time; `created_after` bounds
it for an incremental read and `include_deleted=true` lists discarded logs too, each then
only its id, `discarded_at` and `created_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from rooms import jsontext
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.session import API

LOGS = f"{API}/logs"
# Payload keys read as values, and the field each fills.
CHECKED = {
    "started_at": "started_at", "ended_at": "ended_at", "charge": "charge",
    "created_at": "remote_created_at", "discarded_at": "discarded_at",
}


def iter_log_pages(
    client: SignalWireClient,
    *,
    created_after: datetime | None = None,
    include_deleted: bool = True,
    page_size: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield the Space's video logs (newest first) page by page, made after a moment if given."""
    filters = {"include_deleted": "true" if include_deleted else "false"}
    if created_after is not None:
        filters["created_after"] = payloads.format_datetime(created_after) or ""
    return client.iter_pages(LOGS, params=filters, page_size=page_size)


def session_id_of(url: Any) -> str:
    """The room session id a log's url names (…/room_sessions/ID), else ""."""
    parts = urlsplit(payloads.remote_text(url)).path.rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "room_sessions" else ""


def log_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a log payload (a discarded one too) into field values; raw keeps all."""
    text = payloads.remote_text
    locked = row.get("locked")
    values = {
        "source": text(row.get("source"))[:40],
        "log_type": text(row.get("type"))[:60],
        "remote_session_id": session_id_of(row.get("url"))[:64],
        "room_name": text(row.get("room_name"))[:100],
        "status": text(row.get("status"))[:40],
        "locked": locked if isinstance(locked, bool) else None,
        "started_at": payloads.parse_remote_datetime(row.get("started_at")),
        "ended_at": payloads.parse_remote_datetime(row.get("ended_at")),
        "charge": payloads.remote_money(row.get("charge")),
        "remote_created_at": payloads.parse_remote_datetime(row.get("created_at")),
        "discarded_at": payloads.parse_remote_datetime(row.get("discarded_at")),
        "raw": row,
        "raw_digest": jsontext.digest(row),
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, CHECKED)
    return values
