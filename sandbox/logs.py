"""Video logs of the sandbox Space: the billing record of each session that ended."""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sandbox.errors import SandboxNotFound
from sandbox.paging import Key, micros, newest_first
from sandbox.validation import error_item, format_stamp, parse_datetime, query_values

LOG_FIELDS = (
    "id",
    "source",
    "type",
    "url",
    "room_name",
    "status",
    "locked",
    "started_at",
    "ended_at",
    "charge",
    "created_at",
    "charge_details",
)
DISCARDED_FIELDS = ("id", "discarded_at", "created_at")
FILTER_MESSAGE = "{} must be a valid date or ISO 8601 datetime"


def build_log(
    log_id: str, session: dict[str, Any], recordings: list[dict[str, Any]], stamp: str
) -> dict[str, Any]:
    """The log of an ended session: its member time and its recordings, charged."""
    details = [
        {"description": "Video session member minutes", "charge": session["cost_in_dollars"]}
    ]
    details += [
        {"description": "Video room recording", "charge": recording["cost_in_dollars"]}
        for recording in recordings
    ]
    kind = "video_conference_session" if session["_kind"] == "conference" else "video_room_session"
    return {
        "id": log_id,
        "source": "realtime_api",
        "type": kind,
        "url": f"/api/video/room_sessions/{session['id']}",
        "room_name": session["name"],
        "status": "completed",
        "locked": session["locked"],
        "started_at": session["start_time"],
        "ended_at": session["end_time"],
        "charge": round(sum(detail["charge"] for detail in details), 4),
        "created_at": stamp,
        "charge_details": details,
        "discarded_at": None,
    }


def public_log(log: dict[str, Any], origin: str) -> dict[str, Any]:
    """A log in the API's shape; a discarded one shows only id and its two times."""
    if log["discarded_at"] is not None:
        return {key: log[key] for key in DISCARDED_FIELDS}
    public = {key: log[key] for key in LOG_FIELDS}
    public["url"] = origin + log["url"]
    public["charge_details"] = [dict(detail) for detail in log["charge_details"]]
    return public


def _bound(params: dict[str, str], name: str, errors: list[dict[str, Any]]) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_datetime(raw.strip())
    if moment is None:
        errors.append(error_item(name, FILTER_MESSAGE.format(name.replace("_", " ").capitalize())))
    return moment


def _window(keys: list[Key], low: datetime | None, high: datetime | None) -> list[Key]:
    """The keys (newest first) of logs made between low and high, and a microsecond more."""
    if low is None and high is None:
        return keys
    start = 0 if high is None else bisect.bisect_left(keys, newest_first(micros(high) + 1, ""))
    end = len(keys) if low is None else bisect.bisect_right(keys, newest_first(micros(low) - 1, ""))
    return keys[start:end]


class LogsMixin:
    """The video log operations of a SandboxSpace."""

    _lock: threading.RLock
    _list: Callable[..., dict[str, Any]]
    _recordings_of_session: Callable[[str], list[dict[str, Any]]]

    def _init_logs(self) -> None:
        self._logs: dict[str, dict[str, Any]] = {}
        self._log_keys: list[Key] = []

    @property
    def logs(self) -> dict[str, dict[str, Any]]:
        """Every log by id (internal records, url relative to the Space)."""
        return self._logs

    def _write_log(self, session: dict[str, Any], stamp: str) -> dict[str, Any]:
        log = build_log(
            str(uuid.uuid4()), session, self._recordings_of_session(session["id"]), stamp
        )
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        self._logs[log["id"]] = log
        bisect.insort(self._log_keys, newest_first(micros(moment), log["id"]))
        return log

    def _add_logs(self, logs: list[tuple[dict[str, Any], Key]]) -> None:
        for log, key in logs:
            self._logs[log["id"]] = log
            self._log_keys.append(key)
        self._log_keys.sort()

    def list_logs(self, base_url: str, query: str, origin: str) -> dict[str, Any]:
        """Answer GET /logs: newest first, by creation time, deleted ones on request."""
        params = {name: values[-1] for name, values in query_values(query).items()}
        errors: list[dict[str, Any]] = []
        after = _bound(params, "created_after", errors)
        before = _bound(params, "created_before", errors)
        on = _bound(params, "created_on", errors)
        deleted = params.get("include_deleted")
        if deleted is not None and deleted not in ("true", "false"):
            errors.append(error_item("include_deleted", "Include deleted must be a boolean"))
        low = format_stamp(after) if after else None
        high = format_stamp(before) if before else None
        day = on.replace(hour=0, minute=0, second=0, microsecond=0) if on else None
        next_day = day + timedelta(days=1) if day else None
        day_low = format_stamp(day) if day else ""
        day_high = format_stamp(next_day) if next_day else ""
        include_deleted = deleted == "true"

        def wanted(log: dict[str, Any]) -> bool:
            created = log["created_at"]
            if low is not None and created <= low:
                return False
            if high is not None and created >= high:
                return False
            if day is not None and not day_low <= created < day_high:
                return False
            return include_deleted or log["discarded_at"] is None

        lows = [moment for moment in (after, day) if moment is not None]
        highs = [moment for moment in (before, next_day) if moment is not None]
        with self._lock:
            keys = _window(self._log_keys, max(lows, default=None), min(highs, default=None))
            return self._list(
                "logs",
                keys,
                self._logs,
                base_url,
                query,
                filters=False,
                shape=lambda log: public_log(log, origin),
                predicate=wanted,
                errors=errors,
            )

    def get_log(self, log_id: str, origin: str) -> dict[str, Any]:
        """Answer GET /logs/{id}."""
        with self._lock:
            log = self._logs.get(log_id)
            if log is None:
                raise SandboxNotFound(log_id)
            return public_log(log, origin)
