"""The SignalWire Video API's resources as plain methods: conferences, tokens, rooms, streams.

One `SignalWireClient` per Space (its HTTP session in rooms.signalwire.session, its
listings in rooms.signalwire.pages). It returns plain dicts and lists and raises the
typed errors of `rooms.signalwire.errors`; it never touches models.
`build_client(profile=..., credentials=...)` gives the process's shared client for the
interactive (web request) or background (task) budget and one Space, built from settings at
call time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rooms.signalwire.errors import (
    ConfigurationError,
    NotFoundError,
    UnexpectedResponseError,
)
from rooms.signalwire.pages import PagedSession
from rooms.signalwire.session import API, PROFILES, one_call, quote_segment

logger = logging.getLogger("rooms.signalwire")

# The path segment of each kind of stream owner.
STREAM_OWNERS = {"room": "rooms", "conference": "conferences"}


class SignalWireClient(PagedSession):
    """Talk to one SignalWire Space's Video API; plain data in and out, typed errors."""

    # --- any resource, by its path under the Space (listings: iter_pages) -------------

    def get_object(self, path: str) -> dict[str, Any]:
        """Fetch one object of any resource by its path, e.g. /api/video/room_sessions/ID."""
        return self._object("GET", path)

    def delete_object(self, path: str) -> None:
        """Delete one object of any resource by its path."""
        self._delete(path)

    # --- conferences ------------------------------------------------------------------

    def iter_conference_pages(self, page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield the Space's conferences one page at a time, following links.next."""
        return self.iter_pages(f"{API}/conferences", page_size=page_size)

    def list_conferences(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield every conference, fetching pages lazily so memory stays at one page."""
        for page in self.iter_conference_pages(page_size):
            yield from page

    def get_conference(self, conference_id: str) -> dict[str, Any]:
        """Fetch one conference by id."""
        return self._object("GET", f"{API}/conferences/{quote_segment(conference_id)}")

    @one_call
    def find_conference_by_name(self, name: str) -> dict[str, Any] | None:
        """Find a conference by its unique name by scanning the list (no by-name endpoint)."""
        for conference in self.list_conferences():
            if conference.get("name") == name:
                return conference
        return None

    def create_conference(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a conference; an ambiguous failure is resolved by name, never duplicated."""
        return self._create(f"{API}/conferences", data, self.find_conference_by_name)

    def update_conference(self, conference_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Replace a conference's managed fields with exactly the given data (PUT)."""
        path = f"{API}/conferences/{quote_segment(conference_id)}"
        return self._object("PUT", path, json_body=data)

    def delete_conference(self, conference_id: str) -> None:
        """Delete a conference."""
        self._delete(f"{API}/conferences/{quote_segment(conference_id)}")

    # --- conference tokens ------------------------------------------------------------

    @one_call
    def list_conference_tokens(self, conference_id: str) -> list[dict[str, Any]]:
        """Return every token (moderator, guest) of a conference, all pages read."""
        path = f"{API}/conferences/{quote_segment(conference_id)}/conference_tokens"
        return [token for page in self.iter_pages(path) for token in page]

    def get_conference_token(self, token_id: str) -> dict[str, Any]:
        """Fetch one conference token by id."""
        return self._object("GET", f"{API}/conference_tokens/{quote_segment(token_id)}")

    def reset_conference_token(self, token_id: str) -> dict[str, Any]:
        """Rotate a conference token's value in SignalWire and return the new token."""
        return self._object("POST", f"{API}/conference_tokens/{quote_segment(token_id)}/reset")

    # --- rooms ------------------------------------------------------------------------

    def iter_room_pages(self, page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield the Space's rooms one page at a time, following links.next."""
        return self.iter_pages(f"{API}/rooms", page_size=page_size)

    def list_rooms(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield every room, fetching pages lazily so memory stays at one page."""
        for page in self.iter_room_pages(page_size):
            yield from page

    def get_room(self, room_id: str) -> dict[str, Any]:
        """Fetch one room by id."""
        return self._object("GET", f"{API}/rooms/{quote_segment(room_id)}")

    def get_room_by_name(self, name: str) -> dict[str, Any]:
        """Fetch one room by its unique name; NotFoundError when there is none."""
        return self._object("GET", f"{API}/rooms/{quote_segment(name)}")

    def create_room(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a room; an ambiguous failure is resolved by name, never duplicated."""
        return self._create(f"{API}/rooms", data, self._find_room_by_name)

    def update_room(self, room_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Replace a room's managed fields with exactly the given data (PUT)."""
        return self._object("PUT", f"{API}/rooms/{quote_segment(room_id)}", json_body=data)

    def delete_room(self, room_id: str) -> None:
        """Delete a room."""
        self._delete(f"{API}/rooms/{quote_segment(room_id)}")

    # --- room tokens ------------------------------------------------------------------

    def create_room_token(self, data: dict[str, Any]) -> str:
        """Mint a room join token and return it; the caller shows it once and keeps none."""
        path = f"{API}/room_tokens"
        body = self._json("POST", path, self._send("POST", path, json_body=data))
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponseError(
                "the answer has no token", method="POST", path=path, status=200
            )
        return token

    # --- streams ----------------------------------------------------------------------

    @staticmethod
    def _streams_path(owner_kind: str, owner_id: str) -> str:
        """The streams listing of a room or conference ("room" or "conference")."""
        if owner_kind not in STREAM_OWNERS:
            raise ValueError(f"a stream belongs to a room or a conference, not {owner_kind!r}")
        return f"{API}/{STREAM_OWNERS[owner_kind]}/{quote_segment(owner_id)}/streams"

    @one_call
    def list_streams(self, owner_kind: str, owner_id: str) -> list[dict[str, Any]]:
        """Return every stream of a room or conference, all pages read."""
        path = self._streams_path(owner_kind, owner_id)
        return [stream for page in self.iter_pages(path) for stream in page]

    def create_stream(self, owner_kind: str, owner_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Add a stream to a room (answers 201) or a conference (200); never repeated blindly.

        A stream has no name to look it up by: after an ambiguous failure the caller lists
        the owner's streams and matches the url before asking again.
        """
        return self._object("POST", self._streams_path(owner_kind, owner_id), json_body=data)

    def get_stream(self, stream_id: str) -> dict[str, Any]:
        """Fetch one stream by id."""
        return self._object("GET", f"{API}/streams/{quote_segment(stream_id)}")

    def update_stream(self, stream_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Replace a stream's url (PUT)."""
        return self._object("PUT", f"{API}/streams/{quote_segment(stream_id)}", json_body=data)

    def delete_stream(self, stream_id: str) -> None:
        """Delete a stream."""
        self._delete(f"{API}/streams/{quote_segment(stream_id)}")

    def _find_room_by_name(self, name: str) -> dict[str, Any] | None:
        """Look a room up by name, None when SignalWire has none."""
        try:
            return self.get_room_by_name(name)
        except NotFoundError:
            return None


# The process's clients, one per profile and settings; see build_client.
_SHARED: dict[tuple[Any, ...], SignalWireClient] = {}


_SHARED_LOCK = threading.Lock()


# Clients kept (two profiles per Space, and settings tests change); past this, the least
# recently used is dropped.
_SHARED_MAX = 64


@dataclass(frozen=True)
class Credentials:
    """Where a Space is and how to sign in to it; repr never shows the token."""

    space_url: str
    project_id: str
    api_token: str = field(repr=False)


def settings_credentials() -> Credentials:
    """Return the credentials of the Space the environment configures."""
    from django.conf import settings

    return Credentials(
        space_url=settings.SIGNALWIRE_SPACE_URL,
        project_id=settings.SIGNALWIRE_PROJECT_ID,
        api_token=settings.SIGNALWIRE_API_TOKEN,
    )


def client_options(
    profile: str = "background", credentials: Credentials | None = None
) -> dict[str, Any]:
    """Return the SignalWireClient arguments a profile takes from the settings as they are now.

    `credentials` name the Space; without them, the Space the environment configures.

    "background" (tasks, commands) has the longer budget of SIGNALWIRE_CONNECT_TIMEOUT,
    SIGNALWIRE_READ_TIMEOUT, SIGNALWIRE_RETRIES, SIGNALWIRE_RETRY_MAX_WAIT and
    SIGNALWIRE_DEADLINE; "interactive" (a web request waiting on its answer) has one retry
    at most and SIGNALWIRE_INTERACTIVE_DEADLINE in all, which also caps its timeouts.
    """
    from django.conf import settings

    if profile not in PROFILES:
        raise ConfigurationError(f"unknown client profile {profile!r}; use one of {PROFILES}")
    space = credentials if credentials is not None else settings_credentials()
    options: dict[str, Any] = {
        "space_url": space.space_url,
        "project_id": space.project_id,
        "api_token": space.api_token,
        "connect_timeout": settings.SIGNALWIRE_CONNECT_TIMEOUT,
        "read_timeout": settings.SIGNALWIRE_READ_TIMEOUT,
        "retries": settings.SIGNALWIRE_RETRIES,
        "backoff_factor": settings.SIGNALWIRE_RETRY_BACKOFF,
        "max_retry_wait": settings.SIGNALWIRE_RETRY_MAX_WAIT,
        "page_size": settings.SIGNALWIRE_SYNC_PAGE_SIZE,
        "deadline": settings.SIGNALWIRE_DEADLINE,
        "max_response_bytes": settings.SIGNALWIRE_MAX_RESPONSE_BYTES,
        "max_list_rows": settings.SIGNALWIRE_MAX_LIST_ROWS,
        "profile": profile,
    }
    if profile == "interactive":
        deadline = settings.SIGNALWIRE_INTERACTIVE_DEADLINE
        options.update(
            deadline=deadline,
            connect_timeout=min(options["connect_timeout"], deadline),
            read_timeout=min(options["read_timeout"], deadline),
            retries=min(options["retries"], settings.SIGNALWIRE_INTERACTIVE_RETRIES),
            max_retry_wait=min(
                options["max_retry_wait"], settings.SIGNALWIRE_INTERACTIVE_RETRY_MAX_WAIT
            ),
        )
    return options


def build_client(
    profile: str = "background", credentials: Credentials | None = None
) -> SignalWireClient:
    """Return this process's client for a profile and Space, built from the settings now.

    One client, hence one connection pool, per process, profile and settings: later
    calls with the same settings reuse it (a forked worker or changed settings get a
    fresh one). Its close() does nothing, so callers may still use it in a with block.
    """
    options = client_options(profile, credentials)
    key = (os.getpid(), *sorted(options.items()))
    with _SHARED_LOCK:
        client = _SHARED.pop(key, None)
        if client is None:
            client = SignalWireClient(**options)
            client.shared = True
        # Kept newest last: the least recently used client is the one dropped.
        _SHARED[key] = client
        while len(_SHARED) > _SHARED_MAX:
            # Dropped, not closed: another thread may still be using it.
            del _SHARED[next(iter(_SHARED))]
    return client
