"""The sandbox's loopback control routes that drive sessions, its clock and media links."""

from __future__ import annotations

import re
from typing import Any

from sandbox.recordings import MEDIA_PREFIX
from sandbox.state import SandboxSpace

SESSION_CONTROL = re.compile(r"^/__sandbox__/sessions/([^/]+)/(join|leave|end)$")
MEDIA_PATH = re.compile("^" + re.escape(MEDIA_PREFIX) + r"([0-9a-fA-F-]{36})\.mp4$")
# Exact control paths, besides those of SESSION_CONTROL and MEDIA_PATH.
ACTIVITY_CONTROL_ROUTES: dict[str, frozenset[str]] = {
    "/__sandbox__/sessions": frozenset({"GET", "POST"}),
    "/__sandbox__/clock": frozenset({"POST"}),
}


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"unknown options: {sorted(unknown)}")


def session_control(
    space: SandboxSpace, method: str, path: str, body: dict[str, Any]
) -> tuple[int, Any] | None:
    """Answer a session or clock control request; None when the path is not one of them."""
    if path == "/__sandbox__/sessions":
        if method == "GET":
            return 200, {"live": space.live_sessions()}
        _only(body, {"room_id", "room_name", "members", "record"})
        return 200, space.start_session(
            room_id=body.get("room_id"),
            room_name=body.get("room_name"),
            members=body.get("members", []),
            record=body.get("record"),
        )
    if path == "/__sandbox__/clock":
        _only(body, {"advance"})
        return 200, {"offset": space.advance_clock(body.get("advance", 0))}
    match = SESSION_CONTROL.match(path)
    if match is None:
        return None
    session_id, verb = match.groups()
    if verb == "join":
        _only(body, {"name"})
        return 200, space.join_session(session_id, body.get("name"))
    if verb == "leave":
        _only(body, {"name", "member_id"})
        if ("name" in body) == ("member_id" in body):
            raise ValueError("give name or member_id")
        return 200, space.leave_session(session_id, body.get("name"), body.get("member_id"))
    _only(body, {"recording_status"})
    return 200, space.end_session(session_id, body.get("recording_status", "completed"))
