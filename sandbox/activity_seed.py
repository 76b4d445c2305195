"""Deterministic past sessions for the sandbox Space: members, recordings and logs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.activity import Key, member_cost, micros, new_session, newest_first
from sandbox.logs import build_log
from sandbox.recordings import recording_cost, recording_size

HISTORY_DAYS = 90
FIRST_NAMES = (
    "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Radia", "Dennis",
    "Frances", "Edsger", "Hedy", "Tim", "Katherine", "Guido", "Sophie", "Niklaus", "Anita",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Thompson", "Perlman",
    "Ritchie", "Allen", "Dijkstra", "Lamarr", "Berners-Lee", "Johnson", "van Rossum", "Wilson",
)  # fmt: skip
ON_THE_FLY_NAMES = ("adhoc_call", "quick_sync", "escalation", "customer_call", "pop_up")


@dataclass
class History:
    """Seeded records ready to index, each with its sort key where it is listed."""

    sessions: list[tuple[dict[str, Any], Key]] = field(default_factory=list)
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    recordings: list[tuple[dict[str, Any], Key]] = field(default_factory=list)
    logs: list[tuple[dict[str, Any], Key]] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


def _stamp(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def build_history(
    count: int,
    seed: int,
    until: datetime,
    owners: list[tuple[str, dict[str, Any]]],
    first_index: int = 0,
) -> History:
    """`count` completed sessions over the HISTORY_DAYS before `until`, oldest first."""
    rng = random.Random(f"sessions-{seed}-{first_index}")
    until = until.astimezone(UTC)
    span = HISTORY_DAYS * 86400 - 3 * 3600
    starts = sorted(int(rng.random() * span) for _ in range(count))
    origin = until - timedelta(days=HISTORY_DAYS)
    history = History()
    rand = rng.random
    for offset in starts:
        if owners and rand() < 0.95:
            kind, owner = owners[int(rand() * len(owners))]
            name = owner["name"]
        else:
            kind, owner = None, None
            name = (
                f"{ON_THE_FLY_NAMES[int(rand() * len(ON_THE_FLY_NAMES))]}_{int(rand() * 900) + 100}"
            )
        start = origin + timedelta(seconds=offset, microseconds=int(rand() * 1_000_000))
        seconds = 300 + int(rand() * rand() * 7200)
        end = start + timedelta(seconds=seconds)
        session = new_session(_uuid(rng), kind, owner, name, _stamp(start))
        if owner is None:
            session["_room_uuid"] = _uuid(rng)
        session_id = session["id"]
        cap = session["max_members"] or 50
        members = []
        total = 0.0
        for _ in range(min(cap, 1 + int(rand() * rand() * 9))):
            joined = int(rand() * seconds * 0.3)
            stayed = max(30, int((seconds - joined) * (0.4 + 0.6 * rand())))
            cost = member_cost(stayed)
            total += cost
            members.append(
                {
                    "id": _uuid(rng),
                    "room_session_id": session_id,
                    "name": f"{FIRST_NAMES[int(rand() * 18)]} {LAST_NAMES[int(rand() * 16)]}",
                    "join_time": _stamp(start + timedelta(seconds=joined)),
                    "leave_time": _stamp(start + timedelta(seconds=joined + stayed)),
                    "duration": stayed,
                    "cost_in_dollars": cost,
                }
            )
        end_stamp = _stamp(end)
        session.update(
            status="completed",
            end_time=end_stamp,
            duration=seconds,
            cost_in_dollars=round(total, 4),
            updated_at=end_stamp,
            locked=rand() < 0.03,
        )
        history.sessions.append((session, newest_first(micros(start), session_id)))
        history.members[session_id] = members
        recordings = []
        if session["_record"]:
            recording = {
                "id": _uuid(rng),
                "room_session_id": session_id,
                "status": "completed" if until - end > timedelta(minutes=15) else "processing",
                "started_at": session["start_time"],
                "finished_at": end_stamp,
                "duration": seconds,
                "size_in_bytes": recording_size(seconds),
                "format": "video/mp4",
                "cost_in_dollars": recording_cost(seconds),
                "created_at": session["start_time"],
                "updated_at": end_stamp,
            }
            recordings.append(recording)
            history.recordings.append((recording, newest_first(micros(start), recording["id"])))
        log = build_log(_uuid(rng), session, recordings, end_stamp)
        if rand() < 0.01:
            log["discarded_at"] = _stamp(min(until, end + timedelta(days=1 + int(rand() * 5))))
        history.logs.append((log, newest_first(micros(end), log["id"])))
    return history
