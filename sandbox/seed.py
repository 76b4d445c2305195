"""Realistic, deterministic seed data for the sandbox Space."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rooms.signalwire import schema
from sandbox.validation import conference_defaults, room_defaults

COMPANIES = (
    ("acme", "Acme"),
    ("globex", "Globex"),
    ("initech", "Initech"),
    ("umbrella", "Umbrella"),
    ("hooli", "Hooli"),
    ("stark", "Stark Industries"),
    ("wayne", "Wayne Enterprises"),
    ("wonka", "Wonka"),
    ("cyberdyne", "Cyberdyne"),
    ("soylent", "Soylent"),
    ("tyrell", "Tyrell"),
    ("vandelay", "Vandelay Industries"),
    ("dunder", "Dunder Mifflin"),
    ("piedpiper", "Pied Piper"),
    ("massive", "Massive Dynamic"),
    ("oscorp", "Oscorp"),
)
CONFERENCE_KINDS = (
    ("allhands", "All-hands"),
    ("standup", "Daily Stand-up"),
    ("retro", "Sprint Retro"),
    ("townhall", "Town Hall"),
    ("onboarding", "Onboarding"),
    ("sales-sync", "Sales Sync"),
    ("board", "Board Meeting"),
    ("webinar", "Webinar"),
    ("design-review", "Design Review"),
    ("support", "Customer Support"),
    ("training", "Training"),
    ("interview", "Interview"),
    ("offsite", "Offsite Planning"),
    ("qbr", "Quarterly Business Review"),
)
ROOM_KINDS = (
    ("huddle", "Huddle"),
    ("lobby", "Lobby"),
    ("war_room", "War Room"),
    ("pairing", "Pairing"),
    ("helpdesk", "Help Desk"),
    ("studio", "Studio"),
    ("classroom", "Classroom"),
    ("focus", "Focus Room"),
    ("coffee", "Coffee Chat"),
    ("broadcast", "Broadcast"),
)
DESCRIPTIONS = (
    "Company-wide update with Q&A at the end.",
    "Fifteen minutes, cameras optional. Post blockers in the channel first.",
    "What went well, what did not, what we change next sprint.",
    "Recorded for people in other time zones; recordings kept 30 days.",
    "External guests join through the lobby; moderators admit them.",
    "Walkthrough of the new hire checklist, laptops and accounts.",
    "Pipeline review for the regional sales teams.",
    "Please mute on entry. Slides are shared in the meeting notes.",
)
THEMES = (
    {"dark_primary": "#FF5A1F", "light_primary": "#E0460C", "dark_background": "#111827"},
    {"dark_primary": "#10B981", "light_primary": "#059669", "light_background": "#F0FDF4"},
    {"dark_primary": "#8B5CF6", "light_primary": "#6D28D9", "dark_foreground": "#F5F3FF"},
    {"dark_primary": "#0EA5E9", "light_primary": "#0284C7", "dark_success": "#22C55E"},
    {"dark_primary": "#e11d48", "light_primary": "#be123c", "light_negative": "#9f1239"},
)
ROOM_META_TEAMS = ("platform", "growth", "support", "sales", "design", "data", "security")
SIZE_MIX = ("small",) * 3 + ("medium",) * 5 + ("large",) * 2
# Naive UTC: isoformat() is the fast way to a stamp, and seeds need to be fast.
SEED_EPOCH = datetime(2023, 1, 2, 8, 0)


@dataclass
class SeedData:
    """Objects ready to insert: conferences, their tokens, and rooms (API shapes)."""

    conferences: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    rooms: list[dict[str, Any]] = field(default_factory=list)


_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


def _uuid(rng: random.Random) -> str:
    digits = f"{(rng.getrandbits(128) & _VERSION_MASK) | _VERSION_BITS:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _pick(rng: random.Random, options: tuple[Any, ...]) -> Any:
    return options[int(rng.random() * len(options))]


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def _token_value(rng: random.Random) -> str:
    return f"vpt_{rng.getrandbits(128):032x}"


def _unique(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate in taken:
        candidate = f"{name}-{suffix}"
        suffix += 1
    taken.add(candidate)
    return candidate


def _schedule(rng: random.Random, created: datetime) -> tuple[str, str]:
    start = created + timedelta(days=_between(rng, 1, 60), hours=_between(rng, 0, 10))
    start = start.replace(minute=_pick(rng, (0, 15, 30, 45)), second=0, microsecond=0)
    end = start + timedelta(minutes=_pick(rng, (30, 45, 60, 90, 120, 240)))
    return f"{start.isoformat()}Z", f"{end.isoformat()}Z"


def _stamps(rng: random.Random, created: datetime) -> tuple[str, str]:
    stamp = _iso(created)
    if rng.random() < 0.3:
        return stamp, _iso(created + timedelta(seconds=_between(rng, 60, 86400 * 30)))
    return stamp, stamp


def build_conferences(
    rng: random.Random, count: int, first_index: int, taken: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Make `count` conferences (API shape) and their moderator and guest tokens."""
    conferences: list[dict[str, Any]] = []
    tokens: list[dict[str, Any]] = []
    template = dict.fromkeys(schema.CONFERENCE_RESPONSE_FIELDS)
    template.update(conference_defaults())
    moment = SEED_EPOCH
    for index in range(first_index, first_index + count):
        moment += timedelta(microseconds=_between(rng, 20_000_000, 400_999_999))
        slug, company = _pick(rng, COMPANIES)
        kind_slug, kind = _pick(rng, CONFERENCE_KINDS)
        conference = template.copy()
        conference["id"] = _uuid(rng)
        conference["name"] = _unique(f"{slug}-{kind_slug}-{index:04d}", taken)
        conference["display_name"] = f"{company} {kind}"
        if rng.random() < 0.4:
            conference["description"] = _pick(rng, DESCRIPTIONS)
        if rng.random() < 0.25:
            conference["join_from"], conference["join_until"] = _schedule(rng, moment)
        conference["quality"] = "1080p" if rng.random() < 0.3 else "720p"
        conference["layout"] = _pick(rng, schema.LAYOUTS[:7])
        conference["size"] = _pick(rng, SIZE_MIX)
        conference["record_on_start"] = rng.random() < 0.2
        conference["tone_on_entry_and_exit"] = rng.random() < 0.8
        conference["user_join_video_off"] = rng.random() < 0.1
        conference["room_join_video_off"] = rng.random() < 0.1
        conference["enable_chat"] = rng.random() < 0.9
        conference["enable_room_previews"] = _pick(rng, (None, False, True))
        if rng.random() < 0.15:
            conference.update(_pick(rng, THEMES))
        conference["created_at"], conference["updated_at"] = _stamps(rng, moment)
        conferences.append(conference)
        for name, scopes in (
            ("moderator", schema.MODERATOR_PERMISSIONS),
            ("guest", schema.GUEST_PERMISSIONS),
        ):
            tokens.append(
                {
                    "id": _uuid(rng),
                    "name": name,
                    "token": _token_value(rng),
                    "scopes": list(scopes),
                    "conference_id": conference["id"],
                }
            )
    return conferences, tokens


def build_rooms(
    rng: random.Random, count: int, first_index: int, taken: set[str]
) -> list[dict[str, Any]]:
    """Make `count` rooms (API shape) with a realistic mix of settings."""
    rooms: list[dict[str, Any]] = []
    template = dict.fromkeys(schema.ROOM_RESPONSE_FIELDS)
    template.update(room_defaults())
    moment = SEED_EPOCH
    for index in range(first_index, first_index + count):
        moment += timedelta(microseconds=_between(rng, 20_000_000, 400_999_999))
        slug, company = _pick(rng, COMPANIES)
        kind_slug, kind = _pick(rng, ROOM_KINDS)
        room = template.copy()
        room["id"] = _uuid(rng)
        room["name"] = _unique(f"{slug}_{kind_slug}_{index:04d}", taken)
        room["display_name"] = f"{company} {kind}"
        if rng.random() < 0.3:
            room["description"] = _pick(rng, DESCRIPTIONS)
        room["max_members"] = _pick(rng, (2, 5, 10, 20, 20, 20, 50, 100, 300))
        room["quality"] = "1080p" if rng.random() < 0.25 else "720p"
        room["fps"] = 30 if rng.random() < 0.2 else 20
        if rng.random() < 0.2:
            room["join_from"], room["join_until"] = _schedule(rng, moment)
            if rng.random() < 0.5:
                room["remove_at"] = room["join_until"]
        if rng.random() < 0.15:
            room["remove_after_seconds_elapsed"] = _pick(rng, (900, 1800, 3600, 7200))
        room["layout"] = _pick(rng, schema.LAYOUTS)
        room["record_on_start"] = rng.random() < 0.15
        room["tone_on_entry_and_exit"] = rng.random() < 0.8
        room["enable_room_previews"] = rng.random() < 0.2
        room["sync_audio_video"] = _pick(rng, (None, True, False))
        if rng.random() < 0.3:
            room["meta"] = {
                "team": _pick(rng, ROOM_META_TEAMS),
                "cost_centre": _between(rng, 100, 999),
            }
        room["prioritize_handraise"] = rng.random() < 0.1
        room["created_at"], room["updated_at"] = _stamps(rng, moment)
        rooms.append(room)
    return rooms


def build_seed(
    conferences: int,
    rooms: int,
    seed: int,
    *,
    first_conference: int = 1,
    first_room: int = 1,
    taken_conference_names: set[str] | None = None,
    taken_room_names: set[str] | None = None,
    variant: int = 0,
) -> SeedData:
    """Generate seed objects; the same arguments always give the same data.

    A variant above 0 gives another project's take on the same seed (see vary_seed).
    """
    rng = random.Random(seed)
    conference_list, tokens = build_conferences(
        rng, conferences, first_conference, set(taken_conference_names or ())
    )
    room_rng = random.Random(f"rooms-{seed}")
    room_list = build_rooms(room_rng, rooms, first_room, set(taken_room_names or ()))
    data = SeedData(conferences=conference_list, tokens=tokens, rooms=room_list)
    if variant:
        vary_seed(
            data,
            seed,
            variant,
            taken_conference_names=set(taken_conference_names or ()),
            taken_room_names=set(taken_room_names or ()),
        )
    return data


def vary_seed(
    data: SeedData,
    seed: int,
    variant: int,
    *,
    taken_conference_names: set[str],
    taken_room_names: set[str],
) -> None:
    """Make seed data another project's: new ids and token values; of each three objects,
    one keeps its name with other settings, one is the same, one gets a name of its own."""
    rng = random.Random(f"variant-{seed}-{variant}")
    new_ids: dict[str, str] = {}
    conference_names = taken_conference_names | {c["name"] for c in data.conferences}
    for position, conference in enumerate(data.conferences):
        new_ids[conference["id"]] = conference["id"] = _uuid(rng)
        if position % 3 == 0:
            conference["quality"] = "720p" if conference["quality"] == "1080p" else "1080p"
            conference["size"] = "large" if conference["size"] != "large" else "medium"
            conference["enable_chat"] = not conference["enable_chat"]
            conference["description"] = f"Project {variant + 1}'s copy: {_pick(rng, DESCRIPTIONS)}"
        elif position % 3 == 2:
            conference["name"] = _unique(f"{conference['name']}-p{variant + 1}", conference_names)
    for token in data.tokens:
        token["id"] = _uuid(rng)
        token["token"] = _token_value(rng)
        token["conference_id"] = new_ids[token["conference_id"]]
    room_names = taken_room_names | {r["name"] for r in data.rooms}
    for position, room in enumerate(data.rooms):
        room["id"] = _uuid(rng)
        if position % 3 == 0:
            room["quality"] = "720p" if room["quality"] == "1080p" else "1080p"
            room["max_members"] = 7 if room["max_members"] != 7 else 8
            room["layout"] = _pick(rng, tuple(x for x in schema.LAYOUTS if x != room["layout"]))
            room["description"] = f"Project {variant + 1}'s copy: {_pick(rng, DESCRIPTIONS)}"
        elif position % 3 == 2:
            room["name"] = _unique(f"{room['name']}_p{variant + 1}", room_names)
