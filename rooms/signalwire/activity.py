"""SignalWire calls for what happens in rooms: room sessions, their members and events.

The client's paging (links.next only on the Space, loop and size bounds) is used as is;
the filters of a listing go on its first request and SignalWire carries them in links.next.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from rooms.signalwire.client import SignalWireClient

SESSIONS = "/api/video/room_sessions"
LIVE = "in-progress"
COMPLETED = "completed"


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
