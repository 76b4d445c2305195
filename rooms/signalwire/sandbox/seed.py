"""Realistic, deterministic seed data for the sandbox Space."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.signalwire import schema
from rooms.signalwire.sandbox.validation import (
    conference_defaults,
    format_datetime,
    format_stamp,
    room_defaults,
)

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
SEED_EPOCH = datetime(2023, 1, 2, 8, 0, tzinfo=UTC)


@dataclass
class SeedData:
    """Objects ready to insert: conferences, their tokens, and rooms (API shapes)."""

    conferences: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    rooms: list[dict[str, Any]] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


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
    start = created + timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 10))
    start = start.replace(minute=rng.choice((0, 15, 30, 45)), second=0, microsecond=0)
    end = start + timedelta(minutes=rng.choice((30, 45, 60, 90, 120, 240)))
    return format_datetime(start), format_datetime(end)


def _stamps(rng: random.Random, created: datetime) -> tuple[str, str]:
    if rng.random() < 0.3:
        updated = created + timedelta(seconds=rng.randint(60, 86400 * 30))
    else:
        updated = created
    return format_stamp(created), format_stamp(updated)


def build_conferences(
    rng: random.Random, count: int, first_index: int, taken: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Make `count` conferences (API shape) and their moderator and guest tokens."""
    conferences: list[dict[str, Any]] = []
    tokens: list[dict[str, Any]] = []
    defaults = conference_defaults()
    moment = SEED_EPOCH
    for index in range(first_index, first_index + count):
        moment += timedelta(seconds=rng.randint(20, 400), microseconds=rng.randint(0, 999999))
        slug, company = rng.choice(COMPANIES)
        kind_slug, kind = rng.choice(CONFERENCE_KINDS)
        conference = dict(defaults)
        conference["id"] = _uuid(rng)
        conference["name"] = _unique(f"{slug}-{kind_slug}-{index:04d}", taken)
        conference["display_name"] = f"{company} {kind}"
        if rng.random() < 0.4:
            conference["description"] = rng.choice(DESCRIPTIONS)
        if rng.random() < 0.25:
            conference["join_from"], conference["join_until"] = _schedule(rng, moment)
        conference["quality"] = "1080p" if rng.random() < 0.3 else "720p"
        conference["layout"] = rng.choice(schema.LAYOUTS[:7])
        conference["size"] = rng.choices(schema.SIZES, weights=(3, 5, 2))[0]
        conference["record_on_start"] = rng.random() < 0.2
        conference["tone_on_entry_and_exit"] = rng.random() < 0.8
        conference["user_join_video_off"] = rng.random() < 0.1
        conference["room_join_video_off"] = rng.random() < 0.1
        conference["enable_chat"] = rng.random() < 0.9
        conference["enable_room_previews"] = rng.choice((None, False, True))
        if rng.random() < 0.15:
            conference.update(rng.choice(THEMES))
        conference["created_at"], conference["updated_at"] = _stamps(rng, moment)
        conferences.append({key: conference[key] for key in schema.CONFERENCE_RESPONSE_FIELDS})
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
    defaults = room_defaults()
    moment = SEED_EPOCH
    for index in range(first_index, first_index + count):
        moment += timedelta(seconds=rng.randint(20, 400), microseconds=rng.randint(0, 999999))
        slug, company = rng.choice(COMPANIES)
        kind_slug, kind = rng.choice(ROOM_KINDS)
        room = dict(defaults)
        room["id"] = _uuid(rng)
        room["name"] = _unique(f"{slug}_{kind_slug}_{index:04d}", taken)
        room["display_name"] = f"{company} {kind}"
        if rng.random() < 0.3:
            room["description"] = rng.choice(DESCRIPTIONS)
        room["max_members"] = rng.choice((2, 5, 10, 20, 20, 20, 50, 100, 300))
        room["quality"] = "1080p" if rng.random() < 0.25 else "720p"
        room["fps"] = 30 if rng.random() < 0.2 else 20
        if rng.random() < 0.2:
            room["join_from"], room["join_until"] = _schedule(rng, moment)
            if rng.random() < 0.5:
                room["remove_at"] = room["join_until"]
        if rng.random() < 0.15:
            room["remove_after_seconds_elapsed"] = rng.choice((900, 1800, 3600, 7200))
        room["layout"] = rng.choice(schema.LAYOUTS)
        room["record_on_start"] = rng.random() < 0.15
        room["tone_on_entry_and_exit"] = rng.random() < 0.8
        room["enable_room_previews"] = rng.random() < 0.2
        room["sync_audio_video"] = rng.choice((None, True, False))
        if rng.random() < 0.3:
            room["meta"] = {"team": rng.choice(ROOM_META_TEAMS), "cost_centre": rng.randint(100, 999)}
        room["prioritize_handraise"] = rng.random() < 0.1
        room["created_at"], room["updated_at"] = _stamps(rng, moment)
        rooms.append({key: room[key] for key in schema.ROOM_RESPONSE_FIELDS})
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
) -> SeedData:
    """Generate seed objects; the same arguments always give the same data."""
    rng = random.Random(seed)
    conference_list, tokens = build_conferences(
        rng, conferences, first_conference, set(taken_conference_names or ())
    )
    room_rng = random.Random(f"rooms-{seed}")
    room_list = build_rooms(room_rng, rooms, first_room, set(taken_room_names or ()))
    return SeedData(conferences=conference_list, tokens=tokens, rooms=room_list)
