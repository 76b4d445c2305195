"""SignalWire calls for what happens in rooms: room sessions, their members and events.

The client's paging (links.next only on the Space, loop and size bounds) is used as is;
the filters of a listing go on its first request and SignalWire carries them in links.next.
The mappings read each payload through the shared readers of rooms.signalwire.payloads:
odd values become None (noted in `sync_note`), `raw` keeps everything as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient

SESSIONS = "/api/video/room_sessions"
LIVE = "in-progress"
COMPLETED = "completed"
# Payload keys of a session and of a member that are read as values, and the field each fills.
SESSION_CHECKED = {
    "start_time": "start_time", "end_time": "end_time", "duration": "duration",
    "cost_in_dollars": "cost_in_dollars",
}
MEMBER_CHECKED = {
    "join_time": "join_time", "leave_time": "leave_time", "duration": "duration",
    "cost_in_dollars": "cost_in_dollars",
}


def iter_pages(
    client: SignalWireClient,
    path: str,
    *,
    filters: dict[str, str] | None = None,
    page_size: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield each page of a listing with optional filters, through the client's own paging."""
    return client.iter_pages(path, params=filters, page_size=page_size)


def iter_session_pages(
    client: SignalWireClient,
    *,
    status: str | None = None,
    room_id: str | None = None,
    room_name: str | None = None,
    page_size: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield room sessions (newest first) page by page, filtered as SignalWire allows."""
    filters = {
        key: value
        for key, value in (("status", status), ("room_id", room_id), ("room_name", room_name))
        if value is not None
    }
    return iter_pages(client, SESSIONS, filters=filters, page_size=page_size)


def get_session(client: SignalWireClient, session_id: str) -> dict[str, Any]:
    """Fetch one room session's summary by id."""
    return client.get_object(f"{SESSIONS}/{quote(session_id, safe='')}")


def list_session_members(
    client: SignalWireClient,
    session_id: str,
    *,
    page_size: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Fetch the members of a room session in the order they joined (the first `limit`)."""
    path = f"{SESSIONS}/{quote(session_id, safe='')}/members"
    if limit is not None:
        return list_first(client, path, limit=limit)
    return [row for page in iter_pages(client, path, page_size=page_size) for row in page]


def list_session_events(
    client: SignalWireClient, session_id: str, *, limit: int = 1000
) -> list[dict[str, Any]]:
    """Fetch a room session's events in order, at most `limit` of them."""
    return list_first(client, f"{SESSIONS}/{quote(session_id, safe='')}/events", limit=limit)


def list_first(client: SignalWireClient, path: str, *, limit: int) -> list[dict[str, Any]]:
    """Fetch the first `limit` rows of a listing, reading no page past them."""
    rows: list[dict[str, Any]] = []
    for page in iter_pages(client, path, page_size=min(limit, 1000)):
        rows.extend(page)
        if len(rows) >= limit:
            return rows[:limit]
    return rows


# --- payload mapping --------------------------------------------------------------------


def session_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a session payload into field values (its owner is linked by the sync)."""
    text = payloads.remote_text
    values = {
        "remote_room_id": text(row.get("room_id"))[:64],
        "room_name": text(row.get("name"))[:100],
        "status": text(row.get("status"))[:40],
        "start_time": payloads.parse_remote_datetime(row.get("start_time")),
        "end_time": payloads.parse_remote_datetime(row.get("end_time")),
        "duration": payloads.remote_seconds(row.get("duration")),
        "locked": row.get("locked") if isinstance(row.get("locked"), bool) else None,
        "cost_in_dollars": payloads.remote_money(row.get("cost_in_dollars")),
        "remote_updated_at": text(row.get("updated_at"))[:40],
        "raw": row,
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, SESSION_CHECKED)
    return values


def member_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a member payload into field values; odd values become None, raw keeps all."""
    values = {
        "name": payloads.remote_text(row.get("name"))[:255],
        "join_time": payloads.parse_remote_datetime(row.get("join_time")),
        "leave_time": payloads.parse_remote_datetime(row.get("leave_time")),
        "duration": payloads.remote_seconds(row.get("duration")),
        "cost_in_dollars": payloads.remote_money(row.get("cost_in_dollars")),
        "raw": row,
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, MEMBER_CHECKED)
    return values


def member_totals(members: list[dict[str, Any]]) -> dict[str, int]:
    """Members present, members in all, and the seconds of those who left (each id once)."""
    unique: dict[Any, dict[str, Any]] = {}
    for member in members:
        unique.setdefault(member.get("id"), member)
    present = sum(1 for m in unique.values() if m.get("leave_time") is None)
    seconds = sum(payloads.remote_seconds(m.get("duration")) or 0 for m in unique.values())
    return {"members_now": present, "member_count": len(unique), "member_seconds": seconds}
