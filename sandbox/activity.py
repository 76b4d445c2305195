"""Room sessions, their members and events in the sandbox Space, and the control of them."""

from __future__ import annotations

import bisect
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rooms.signalwire import schema
from sandbox.activity_seed import build_history, seeded_members
from sandbox.errors import SandboxNotFound
from sandbox.events import EventsMixin
from sandbox.paging import Collection, Key, micros, newest_first
from sandbox.session_records import member_cost, new_session
from sandbox.validation import error_item, format_stamp, query_values

SESSION_LIST_FIELDS = (
    "id",
    "room_id",
    "name",
    "display_name",
    "max_members",
    "quality",
    "fps",
    "join_from",
    "join_until",
    "remove_at",
    "remove_after_seconds_elapsed",
    "layout",
    "record_on_start",
    "tone_on_entry_and_exit",
    "room_join_video_off",
    "user_join_video_off",
    "locked",
    "start_time",
    "end_time",
    "duration",
    "status",
    "created_at",
    "updated_at",
    "preview_url",
    "prioritize_handraise",
    "sync_audio_video",
    "cost_in_dollars",
    "enable_room_previews",
    "locked_cover",
)
# GET /room_sessions/{id} answers a summary: the list-only fields left out.
SESSION_SUMMARY_FIELDS = tuple(
    f
    for f in SESSION_LIST_FIELDS
    if f not in ("cost_in_dollars", "enable_room_previews", "locked_cover")
)
# Video.ActiveSession: what a room or conference shows of its live session (no nulls).
ACTIVE_SESSION_FIELDS = (
    "id",
    "room_id",
    "name",
    "display_name",
    "join_from",
    "join_until",
    "remove_at",
    "remove_after_seconds_elapsed",
    "layout",
    "max_members",
    "fps",
    "quality",
    "start_time",
    "end_time",
    "duration",
    "status",
    "record_on_start",
    "enable_room_previews",
    "preview_url",
)
MEMBER_FIELDS = (
    "id",
    "room_session_id",
    "name",
    "join_time",
    "leave_time",
    "duration",
    "cost_in_dollars",
)
SESSION_STATUSES = ("in-progress", "completed")
_NAME_RE = re.compile(schema.NAME_PATTERN)
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def public_member(member: dict[str, Any]) -> dict[str, Any]:
    """A member in the API's shape."""
    return {key: member[key] for key in MEMBER_FIELDS}


class SessionsMixin(EventsMixin):
    """The room session, member and event operations of a SandboxSpace."""

    _lock: threading.RLock
    _stamp: Callable[[], str]
    _list: Callable[..., dict[str, Any]]
    now: Callable[[], datetime]
    project_id: str
    _rooms: Collection
    _conferences: Collection
    _recordings: dict[str, dict[str, Any]]
    _logs: dict[str, dict[str, Any]]
    _start_recording: Callable[[dict[str, Any], str], dict[str, Any]]
    _finish_recordings: Callable[[dict[str, Any], str, str], None]
    _write_log: Callable[[dict[str, Any], str], dict[str, Any]]
    _add_recordings: Callable[[list[tuple[dict[str, Any], Key]]], None]
    _add_logs: Callable[[list[tuple[dict[str, Any], Key]]], None]

    def _init_sessions(self) -> None:
        self._sessions: dict[str, dict[str, Any]] = {}
        self._session_keys: list[Key] = []
        self._session_keys_by_room: dict[str, list[Key]] = {}
        self._session_keys_by_name: dict[str, list[Key]] = {}
        self._live: dict[str, Key] = {}
        self._live_by_name: dict[str, str] = {}
        self._members_of: dict[str, list[dict[str, Any]]] = {}

    def _activity_counts(self) -> dict[str, int]:
        return {
            "room_sessions": len(self._sessions),
            "live_sessions": len(self._live),
            "members": sum(len(m) for m in self._members_of.values())
            + sum(s.get("_member_count", 0) for s in self._sessions.values()),
            "room_recordings": len(self._recordings),
            "logs": len(self._logs),
        }

    @property
    def room_sessions(self) -> dict[str, dict[str, Any]]:
        """Every session by id (internal records: API fields plus `_` bookkeeping)."""
        return self._sessions

    def live_sessions(self) -> list[dict[str, str]]:
        """The id and room name of each session in progress, oldest first."""
        with self._lock:
            keys = sorted(self._live.values(), reverse=True)
            return [{"id": key[1], "name": self._sessions[key[1]]["name"]} for key in keys]

    def with_active_session(self, answer: dict[str, Any], query: str) -> dict[str, Any]:
        """Add active_session to the rooms or conferences of an answer, when asked and live."""
        if query_values(query).get("include_active_session", ["false"])[-1] != "true":
            return answer
        with self._lock:
            for owner in answer["data"] if "data" in answer else [answer]:
                session_id = self._live_by_name.get(owner["name"])
                session = self._sessions.get(session_id) if session_id else None
                if session is not None and session["room_id"] == owner["id"]:
                    active = {key: session[key] for key in ACTIVE_SESSION_FIELDS}
                    active["audio_video_sync"] = session["sync_audio_video"]
                    owner["active_session"] = {k: v for k, v in active.items() if v is not None}
        return answer

    def _index_session(self, session: dict[str, Any], key: Key) -> None:
        session["_key"] = key
        self._sessions[session["id"]] = session
        for index, value in (
            (self._session_keys_by_room, session["room_id"]),
            (self._session_keys_by_name, session["name"]),
        ):
            if value is not None:
                bisect.insort(index.setdefault(value, []), key)
        bisect.insort(self._session_keys, key)

    # --- the API ------------------------------------------------------------------------

    def list_sessions(self, base_url: str, query: str = "") -> dict[str, Any]:
        """Answer GET /room_sessions: newest first, filtered by room, name or status."""
        params = {name: values[-1] for name, values in query_values(query).items()}
        errors = []
        room_id, name = params.get("room_id"), params.get("room_name")
        matches, status = params.get("room_name_matches"), params.get("status")
        if room_id is not None and not _UUID_RE.fullmatch(room_id):
            errors.append(error_item("room_id", "Room id must be a valid UUID"))
            room_id = None
        if status is not None and status not in SESSION_STATUSES:
            errors.append(error_item("status", "Status is not included in the list"))
            status = None
        room_id = room_id.lower() if room_id else room_id

        def wanted(session: dict[str, Any]) -> bool:
            return (
                (room_id is None or session["room_id"] == room_id)
                and (name is None or session["name"] == name)
                and (not matches or matches in (session["name"] or ""))
                and (status is None or session["status"] == status)
            )

        with self._lock:
            if status == "in-progress":
                keys = sorted(self._live.values())
            elif room_id is not None:
                keys = self._session_keys_by_room.get(room_id, [])
            elif name is not None:
                keys = self._session_keys_by_name.get(name, [])
            else:
                keys = self._session_keys
            return self._list(
                "room_sessions",
                keys,
                self._sessions,
                base_url,
                query,
                filters=False,
                shape=_list_shape,
                predicate=wanted,
                errors=errors,
            )

    def get_session(self, session_id: str) -> dict[str, Any]:
        """Answer GET /room_sessions/{id}: the session's summary."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise SandboxNotFound(session_id)
            return {key: session[key] for key in SESSION_SUMMARY_FIELDS}

    def list_members(self, session_id: str, base_url: str, query: str = "") -> dict[str, Any]:
        """Answer GET /room_sessions/{id}/members: in the order they joined."""
        with self._lock:
            members = self._members(session_id)
            keys = [(f"{index:06d}", member["id"]) for index, member in enumerate(members)]
            objects = {member["id"]: member for member in members}
            return self._list(
                f"members:{session_id}",
                keys,
                objects,
                base_url,
                query,
                filters=False,
                shape=public_member,
            )

    def list_session_events(
        self, session_id: str, base_url: str, query: str = ""
    ) -> dict[str, Any]:
        """Answer GET /room_sessions/{id}/events: what happened, in order."""
        with self._lock:
            session = self._sessions.get(session_id)
            events = self._session_events(session) if session is not None else []
            return self._events_page(f"events:{session_id}", events, base_url, query)

    # --- the control API ----------------------------------------------------------------

    def start_session(
        self,
        room_id: Any = None,
        room_name: Any = None,
        members: Any = (),
        record: Any = None,
    ) -> dict[str, Any]:
        """Start a session in a room or conference (by id or name); answer it (list shape).

        A name no room or conference has starts a session in a room made on the fly,
        as a token with auto_create_room would: its room_id is null.
        """
        if (room_id is None) == (room_name is None):
            raise ValueError("give room_id or room_name")
        for label, value in (("room_id", room_id), ("room_name", room_name)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{label} must be a string")
        if record is not None and not isinstance(record, bool):
            raise ValueError("record must be a boolean")
        names = _member_names(members)
        with self._lock:
            kind, owner = self._find_owner(room_id, room_name)
            name = owner["name"] if owner else room_name
            if not owner and not (isinstance(name, str) and _NAME_RE.fullmatch(name)):
                raise ValueError("room_name is not a valid room name")
            if name in self._live_by_name:
                raise ValueError(f"a session is already in progress in {name}")
            now = self.now()
            stamp = format_stamp(now)
            session = new_session(str(uuid.uuid4()), kind, owner, name, stamp)
            if record is not None:
                session["_record"] = record
            self._index_session(session, newest_first(micros(now), session["id"]))
            self._live[session["id"]] = session["_key"]
            self._live_by_name[name] = session["id"]
            self._members_of[session["id"]] = []
            if session["_record"]:
                self._start_recording(session, stamp)
            for member_name in names:
                self._join(session, member_name)
            return _list_shape(session)

    def _find_owner(
        self, room_id: str | None, room_name: str | None
    ) -> tuple[str | None, dict | None]:
        rooms, conferences = self._rooms, self._conferences
        if room_id is not None:
            for kind, store in (("room", rooms), ("conference", conferences)):
                if room_id in store.objects:
                    return kind, store.objects[room_id]
            raise SandboxNotFound(room_id)
        for kind, store in (("room", rooms), ("conference", conferences)):
            owner_id = store.owner_of(room_name or "")
            if owner_id is not None:
                return kind, store.objects[owner_id]
        return None, None

    def _members(self, session_id: str) -> list[dict[str, Any]]:
        members = self._members_of.get(session_id)
        if members is not None:
            return members
        session = self._sessions.get(session_id)
        if session is None or "_member_seed" not in session:
            return []
        return seeded_members(session)

    def _live_session(self, session_id: str) -> dict[str, Any]:
        session = self._sessions.get(session_id)
        if session is None:
            raise SandboxNotFound(session_id)
        if session["status"] != "in-progress":
            raise ValueError("the session has ended")
        return session

    def join_session(self, session_id: str, name: Any) -> dict[str, Any]:
        """A member joins a live session; answer the member."""
        (name,) = _member_names([name])
        with self._lock:
            return public_member(self._join(self._live_session(session_id), name))

    def _join(self, session: dict[str, Any], name: str) -> dict[str, Any]:
        members = self._members_of[session["id"]]
        present = sum(1 for member in members if member["leave_time"] is None)
        if session["max_members"] is not None and present >= session["max_members"]:
            raise ValueError(f"the room is full ({session['max_members']} members)")
        now = self.now()
        member = {
            "id": str(uuid.uuid4()),
            "room_session_id": session["id"],
            "name": name,
            "join_time": format_stamp(now),
            "leave_time": None,
            "duration": None,
            "cost_in_dollars": 0.0,
            "_joined": now,
        }
        members.append(member)
        session["updated_at"] = self._stamp()
        return member

    def leave_session(
        self, session_id: str, name: Any = None, member_id: Any = None
    ) -> dict[str, Any]:
        """A member (by name, or by member_id) leaves a live session; answer the member."""
        with self._lock:
            session = self._live_session(session_id)
            for member in self._members_of[session_id]:
                if member["leave_time"] is None and (
                    member["id"] == member_id if member_id is not None else member["name"] == name
                ):
                    self._leave(member, self.now())
                    session["updated_at"] = self._stamp()
                    return public_member(member)
            raise ValueError("no such member is in the session")

    @staticmethod
    def _leave(member: dict[str, Any], now: datetime) -> None:
        seconds = max(0, int((now - member["_joined"]).total_seconds()))
        member["leave_time"] = format_stamp(now)
        member["duration"] = seconds
        member["cost_in_dollars"] = member_cost(seconds)

    def end_session(self, session_id: str, recording_status: Any = "completed") -> dict[str, Any]:
        """End a live session: members leave, recordings stop, a log is written."""
        if recording_status not in ("processing", "completed"):
            raise ValueError("recording_status must be processing or completed")
        with self._lock:
            session = self._live_session(session_id)
            now = self.now()
            for member in self._members_of[session_id]:
                if member["leave_time"] is None:
                    self._leave(member, now)
            stamp = format_stamp(now)
            session["status"] = "completed"
            session["end_time"] = stamp
            session["duration"] = max(0, int((now - session["_started"]).total_seconds()))
            session["cost_in_dollars"] = round(
                sum(m["cost_in_dollars"] for m in self._members_of[session_id]), 4
            )
            session["updated_at"] = self._stamp()
            del self._live[session_id]
            self._live_by_name.pop(session["name"], None)
            self._finish_recordings(session, stamp, recording_status)
            self._write_log(session, stamp)
            return _list_shape(session)

    def _seed_sessions(self, count: int, seed: int, until: datetime) -> None:
        with self._lock:
            owners = [("room", room) for room in self._rooms.objects.values()]
            owners += [("conference", c) for c in self._conferences.objects.values()]
            history = build_history(count, seed, until, owners, len(self._sessions))
            for session, key in history.sessions:
                if session["id"] in self._sessions:
                    continue
                session["_key"] = key
                self._sessions[session["id"]] = session
                for index, value in (
                    (self._session_keys_by_room, session["room_id"]),
                    (self._session_keys_by_name, session["name"]),
                ):
                    if value is not None:
                        index.setdefault(value, []).append(key)
                self._session_keys.append(key)
            for index in (self._session_keys_by_room, self._session_keys_by_name):
                for keys in index.values():
                    keys.sort()
            self._session_keys.sort()
            self._add_recordings(history.recordings)
            self._add_logs(history.logs)


def _list_shape(session: dict[str, Any]) -> dict[str, Any]:
    return {key: session[key] for key in SESSION_LIST_FIELDS}


def _member_names(members: Any) -> list[str]:
    if not isinstance(members, list | tuple):
        raise ValueError("members must be a list of names")
    for name in members:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a member's name must be a non-empty string")
        if len(name) > schema.USER_NAME_MAX:
            raise ValueError(f"a member's name has at most {schema.USER_NAME_MAX} characters")
    return list(members)
