"""Streams of the sandbox Space: RTMP/RTMPS outputs of a room or a conference."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sandbox.errors import SandboxNotFound, SandboxValidationError
from sandbox.paging import Collection
from sandbox.validation import error_item, humanize

STREAM_FIELDS = ("id", "url", "stream_type", "width", "height", "fps", "created_at", "updated_at")
STREAM_BODY_FIELDS = ("url",)
STREAM_SCHEMES = ("rtmp", "rtmps")
URL_MESSAGE = "Url must be a valid RTMP or RTMPS URL"
DIMENSIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
_DESTINATIONS = (
    "rtmp://a.rtmp.youtube.com/live2/{key}",
    "rtmps://live-api-s.facebook.com:443/rtmp/FB-{key}",
    "rtmp://live.twitch.tv/app/live_{key}",
    "rtmps://global-live.mux.com:443/app/{key}",
    "rtmp://ingest.example-cdn.net/live/{key}",
)


def check_stream_url(value: Any) -> tuple[str | None, str | None]:
    """Check a stream url as SignalWire does; return (url, None) or (None, message)."""
    if not isinstance(value, str):
        return None, "Url must be a string"
    if not value.strip():
        return None, "Url must be present"
    if any(ord(char) <= 32 or ord(char) == 127 for char in value):
        return None, URL_MESSAGE
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises ValueError
    except ValueError:
        return None, URL_MESSAGE
    if parts.scheme.lower() not in STREAM_SCHEMES or not host:
        return None, URL_MESSAGE
    return value, None


def validate_stream_body(body: dict[str, Any]) -> str:
    """The url of a create or update body, or a 422 naming every bad field."""
    errors = [
        error_item(key, f"{humanize(key)} is not a permitted parameter")
        for key in body
        if key not in STREAM_BODY_FIELDS
    ]
    url, message = check_stream_url(body.get("url")) if "url" in body else (None, None)
    if "url" not in body or body.get("url") is None:
        errors.insert(0, error_item("url", "Url must be present"))
    elif message:
        errors.insert(0, error_item("url", message))
    if errors:
        raise SandboxValidationError(errors)
    assert url is not None
    return url


def public_stream(stream: dict[str, Any]) -> dict[str, Any]:
    """A stream in the API's shape (without the sandbox's own bookkeeping)."""
    return {key: stream[key] for key in STREAM_FIELDS}


def new_stream(
    stream_id: str, url: str, owner: tuple[str, str], quality: Any, fps: Any, stamp: str
) -> dict[str, Any]:
    """Build a stream record for an owner ("room" or "conference", id)."""
    width, height = DIMENSIONS.get(quality, DIMENSIONS["720p"])
    return {
        "id": stream_id,
        "url": url,
        "stream_type": urlsplit(url).scheme.lower(),
        "width": width,
        "height": height,
        "fps": fps if fps in (20, 30) else 20,
        "created_at": stamp,
        "updated_at": stamp,
        "owner": owner,
    }


def seed_urls(rng: random.Random) -> str:
    """A realistic destination url with a random stream key."""
    key = "-".join(f"{rng.getrandbits(16):04x}" for _ in range(4))
    return _DESTINATIONS[int(rng.random() * len(_DESTINATIONS))].format(key=key)


class StreamsMixin:
    """The stream operations of a SandboxSpace."""

    _lock: threading.RLock
    _streams: dict[str, dict[str, Any]]
    _streams_of: dict[str, list[str]]
    _stamp: Callable[[], str]
    _rooms: Collection
    _conferences: Collection

    def _owner(self, kind: str, owner_id: str) -> dict[str, Any] | None:
        store = self._rooms if kind == "room" else self._conferences
        return store.objects.get(owner_id)

    def create_stream(self, kind: str, owner_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add a stream to a room or conference ("room" or "conference")."""
        with self._lock:
            owner = self._owner(kind, owner_id)
            if owner is None:
                if kind == "room":
                    raise SandboxNotFound(owner_id)
                # The spec gives this operation no 404: SignalWire answers a 422.
                raise SandboxValidationError([error_item("id", "Conference does not exist")])
            url = validate_stream_body(body)
            stream = new_stream(
                str(uuid.uuid4()),
                url,
                (kind, owner_id),
                owner.get("quality"),
                owner.get("fps"),
                self._stamp(),
            )
            self._streams[stream["id"]] = stream
            self._streams_of.setdefault(owner_id, []).append(stream["id"])
            return public_stream(stream)

    def list_streams(self, kind: str, owner_id: str, base_url: str) -> dict[str, Any]:
        """Answer GET /rooms/{id}/streams or /conferences/{id}/streams: all of them, one page."""
        with self._lock:
            ids = self._streams_of.get(owner_id, []) if self._owner(kind, owner_id) else []
            data = [public_stream(self._streams[i]) for i in ids if i in self._streams]
            return {"links": {"self": base_url, "first": base_url}, "data": data}

    def get_stream(self, stream_id: str) -> dict[str, Any]:
        """Return one stream."""
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                raise SandboxNotFound(stream_id)
            return public_stream(stream)

    def update_stream(self, stream_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a PUT /streams/{id} body (its url)."""
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                raise SandboxNotFound(stream_id)
            url = validate_stream_body(body)
            stream["url"] = url
            stream["stream_type"] = urlsplit(url).scheme.lower()
            stream["updated_at"] = self._stamp()
            return public_stream(stream)

    def delete_stream(self, stream_id: str) -> None:
        """Delete one stream."""
        with self._lock:
            stream = self._streams.pop(stream_id, None)
            if stream is None:
                raise SandboxNotFound(stream_id)
            siblings = self._streams_of.get(stream["owner"][1], [])
            if stream_id in siblings:
                siblings.remove(stream_id)

    def _drop_streams(self, owner_id: str) -> None:
        for stream_id in self._streams_of.pop(owner_id, []):
            self._streams.pop(stream_id, None)

    def _seed_streams(self, owners: list[tuple[str, dict[str, Any]]], rng: random.Random) -> None:
        """Give about one owner in ten a stream (a few two), deterministically."""
        for kind, owner in owners:
            draw = rng.random()
            if draw >= 0.1:
                continue
            for _ in range(2 if draw < 0.02 else 1):
                stamp = owner["created_at"]
                stream = new_stream(
                    _seed_uuid(rng),
                    seed_urls(rng),
                    (kind, owner["id"]),
                    owner.get("quality"),
                    owner.get("fps"),
                    stamp,
                )
                self._streams[stream["id"]] = stream
                self._streams_of.setdefault(owner["id"], []).append(stream["id"])

    @property
    def streams(self) -> dict[str, dict[str, Any]]:
        """The live streams by id, each with its internal owner (kind, id)."""
        return self._streams


def _seed_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
