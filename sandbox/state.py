"""In-memory state of the sandbox Space: conferences, rooms, tokens, the clock, the request log."""

from __future__ import annotations

import binascii
import collections
import gc
import hashlib
import hmac
import json
import random
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.signalwire import schema
from sandbox import seed as seed_data
from sandbox.activity import SessionsMixin
from sandbox.errors import (
    SandboxBadRequest,
    SandboxError,  # noqa: F401 (re-exported: sandbox.state names every error)
    SandboxNotFound,
    SandboxValidationError,
)
from sandbox.faults import Fault, FaultsMixin
from sandbox.logs import LogsMixin
from sandbox.paging import Collection, PagingMixin, b64, unb64
from sandbox.recordings import RecordingsMixin
from sandbox.streams import StreamsMixin
from sandbox.validation import (
    check_join_window,
    conference_defaults,
    error_item,
    format_stamp,
    parse_datetime,
    room_defaults,
    validate_body,
)

TOKEN_PUBLIC_FIELDS = ("id", "name", "token", "scopes")
REQUEST_LOG_MAX = 200_000
MAX_LATENCY = 600.0
BIG_SEED = 10_000
Observer = Callable[[str, str, Any, Any], None]


class SandboxSpace(
    PagingMixin, FaultsMixin, StreamsMixin, SessionsMixin, RecordingsMixin, LogsMixin
):
    """Everything a sandbox Space holds; every method is safe to call from many threads."""

    def __init__(self, project_id: str = "sandbox-project") -> None:
        self.project_id = project_id
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self._conferences = Collection()
        self._rooms = Collection()
        self._tokens: dict[str, dict[str, Any]] = {}
        self._tokens_of: dict[str, list[str]] = {}
        self._faults: list[Fault] = []
        self._fault_rng = random.Random(0)
        self._latency = 0.0
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_MAX)
        self._observers: list[Observer] = []
        self._last_stamp: datetime | None = None
        self._clock_offset = 0.0
        self._streams: dict[str, dict[str, Any]] = {}
        self._streams_of: dict[str, list[str]] = {}
        self._init_sessions()
        self._init_recordings()
        self._init_logs()

    # --- housekeeping -------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the Space: no objects, faults, latency or logged requests."""
        with self._lock:
            self._conferences.clear()
            self._rooms.clear()
            self._tokens.clear()
            self._tokens_of.clear()
            self._faults.clear()
            self._fault_rng = random.Random(0)
            self._latency = 0.0
            self._log.clear()
            self._clock_offset = 0.0
            self._streams.clear()
            self._streams_of.clear()
            self._init_sessions()
            self._init_recordings()
            self._init_logs()

    def state(self) -> dict[str, int]:
        """Count the objects the Space holds."""
        with self._lock:
            return {
                "conferences": len(self._conferences.objects),
                "rooms": len(self._rooms.objects),
                "conference_tokens": len(self._tokens),
                "streams": len(self._streams),
                **self._activity_counts(),
            }

    def seed(
        self,
        conferences: int = 0,
        rooms: int = 0,
        seed: int = 0,
        sessions: int = 0,
        until: datetime | None = None,
        variant: int = 0,
    ) -> None:
        """Add conferences (with tokens), rooms (some with streams) and past sessions.

        The same arguments always give the same data; `until` (default: now, to the hour)
        is when the seeded history ends. Another `variant` (another project of the same
        server) shares some names with variant 0, with other settings and ids, and has
        some of its own.
        """
        counts = (("conferences", conferences), ("rooms", rooms), ("sessions", sessions))
        for label, value in (*counts, ("seed", seed), ("variant", variant)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{label} must be an integer")
        if conferences < 0 or rooms < 0 or sessions < 0:
            raise ValueError("counts must not be negative")
        if variant < 0:
            raise ValueError("variant must not be negative")
        collecting = gc.isenabled()
        gc.disable()  # hundreds of thousands of fresh dicts: the cyclic GC only slows this down
        try:
            self._seed(conferences, rooms, seed, variant)
            if sessions:
                # Another variant's history: other sessions, recordings and ids.
                history_seed = seed + variant * 1_000_003
                self._seed_sessions(sessions, history_seed, until or self.now().replace(minute=0))
        finally:
            if collecting:
                gc.enable()
        if conferences + rooms + sessions >= BIG_SEED:
            # Else the next full collection walks every seeded dict: a 1,000-row page that
            # allocates at the wrong moment would take a tenth of a second more.
            gc.freeze()

    def _seed(self, conferences: int, rooms: int, seed: int, variant: int) -> None:
        with self._lock:
            data = seed_data.build_seed(
                conferences,
                rooms,
                seed,
                first_conference=len(self._conferences.objects) + 1,
                first_room=len(self._rooms.objects) + 1,
                taken_conference_names=set(self._conferences.names),
                taken_room_names=set(self._rooms.names),
                variant=variant,
            )
            renamed: dict[str, str] = {}
            for conference in data.conferences:
                if conference["id"] in self._conferences.objects:
                    renamed[conference["id"]] = conference["id"] = str(uuid.uuid4())
            self._conferences.bulk_insert(data.conferences)
            for token in data.tokens:
                token["conference_id"] = renamed.get(token["conference_id"], token["conference_id"])
                if token["id"] in self._tokens:
                    token["id"] = str(uuid.uuid4())
                self._tokens[token["id"]] = token
                self._tokens_of.setdefault(token["conference_id"], []).append(token["id"])
            for room in data.rooms:
                if room["id"] in self._rooms.objects:
                    room["id"] = str(uuid.uuid4())
            self._rooms.bulk_insert(data.rooms)
            owners = [("conference", c) for c in data.conferences]
            stream_rng = random.Random(f"streams-{seed}-{variant}" if variant else seed)
            self._seed_streams(owners + [("room", r) for r in data.rooms], stream_rng)

    @property
    def latency(self) -> float:
        """Seconds every API request waits before it is handled."""
        return self._latency

    def set_latency(self, seconds: float) -> None:
        """Make every API request sleep this long first."""
        seconds = float(seconds)
        if not 0 <= seconds <= MAX_LATENCY:
            raise ValueError(f"latency must be between 0 and {MAX_LATENCY} seconds")
        with self._lock:
            self._latency = seconds

    # --- request log and observers ------------------------------------------------------

    def log_request(
        self, method: str, path: str, query: str, status: int | str, received: float, body: Any
    ) -> None:
        """Record one API request and the status it got (or "drop")."""
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "status": status,
            "time": received,
            "body": body,
        }
        with self._lock:
            self._log.append(entry)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_requests(self) -> None:
        """Forget the logged requests."""
        with self._lock:
            self._log.clear()

    def add_observer(self, observer: Observer) -> None:
        """Call observer(method, path, status, body) for every API response sent."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        """Stop calling an observer added with add_observer."""
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    def notify(self, method: str, path: str, status: int | str, body: Any) -> None:
        """Tell the observers about a response (body is the JSON sent, or None)."""
        with self._lock:
            observers = list(self._observers)
        for observer in observers:
            observer(method, path, status, body)

    # --- direct access ------------------------------------------------------------------

    @property
    def conferences(self) -> dict[str, dict[str, Any]]:
        """The live conferences by id (API shape)."""
        return self._conferences.objects

    @property
    def rooms(self) -> dict[str, dict[str, Any]]:
        """The live rooms by id (API shape)."""
        return self._rooms.objects

    @property
    def conference_tokens(self) -> dict[str, dict[str, Any]]:
        """The live conference tokens by id, each with its internal conference_id."""
        return self._tokens

    def now(self) -> datetime:
        """The Space's clock: the real time plus however far a test moved it on."""
        return datetime.now(UTC) + timedelta(seconds=self._clock_offset)

    def advance_clock(self, seconds: float) -> float:
        """Move the Space's clock forward (media links expire, nothing else changes)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError("seconds must be a number")
        if not 0 <= seconds <= 10 * 365 * 86400:
            raise ValueError("seconds must be between 0 and ten years")
        with self._lock:
            self._clock_offset += float(seconds)
            return self._clock_offset

    def _stamp(self) -> str:
        now = self.now()
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return format_stamp(now)

    # --- conferences --------------------------------------------------------------------

    def _generated_name(self) -> str:
        while True:
            name = f"conference-{secrets.token_hex(5)}"
            if self._conferences.owner_of(name) is None:
                return name

    def create_conference(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a conference and its moderator and guest tokens; return the conference."""
        body = self._object_body(body)
        with self._lock:
            clean, errors = validate_body(
                body, schema.CONFERENCE_CREATE_FIELDS, required=("display_name",)
            )
            if "name" in clean and self._conferences.owner_of(clean["name"]) is not None:
                errors.append(error_item("name", "Name has already been taken"))
            merged = {**conference_defaults(), **clean}
            errors += check_join_window(body, clean, merged)
            if errors:
                raise SandboxValidationError(errors)
            stamp = self._stamp()
            merged["id"] = str(uuid.uuid4())
            merged["name"] = clean.get("name") or self._generated_name()
            merged["created_at"] = merged["updated_at"] = stamp
            conference = {key: merged[key] for key in schema.CONFERENCE_RESPONSE_FIELDS}
            self._conferences.insert(conference)
            self._tokens_of[conference["id"]] = []
            for name, scopes in (
                ("moderator", schema.MODERATOR_PERMISSIONS),
                ("guest", schema.GUEST_PERMISSIONS),
            ):
                token = {
                    "id": str(uuid.uuid4()),
                    "name": name,
                    "token": _new_token_value(),
                    "scopes": list(scopes),
                    "conference_id": conference["id"],
                }
                self._tokens[token["id"]] = token
                self._tokens_of[conference["id"]].append(token["id"])
            return dict(conference)

    def get_conference(self, conference_id: str) -> dict[str, Any]:
        """Return a copy of one conference."""
        with self._lock:
            conference = self._conferences.objects.get(conference_id)
            if conference is None:
                raise SandboxNotFound(conference_id)
            return dict(conference)

    def update_conference(
        self, conference_id: str, changes: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        """Change a conference as a dashboard edit would (name allowed); bump updated_at.

        validate=False stores the changes as given, e.g. a value the portal does not know.
        """
        allowed = (*schema.CONFERENCE_UPDATE_FIELDS, "name")
        return self._update_conference(conference_id, changes, allowed, (), validate)

    def api_update_conference(self, conference_id: str, body: Any) -> dict[str, Any]:
        """Apply a PUT /conferences/{id} body, validated like SignalWire."""
        return self._update_conference(
            conference_id, body, schema.CONFERENCE_UPDATE_FIELDS, ("display_name",), True
        )

    def _update_conference(
        self,
        conference_id: str,
        body: Any,
        allowed: tuple[str, ...],
        required: tuple[str, ...],
        validate: bool,
    ) -> dict[str, Any]:
        body = self._object_body(body)
        with self._lock:
            conference = self._conferences.objects.get(conference_id)
            if conference is None:
                raise SandboxNotFound(conference_id)
            clean = dict(body)
            if validate:
                clean, errors = validate_body(body, allowed, required=required)
                name = clean.get("name")
                if name is not None:
                    owner = self._conferences.owner_of(name)
                    if owner is not None and owner != conference_id:
                        errors.append(error_item("name", "Name has already been taken"))
                errors += check_join_window(body, clean, {**conference, **clean})
                if errors:
                    raise SandboxValidationError(errors)
            if "name" in clean and clean["name"] != conference["name"]:
                self._conferences.rename(conference_id, conference["name"], clean["name"])
            conference.update(clean)
            conference["updated_at"] = self._stamp()
            return dict(conference)

    def delete_conference(self, conference_id: str) -> None:
        """Delete a conference and its tokens."""
        with self._lock:
            if self._conferences.remove(conference_id) is None:
                raise SandboxNotFound(conference_id)
            self._drop_streams(conference_id)
            for token_id in self._tokens_of.pop(conference_id, []):
                self._tokens.pop(token_id, None)

    def list_conferences(self, base_url: str, query: str = "") -> dict[str, Any]:
        """Answer GET /conferences: one page of conferences with links."""
        with self._lock:
            return self._list(
                "conferences",
                self._conferences.keys,
                self._conferences.objects,
                base_url,
                query,
                filters=True,
            )

    # --- conference tokens --------------------------------------------------------------

    def list_conference_tokens(
        self, conference_id: str, base_url: str, query: str = ""
    ) -> dict[str, Any]:
        """Answer GET /conferences/{id}/conference_tokens: one page of tokens."""
        with self._lock:
            if conference_id not in self._conferences.objects:
                raise SandboxNotFound(conference_id)
            token_ids = [t for t in self._tokens_of.get(conference_id, []) if t in self._tokens]
            keys = [(f"{index:06d}", token_id) for index, token_id in enumerate(token_ids)]
            return self._list(
                f"conference_tokens:{conference_id}",
                keys,
                self._tokens,
                base_url,
                query,
                filters=False,
                shape=_public_token,
            )

    def get_conference_token(self, token_id: str) -> dict[str, Any]:
        """Return one conference token (API shape)."""
        with self._lock:
            token = self._tokens.get(token_id)
            if token is None:
                raise SandboxNotFound(token_id)
            return _public_token(token)

    def reset_conference_token(self, token_id: str) -> dict[str, Any]:
        """Give a conference token a new value; id, name and scopes stay."""
        with self._lock:
            token = self._tokens.get(token_id)
            if token is None:
                raise SandboxNotFound(token_id)
            token["token"] = _new_token_value()
            return _public_token(token)

    # --- rooms --------------------------------------------------------------------------

    def create_room(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a room; return it."""
        body = self._object_body(body)
        with self._lock:
            clean, errors = validate_body(body, schema.ROOM_CREATE_FIELDS, required=("name",))
            if "name" in clean and self._rooms.owner_of(clean["name"]) is not None:
                errors.append(error_item("name", "Name has already been taken"))
            merged = {**room_defaults(), **clean}
            errors += check_join_window(body, clean, merged)
            if errors:
                raise SandboxValidationError(errors)
            merged.setdefault("display_name", merged["name"])
            merged["id"] = str(uuid.uuid4())
            merged["created_at"] = merged["updated_at"] = self._stamp()
            room = {key: merged[key] for key in schema.ROOM_RESPONSE_FIELDS}
            self._rooms.insert(room)
            return dict(room)

    def get_room(self, id_or_name: str) -> dict[str, Any]:
        """Return a copy of a room found by id or, failing that, by name."""
        with self._lock:
            room = self._rooms.objects.get(id_or_name)
            if room is None:
                owner = self._rooms.owner_of(id_or_name)
                room = self._rooms.objects.get(owner) if owner else None
            if room is None:
                raise SandboxNotFound(id_or_name)
            return dict(room)

    def update_room(
        self, room_id: str, changes: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        """Change a room as a dashboard edit would (name allowed); bump updated_at.

        validate=False stores the changes as given, e.g. a value the portal does not know.
        """
        return self._update_room(room_id, changes, (*schema.ROOM_UPDATE_FIELDS, "name"), validate)

    def api_update_room(self, room_id: str, body: Any) -> dict[str, Any]:
        """Apply a PUT /rooms/{id} body, validated like SignalWire."""
        return self._update_room(room_id, body, schema.ROOM_UPDATE_FIELDS, True)

    def _update_room(
        self, room_id: str, body: Any, allowed: tuple[str, ...], validate: bool
    ) -> dict[str, Any]:
        body = self._object_body(body)
        with self._lock:
            room = self._rooms.objects.get(room_id)
            if room is None:
                raise SandboxNotFound(room_id)
            clean = dict(body)
            if validate:
                clean, errors = validate_body(body, allowed)
                name = clean.get("name")
                if name is not None:
                    owner = self._rooms.owner_of(name)
                    if owner is not None and owner != room_id:
                        errors.append(error_item("name", "Name has already been taken"))
                errors += check_join_window(body, clean, {**room, **clean})
                if errors:
                    raise SandboxValidationError(errors)
            if "name" in clean and clean["name"] != room["name"]:
                self._rooms.rename(room_id, room["name"], clean["name"])
            room.update(clean)
            room["updated_at"] = self._stamp()
            return dict(room)

    def delete_room(self, room_id: str) -> None:
        """Delete a room."""
        with self._lock:
            if self._rooms.remove(room_id) is None:
                raise SandboxNotFound(room_id)
            self._drop_streams(room_id)

    def list_rooms(self, base_url: str, query: str = "") -> dict[str, Any]:
        """Answer GET /rooms: one page of rooms with links."""
        with self._lock:
            return self._list(
                "rooms", self._rooms.keys, self._rooms.objects, base_url, query, filters=True
            )

    # --- room tokens --------------------------------------------------------------------

    def create_room_token(self, body: dict[str, Any]) -> dict[str, str]:
        """Mint a JWT-shaped room token signed with this Space's secret."""
        body = self._object_body(body)
        clean, errors = validate_body(body, schema.ROOM_TOKEN_FIELDS, required=("room_name",))
        errors += check_join_window(body, clean, clean)
        if errors:
            raise SandboxValidationError(errors)
        now = int(time.time())
        scopes = list(clean.get("permissions", schema.DEFAULT_ROOM_TOKEN_PERMISSIONS))
        if clean.get("join_as") == "audience":
            scopes = []
        user = clean.get("user_name")
        if user is None:
            alphabet = string.ascii_letters + string.digits
            user = "".join(secrets.choice(alphabet) for _ in range(12))
        claims: dict[str, Any] = {
            "iat": now,
            "jti": str(uuid.uuid4()),
            "sub": self.project_id,
            "r": clean["room_name"],
            "u": user,
            "s": scopes,
            "acr": clean.get("auto_create_room", True),
            "ja": clean.get("join_as", "member"),
            "ma": clean.get("media_allowed", "all"),
        }
        for field, short in (("join_from", "jf"), ("join_until", "ju"), ("remove_at", "rat")):
            if field in clean:
                claims[field] = clean[field]
                moment = parse_datetime(clean[field])
                assert moment is not None  # validate_body let only valid datetimes through
                claims[short] = int(moment.timestamp())
        if "remove_after_seconds_elapsed" in clean:
            claims["rse"] = clean["remove_after_seconds_elapsed"]
        claims["exp"] = claims.get("rat") or claims.get("ju") or now + 3600
        header = {"typ": "VRT", "alg": "HS256"}
        signing_input = (
            f"{b64(json.dumps(header, separators=(',', ':')).encode())}."
            f"{b64(json.dumps(claims, separators=(',', ':')).encode())}"
        )
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256)
        return {"token": f"{signing_input}.{b64(signature.digest())}"}

    def verify_room_token(self, token: str) -> dict[str, Any]:
        """Check a room token's signature and return its claims (ValueError if forged)."""
        try:
            header, claims, signature = token.split(".")
            expected = hmac.new(
                self._secret, f"{header}.{claims}".encode("ascii"), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(expected, unb64(signature)):
                raise ValueError("bad signature")
            return json.loads(unb64(claims))
        except (binascii.Error, UnicodeError, json.JSONDecodeError) as exc:
            raise ValueError("not a room token") from exc

    @staticmethod
    def _object_body(body: Any) -> dict[str, Any]:
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise SandboxBadRequest()
        return body


def _new_token_value() -> str:
    return f"vpt_{secrets.token_hex(16)}"


def _public_token(token: dict[str, Any]) -> dict[str, Any]:
    public = {key: token.get(key) for key in TOKEN_PUBLIC_FIELDS}
    public["scopes"] = list(public["scopes"] or [])
    return public
