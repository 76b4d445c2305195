"""The sandbox's loopback control API: reset, seed, latency, faults, the request log, sessions.

Each request acts on the first project served, or on the one its `project` query parameter
names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rooms.signalwire.urls import is_loopback
from sandbox.errors import SandboxNotFound
from sandbox.recordings import MEDIA_PREFIX
from sandbox.state import SandboxSpace
from sandbox.validation import query_values
from sandbox.wire import Reply, method_not_allowed, parse_json

CONTROL_PREFIX = "/__sandbox__/"
MAX_SEED_OBJECTS = 1_000_000
FAULT_OPTIONS = frozenset(
    {"status", "count", "fraction", "retry_after", "methods", "path_prefix", "after_processing"}
)

SESSION_CONTROL = re.compile(r"^/__sandbox__/sessions/([^/]+)/(join|leave|end)$")
MEDIA_PATH = re.compile("^" + re.escape(MEDIA_PREFIX) + r"([0-9a-fA-F-]{36})\.mp4$")
# Exact control paths, besides those of SESSION_CONTROL and MEDIA_PATH.
ACTIVITY_CONTROL_ROUTES: dict[str, frozenset[str]] = {
    "/__sandbox__/sessions": frozenset({"GET", "POST"}),
    "/__sandbox__/clock": frozenset({"POST"}),
}
CONTROL_ROUTES: dict[str, frozenset[str]] = {
    "/__sandbox__/reset": frozenset({"POST"}),
    "/__sandbox__/seed": frozenset({"POST"}),
    "/__sandbox__/latency": frozenset({"POST"}),
    "/__sandbox__/faults": frozenset({"POST", "DELETE"}),
    "/__sandbox__/requests": frozenset({"GET", "DELETE"}),
    "/__sandbox__/state": frozenset({"GET"}),
    "/__sandbox__/projects": frozenset({"GET"}),
    **ACTIVITY_CONTROL_ROUTES,
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


def is_control_path(path: str) -> bool:
    """Tell whether a request path belongs to the control API rather than the Video API."""
    return path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/")


def control_reply(
    spaces: Mapping[str, SandboxSpace],
    client_host: str,
    method: str,
    path: str,
    raw: bytes,
    query: str = "",
) -> Reply:
    """Answer a control API request; a client that is not on the loopback gets a 403."""
    if not is_loopback(client_host):
        return Reply(403, {"error": "Forbidden"})
    media = MEDIA_PATH.match(path)
    if media is not None:
        if method not in ("GET", "HEAD"):
            return method_not_allowed(("GET",))
        recording_id = media.group(1).lower()
        status, payload = _media_space(spaces, recording_id).download(recording_id, query)
        if payload is None:
            return Reply(status, {"error": "Forbidden" if status == 403 else "Not Found"})
        return Reply.media(payload, "video/mp4")
    allowed = CONTROL_ROUTES.get(path.rstrip("/"))
    if allowed is None and SESSION_CONTROL.match(path.rstrip("/")):
        allowed = frozenset({"POST"})
    if allowed is None:
        return Reply(404, {"error": "Not Found"})
    if method not in allowed:
        return method_not_allowed(allowed)
    named = query_values(query).get("project")
    space = next(iter(spaces.values())) if not named else spaces.get(named[-1])
    if space is None:
        return Reply(404, {"error": "no such project"})
    if path.rstrip("/") == "/__sandbox__/projects":
        listed = [{"project_id": pid, **each.state()} for pid, each in spaces.items()]
        return Reply(200, {"projects": listed})
    # Whatever its Content-Type (curl -d says a form): the control API reads only JSON.
    body: Any = parse_json(raw) if raw.strip(b" \t\r\n") else {}
    if not isinstance(body, dict):
        return Reply(400, {"error": "the body must be a JSON object"})
    try:
        return _answer(space, method, path.rstrip("/"), body)
    except SandboxNotFound:
        return Reply(404, {"error": "Not Found"})
    except (TypeError, ValueError) as exc:
        return Reply(400, {"error": str(exc)})


def _media_space(spaces: Mapping[str, SandboxSpace], recording_id: str) -> SandboxSpace:
    """The Space holding the recording (a media link names no project), else the first."""
    for space in spaces.values():
        if recording_id in space.room_recordings:
            return space
    return next(iter(spaces.values()))


def _answer(space: SandboxSpace, method: str, path: str, body: dict[str, Any]) -> Reply:
    route = (method, path)
    if route == ("POST", "/__sandbox__/reset"):
        space.reset()
        return Reply(200, space.state())
    if route == ("POST", "/__sandbox__/seed"):
        counts = [body.get(name, 0) for name in ("conferences", "rooms", "sessions")]
        if any(isinstance(n, int) and n > MAX_SEED_OBJECTS for n in counts):
            raise ValueError(f"at most {MAX_SEED_OBJECTS} objects of a kind per seed")
        space.seed(
            conferences=body.get("conferences", 0),
            rooms=body.get("rooms", 0),
            seed=body.get("seed", 0),
            sessions=body.get("sessions", 0),
            variant=body.get("variant", 0),
        )
        return Reply(200, space.state())
    if route == ("POST", "/__sandbox__/latency"):
        seconds = body.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError("seconds must be a number")
        space.set_latency(seconds)
        return Reply(200, {"seconds": space.latency})
    if route == ("POST", "/__sandbox__/faults"):
        unknown = set(body) - FAULT_OPTIONS
        if unknown:
            raise ValueError(f"unknown fault options: {sorted(unknown)}")
        if "status" not in body:
            raise ValueError("status is required")
        methods = body.get("methods")
        if methods is not None and not (
            isinstance(methods, list) and all(isinstance(m, str) for m in methods)
        ):
            raise ValueError("methods must be a list of strings")
        space.inject_fault(**body)
        return Reply(200, {"faults": len(space.faults)})
    if route == ("DELETE", "/__sandbox__/faults"):
        space.clear_faults()
        return Reply(200, {"faults": 0})
    if route == ("GET", "/__sandbox__/requests"):
        return Reply(200, {"requests": space.requests})
    if route == ("DELETE", "/__sandbox__/requests"):
        space.clear_requests()
        return Reply(200, {"requests": []})
    if route == ("GET", "/__sandbox__/state"):
        return Reply(200, space.state())
    answered = session_control(space, method, path, body)
    if answered is not None:
        return Reply(*answered)
    return Reply(404, {"error": "Not Found"})
