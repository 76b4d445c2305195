"""Deterministic past sessions for the sandbox Space: members, recordings and logs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.logs import build_log
from sandbox.paging import Key, newest_first
from sandbox.recordings import recording_cost, recording_size
from sandbox.session_records import member_cost, new_session

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
    recordings: list[tuple[dict[str, Any], Key]] = field(default_factory=list)
    logs: list[tuple[dict[str, Any], Key]] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def member_plan(session: dict[str, Any], names: bool = True) -> list[tuple[int, int, str]]:
    """(joined after, stayed, name) of each member of a seeded session, from its own seed."""
    state, seconds = session["_member_seed"], session["duration"]
    plan = []
    for _ in range(session["_member_count"]):
        state = (state * _LCG_A + _LCG_C) & _MASK
        joined = int((state >> 11) * _UNIT * seconds * 0.3)
        state = (state * _LCG_A + _LCG_C) & _MASK
        stayed = max(30, int((seconds - joined) * (0.4 + 0.6 * (state >> 11) * _UNIT)))
        state = (state * _LCG_A + _LCG_C) & _MASK
        name = (
            f"{FIRST_NAMES[(state >> 40) % 18]} {LAST_NAMES[(state >> 20) % 16]}" if names else ""
        )
        plan.append((joined, stayed, name))
    return plan


def seeded_members(session: dict[str, Any]) -> list[dict[str, Any]]:
    """The members of a seeded session, built on demand: the same every time."""
    start = datetime.fromisoformat(session["start_time"][:-1])
    rng = random.Random(f"members-{session['id']}")
    members = []
    for joined, stayed, name in member_plan(session):
        members.append(
            {
                "id": _uuid(rng),
                "room_session_id": session["id"],
                "name": name,
                "join_time": _stamp(start + timedelta(seconds=joined)),
                "leave_time": _stamp(start + timedelta(seconds=joined + stayed)),
                "duration": stayed,
                "cost_in_dollars": member_cost(stayed),
            }
        )
    return members


def build_history(
    count: int,
    seed: int,
    until: datetime,
    owners: list[tuple[str, dict[str, Any]]],
    first_index: int = 0,
) -> History:
    """`count` completed sessions over the HISTORY_DAYS before `until`, oldest first.

    Members are not built here: a session keeps the seed they are made from on demand.
    """
    rng = random.Random(f"sessions-{seed}-{first_index}")
    until = until.astimezone(UTC).replace(tzinfo=None)
    span = HISTORY_DAYS * 86400 - 3 * 3600
    starts = sorted(int(rng.random() * span) for _ in range(count))
    origin = until - timedelta(days=HISTORY_DAYS)
    history = History()
    rand = rng.random
    templates: dict[str, dict[str, Any]] = {}
    fresh = "2000-01-01T00:00:00.000000Z"
    for offset in starts:
        if owners and rand() < 0.95:
            kind, owner = owners[int(rand() * len(owners))]
            template = templates.get(owner["id"])
            if template is None:
                template = templates[owner["id"]] = new_session(
                    "", kind, owner, owner["name"], fresh
                )
            session = template.copy()
        else:
            slug = ON_THE_FLY_NAMES[int(rand() * len(ON_THE_FLY_NAMES))]
            session = new_session("", None, None, f"{slug}_{int(rand() * 900) + 100}", fresh)
            session["_room_uuid"] = _uuid(rng)
        start = origin + timedelta(seconds=offset, microseconds=int(rand() * 1_000_000))
        seconds = 300 + int(rand() * rand() * 7200)
        end = start + timedelta(seconds=seconds)
        session_id = session["id"] = _uuid(rng)
        start_stamp, end_stamp = _stamp(start), _stamp(end)
        session["start_time"] = session["created_at"] = start_stamp
        session["end_time"] = session["updated_at"] = end_stamp
        session["status"] = "completed"
        session["duration"] = seconds
        session["locked"] = rand() < 0.03
        session["_member_seed"] = rng.getrandbits(32)
        session["_member_count"] = min(session["max_members"] or 50, 1 + int(rand() * rand() * 9))
        del session["_started"]
        total = sum(member_cost(stayed) for _, stayed, _ in member_plan(session, names=False))
        session["cost_in_dollars"] = round(total, 4)
        start_micros = (start - _EPOCH) // _MICRO
        history.sessions.append((session, newest_first(start_micros, session_id)))
        recordings = []
        if session["_record"]:
            recording: dict[str, Any] = {
                "id": _uuid(rng),
                "room_session_id": session_id,
                "status": "completed" if until - end > timedelta(minutes=15) else "processing",
                "started_at": start_stamp,
                "finished_at": end_stamp,
                "duration": seconds,
                "size_in_bytes": recording_size(seconds),
                "format": "video/mp4",
                "cost_in_dollars": recording_cost(seconds),
                "created_at": start_stamp,
                "updated_at": end_stamp,
            }
            recordings.append(recording)
            history.recordings.append((recording, newest_first(start_micros, recording["id"])))
        log = build_log(_uuid(rng), session, recordings, end_stamp)
        if rand() < 0.01:
            log["discarded_at"] = _stamp(min(until, end + timedelta(days=1 + int(rand() * 5))))
        end_micros = start_micros + seconds * 1_000_000
        history.logs.append((log, newest_first(end_micros, log["id"])))
    return history


_EPOCH = datetime(1970, 1, 1)
# A small linear congruential generator: members are remade from it on every read.
_LCG_A, _LCG_C, _MASK = 6364136223846793005, 1442695040888963407, 2**64 - 1
_UNIT = 1 / 2**53
_MICRO = timedelta(microseconds=1)
