"""The sandbox's routes for streams, sessions, recordings and logs, and their handlers.

Ids in paths. An id that names nothing is a 404 on the operations that describe one (a
single object, and a stream added to a room). The listings under a parent (a session's
members, events and recordings, a recording's events, a room's streams) describe no 404
but take a UUID: an id that is not one is a 422 naming `id` ("Id must be a valid UUID"),
and a well-formed id of a parent that does not exist lists nothing (200, empty). A
conference's streams take any string as id, so an unknown one lists nothing too.

Bodies. The stream operations describe no 400: a stream body that is missing, not JSON or
not a JSON object is a 422 (a missing url, or the body itself with no attribute), where the
other operations answer 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.errors import SandboxValidationError
from sandbox.state import SandboxSpace
from sandbox.validation import error_item

# Path template of the OpenAPI description -> method -> action.
ACTIVITY_ROUTES: dict[str, dict[str, str]] = {
    "/api/video/rooms/{id}/streams": {"GET": "list_room_streams", "POST": "create_room_stream"},
    "/api/video/conferences/{id}/streams": {
        "GET": "list_conf_streams",
        "POST": "create_conf_stream",
    },
    "/api/video/streams/{id}": {
        "GET": "get_stream",
        "PUT": "update_stream",
        "DELETE": "delete_stream",
    },
    "/api/video/room_sessions": {"GET": "list_sessions"},
    "/api/video/room_sessions/{id}": {"GET": "get_session"},
    "/api/video/room_sessions/{id}/members": {"GET": "list_members"},
    "/api/video/room_sessions/{id}/events": {"GET": "list_session_events"},
    "/api/video/room_sessions/{id}/recordings": {"GET": "list_session_recordings"},
    "/api/video/room_recordings": {"GET": "list_recordings"},
    "/api/video/room_recordings/{id}": {"GET": "get_recording", "DELETE": "delete_recording"},
    "/api/video/room_recordings/{id}/events": {"GET": "list_recording_events"},
    "/api/video/logs": {"GET": "list_logs"},
    "/api/video/logs/{id}": {"GET": "get_log"},
}
ACTIVITY_BODY_REQUIRED = frozenset({"create_room_stream", "create_conf_stream", "update_stream"})
# Listings under a parent whose id the spec makes a UUID, with no 404 to answer.
UUID_PARENT_LISTINGS = frozenset(
    {
        "list_members",
        "list_session_events",
        "list_session_recordings",
        "list_recording_events",
        "list_room_streams",
    }
)
# The stream operations: the spec lists no 400 for them, so a bad body is a 422.
STREAM_ACTIONS = frozenset(
    action
    for template, methods in ACTIVITY_ROUTES.items()
    if "streams" in template
    for action in methods.values()
)
BODY_NOT_AN_OBJECT = "Body must be a JSON object"
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def check_parent_id(action: str, args: list[str]) -> None:
    """Refuse (422) a parent id that is not a UUID on the listings that take one."""
    if action in UUID_PARENT_LISTINGS and not _UUID.fullmatch(args[0]):
        raise SandboxValidationError([error_item("id", "Id must be a valid UUID")])


def stream_body_refused() -> SandboxValidationError:
    """The 422 of a stream operation whose body is not JSON or not a JSON object."""
    return SandboxValidationError([error_item(None, BODY_NOT_AN_OBJECT)])


class Request:
    """What a handler needs of one API request."""

    def __init__(self, args: list[str], base_url: str, origin: str, query: str, body: Any):
        self.id = args[0] if args else ""
        self.base_url = base_url
        self.origin = origin
        self.query = query
        self.body = body

    def object_body(self) -> dict[str, Any]:
        """The body, which must be a JSON object (the stream bodies get 422, not 400)."""
        if not isinstance(self.body, dict):
            raise stream_body_refused()
        return self.body


Handler = Callable[[SandboxSpace, Request], tuple[int, Any]]


def _deleted(call: Callable[[], None]) -> tuple[int, Any]:
    call()
    return 204, None


HANDLERS: dict[str, Handler] = {
    "list_room_streams": lambda s, r: (200, s.list_streams("room", r.id, r.base_url)),
    "create_room_stream": lambda s, r: (201, s.create_stream("room", r.id, r.object_body())),
    "list_conf_streams": lambda s, r: (200, s.list_streams("conference", r.id, r.base_url)),
    "create_conf_stream": lambda s, r: (
        200,
        s.create_stream("conference", r.id, r.object_body()),
    ),
    "get_stream": lambda s, r: (200, s.get_stream(r.id)),
    "update_stream": lambda s, r: (200, s.update_stream(r.id, r.object_body())),
    "delete_stream": lambda s, r: _deleted(lambda: s.delete_stream(r.id)),
    "list_sessions": lambda s, r: (200, s.list_sessions(r.base_url, r.query)),
    "get_session": lambda s, r: (200, s.get_session(r.id)),
    "list_members": lambda s, r: (200, s.list_members(r.id, r.base_url, r.query)),
    "list_session_events": lambda s, r: (200, s.list_session_events(r.id, r.base_url, r.query)),
    "list_session_recordings": lambda s, r: (
        200,
        s.list_session_recordings(r.id, r.base_url, r.query, r.origin),
    ),
    "list_recordings": lambda s, r: (200, s.list_recordings(r.base_url, r.query, r.origin)),
    "get_recording": lambda s, r: (200, s.get_recording(r.id, r.query, r.origin)),
    "delete_recording": lambda s, r: _deleted(lambda: s.delete_recording(r.id)),
    "list_recording_events": lambda s, r: (
        200,
        s.list_recording_events(r.id, r.base_url, r.query),
    ),
    "list_logs": lambda s, r: (200, s.list_logs(r.base_url, r.query, r.origin)),
    "get_log": lambda s, r: (200, s.get_log(r.id, r.origin)),
}
