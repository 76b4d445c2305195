"""Room recordings of the sandbox Space, their events, and media links that expire."""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import math
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.errors import SandboxNotFound, SandboxValidationError
from sandbox.paging import Key, micros, newest_first
from sandbox.validation import INT32_MAX, error_item, parse_query_integer, query_values

RECORDING_FIELDS = (
    "id",
    "room_session_id",
    "status",
    "started_at",
    "finished_at",
    "duration",
    "size_in_bytes",
    "format",
    "cost_in_dollars",
    "uri",
    "created_at",
    "updated_at",
)
RECORDING_STATUSES = ("recording", "paused", "processing", "completed")
MEDIA_TTL_DEFAULT = 900
MEDIA_PREFIX = "/__sandbox__/media/recordings/"
RECORDING_MINUTE_RATE = 0.0045  # the sandbox's own price of one recorded minute, in dollars
BYTES_PER_SECOND = 312_500  # 2.5 Mbit/s
_MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def recording_cost(seconds: int) -> float:
    """What a recording costs: every started minute (one at least) at the recorded-minute rate."""
    return round(max(1, math.ceil(seconds / 60)) * RECORDING_MINUTE_RATE, 4)


def recording_size(seconds: int) -> int:
    """The size of a recording's file: a steady bitrate, within int32 as the spec says."""
    return min(INT32_MAX, 4096 + seconds * BYTES_PER_SECOND)


def media_bytes(recording_id: str) -> bytes:
    """The (small, fake) file a media link serves: an MP4 header, then stable filler."""
    filler = hashlib.sha256(recording_id.encode()).digest() * 64
    return _MP4_HEAD + filler


def finish(recording: dict[str, Any], started: datetime, ended: datetime, stamp: str) -> None:
    """Stop a recording at `ended`: its duration, size and cost follow."""
    seconds = max(0, int((ended - started).total_seconds()))
    recording["finished_at"] = stamp
    recording["duration"] = seconds
    recording["size_in_bytes"] = recording_size(seconds)
    recording["cost_in_dollars"] = recording_cost(seconds)
    recording["updated_at"] = stamp


class RecordingsMixin:
    """The room recording operations of a SandboxSpace."""

    _lock: threading.RLock
    _secret: bytes
    _sessions: dict[str, dict[str, Any]]
    _stamp: Callable[[], str]
    _list: Callable[..., dict[str, Any]]
    _event: Callable[..., dict[str, Any]]
    _events_page: Callable[..., dict[str, Any]]
    now: Callable[[], datetime]

    def _init_recordings(self) -> None:
        self._recordings: dict[str, dict[str, Any]] = {}
        self._recording_keys: list[Key] = []
        self._recordings_by_session: dict[str, list[str]] = {}

    @property
    def room_recordings(self) -> dict[str, dict[str, Any]]:
        """Every recording by id (internal records)."""
        return self._recordings

    def _add_recordings(self, recordings: list[tuple[dict[str, Any], Key]]) -> None:
        for recording, key in recordings:
            recording["_key"] = key
            self._recordings[recording["id"]] = recording
            self._recording_keys.append(key)
            self._recordings_by_session.setdefault(recording["room_session_id"], []).append(
                recording["id"]
            )
        self._recording_keys.sort()

    def _start_recording(self, session: dict[str, Any], stamp: str) -> dict[str, Any]:
        now = self.now()
        recording = {
            "id": str(uuid.uuid4()),
            "room_session_id": session["id"],
            "status": "recording",
            "started_at": stamp,
            "finished_at": None,
            "duration": None,
            "size_in_bytes": None,
            "format": "video/mp4",
            "cost_in_dollars": 0.0,
            "created_at": stamp,
            "updated_at": stamp,
            "_started": now,
        }
        key = newest_first(micros(now), recording["id"])
        recording["_key"] = key
        self._recordings[recording["id"]] = recording
        bisect.insort(self._recording_keys, key)
        self._recordings_by_session.setdefault(session["id"], []).append(recording["id"])
        return recording

    def _finish_recordings(self, session: dict[str, Any], stamp: str, status: str) -> None:
        now = self.now()
        for recording in self._recordings_of_session(session["id"]):
            if recording["status"] in ("recording", "paused"):
                finish(recording, recording["_started"], now, stamp)
                recording["status"] = status

    def _recordings_of_session(self, session_id: str) -> list[dict[str, Any]]:
        ids = self._recordings_by_session.get(session_id, [])
        return [self._recordings[i] for i in ids if i in self._recordings]

    def _recording_events(
        self, recording: dict[str, Any], session: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        events = []
        for name, at in (
            ("recording.started", recording["started_at"]),
            ("recording.ended", recording["finished_at"]),
        ):
            if at is not None:
                events.append(
                    (
                        at,
                        self._event(
                            session,
                            name,
                            at,
                            recording["id"],
                            payload={"recording_id": recording["id"]},
                            room_recording_id=recording["id"],
                        ),
                    )
                )
        return events

    # --- media links --------------------------------------------------------------------

    def _media_signature(self, recording_id: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"media:{recording_id}:{expires}".encode(), "sha256")
        return base64.urlsafe_b64encode(digest.digest()[:18]).decode("ascii")

    def _shape(self, origin: str, ttl: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
        expires = int(self.now().timestamp()) + ttl

        def shape(recording: dict[str, Any]) -> dict[str, Any]:
            public = {key: recording.get(key) for key in RECORDING_FIELDS}
            if recording["status"] == "completed":
                signature = self._media_signature(recording["id"], expires)
                public["uri"] = (
                    f"{origin}{MEDIA_PREFIX}{recording['id']}.mp4"
                    f"?expires={expires}&signature={signature}"
                )
            return public

        return shape

    def download(self, recording_id: str, query: str) -> tuple[int, bytes | None]:
        """Serve a media link: (200, the file) while valid, 403 once expired or forged."""
        params = {name: values[-1] for name, values in query_values(query).items()}
        expires = params.get("expires", "")
        if not (expires.isascii() and expires.isdigit() and len(expires) < 15):
            return 403, None
        expected = self._media_signature(recording_id, int(expires))
        if not hmac.compare_digest(expected, params.get("signature", "")):
            return 403, None
        if int(expires) < self.now().timestamp():
            return 403, None
        with self._lock:
            recording = self._recordings.get(recording_id)
            if recording is None or recording["status"] != "completed":
                return 404, None
        return 200, media_bytes(recording_id)

    # --- the API ------------------------------------------------------------------------

    @staticmethod
    def _ttl(query: str) -> tuple[int, list[dict[str, Any]]]:
        raw = query_values(query).get("media_ttl")
        if not raw:
            return MEDIA_TTL_DEFAULT, []
        ttl, message = parse_query_integer(raw[-1], "media_ttl", 0, INT32_MAX)
        if message:
            return MEDIA_TTL_DEFAULT, [error_item("media_ttl", message)]
        return ttl, []

    def list_recordings(self, base_url: str, query: str, origin: str) -> dict[str, Any]:
        """Answer GET /room_recordings: newest first."""
        ttl, errors = self._ttl(query)
        with self._lock:
            return self._list(
                "room_recordings",
                self._recording_keys,
                self._recordings,
                base_url,
                query,
                filters=False,
                shape=self._shape(origin, ttl),
                errors=errors,
            )

    def list_session_recordings(
        self, session_id: str, base_url: str, query: str, origin: str
    ) -> dict[str, Any]:
        """Answer GET /room_sessions/{id}/recordings: newest first."""
        ttl, errors = self._ttl(query)
        with self._lock:
            keys = sorted(r["_key"] for r in self._recordings_of_session(session_id))
            return self._list(
                f"session_recordings:{session_id}",
                keys,
                self._recordings,
                base_url,
                query,
                filters=False,
                shape=self._shape(origin, ttl),
                errors=errors,
            )

    def get_recording(self, recording_id: str, query: str, origin: str) -> dict[str, Any]:
        """Answer GET /room_recordings/{id}, with a fresh link valid for media_ttl seconds."""
        ttl, errors = self._ttl(query)
        with self._lock:
            recording = self._recordings.get(recording_id)
            if recording is None:
                raise SandboxNotFound(recording_id)
            if errors:
                raise SandboxValidationError(errors)
            return self._shape(origin, ttl)(recording)

    def delete_recording(self, recording_id: str) -> None:
        """Delete a recording (its media links stop working)."""
        with self._lock:
            recording = self._recordings.pop(recording_id, None)
            if recording is None:
                raise SandboxNotFound(recording_id)
            index = bisect.bisect_left(self._recording_keys, recording["_key"])
            if (
                index < len(self._recording_keys)
                and self._recording_keys[index] == recording["_key"]
            ):
                del self._recording_keys[index]

    def list_recording_events(self, recording_id: str, base_url: str, query: str) -> dict[str, Any]:
        """Answer GET /room_recordings/{id}/events."""
        with self._lock:
            recording = self._recordings.get(recording_id)
            session = self._sessions.get(recording["room_session_id"]) if recording else None
            events = []
            if recording is not None and session is not None:
                events = [event for _, event in self._recording_events(recording, session)]
            return self._events_page(f"recording_events:{recording_id}", events, base_url, query)
