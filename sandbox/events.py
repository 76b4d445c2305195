"""Events of the sandbox Space's sessions and recordings, derived from what happened."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

_EVENT_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4c1b-9d6e-2b7f4a9c0e11")


def event_id(*parts: str) -> str:
    """A stable event id derived from what the event is about."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, "/".join(parts)))


class EventsMixin:
    """The event timelines of a SandboxSpace: never stored, rebuilt from each session."""

    project_id: str
    _list: Callable[..., dict[str, Any]]
    _members: Callable[[str], list[dict[str, Any]]]
    _recordings_of_session: Callable[[str], list[dict[str, Any]]]
    _recording_events: Callable[..., list[tuple[str, dict[str, Any]]]]

    def _events_page(
        self, scope: str, events: list[dict[str, Any]], base_url: str, query: str
    ) -> dict[str, Any]:
        keys = [(f"{index:06d}", event["id"]) for index, event in enumerate(events)]
        objects = {event["id"]: event for event in events}
        return self._list(scope, keys, objects, base_url, query, filters=False)

    def _event(
        self, session: dict[str, Any], name: str, at: str, subject: str, **extra: Any
    ) -> dict[str, Any]:
        event = {
            "id": event_id(session["id"], name, subject),
            "project_id": self._project_uuid(),
            "room_id": session["_room_uuid"],
            "room_session_id": session["id"],
            "level": "info",
            "name": name,
            "payload": {"room_name": session["name"], **extra.pop("payload", {})},
            "created_at": at,
        }
        event.update(extra)
        return event

    def _project_uuid(self) -> str:
        try:
            return str(uuid.UUID(self.project_id))
        except ValueError:
            return str(uuid.uuid5(_EVENT_NAMESPACE, f"project/{self.project_id}"))

    def _session_events(self, session: dict[str, Any]) -> list[dict[str, Any]]:
        timed: list[tuple[str, int, dict[str, Any]]] = [
            (
                session["start_time"],
                0,
                self._event(session, "room.started", session["start_time"], ""),
            ),
        ]
        for member in self._members(session["id"]):
            payload = {"member_id": member["id"], "name": member["name"]}
            for name, at in (
                ("member.joined", member["join_time"]),
                ("member.left", member["leave_time"]),
            ):
                if at is not None:
                    event = self._event(
                        session,
                        name,
                        at,
                        member["id"],
                        payload=dict(payload),
                        room_participant_id=member["id"],
                    )
                    timed.append((at, 1, event))
        for recording in self._recordings_of_session(session["id"]):
            timed.extend((at, 1, event) for at, event in self._recording_events(recording, session))
        if session["end_time"] is not None:
            timed.append(
                (
                    session["end_time"],
                    2,
                    self._event(session, "room.ended", session["end_time"], ""),
                )
            )
        timed.sort(key=lambda item: (item[0], item[1]))
        return [event for _, _, event in timed]
