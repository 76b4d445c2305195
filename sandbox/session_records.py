"""A room session's record and the price of a member's time: what live and seeded sessions share."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

MEMBER_MINUTE_RATE = 0.0035  # the sandbox's own price of one member-minute, in dollars
LOCKED_COVER = "https://sandbox.signalwire.invalid/images/locked-cover.png"


def member_cost(seconds: int) -> float:
    """What a member's time costs: every started minute (one at least) at the member-minute rate."""
    return round(max(1, math.ceil(seconds / 60)) * MEMBER_MINUTE_RATE, 4)


def new_session(
    session_id: str, kind: str | None, owner: dict[str, Any] | None, name: str, stamp: str
) -> dict[str, Any]:
    """A session record for a room, a conference, or a room made on the fly (owner None)."""
    settings = owner or {}
    started = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    is_room = kind == "room" or owner is None
    defaults = {"max_members": 20, "fps": 20} if owner is None else {}
    session = {
        "id": session_id,
        "room_id": owner["id"] if owner else None,
        "name": name,
        "display_name": settings.get("display_name", name),
        "max_members": settings.get("max_members", defaults.get("max_members"))
        if is_room
        else None,
        "quality": settings.get("quality", "720p"),
        "fps": settings.get("fps", defaults.get("fps")) if is_room else 20,
        "join_from": settings.get("join_from"),
        "join_until": settings.get("join_until"),
        "remove_at": settings.get("remove_at"),
        "remove_after_seconds_elapsed": settings.get("remove_after_seconds_elapsed"),
        "layout": settings.get("layout", "grid-responsive"),
        "record_on_start": bool(settings.get("record_on_start")),
        "tone_on_entry_and_exit": bool(settings.get("tone_on_entry_and_exit", True)),
        "room_join_video_off": bool(settings.get("room_join_video_off")),
        "user_join_video_off": bool(settings.get("user_join_video_off")),
        "locked": False,
        "start_time": stamp,
        "end_time": None,
        "duration": None,
        "status": "in-progress",
        "created_at": stamp,
        "updated_at": stamp,
        "preview_url": None,
        "prioritize_handraise": settings.get("prioritize_handraise") if is_room else None,
        "sync_audio_video": settings.get("sync_audio_video"),
        "cost_in_dollars": 0.0,
        "enable_room_previews": bool(settings.get("enable_room_previews")),
        "locked_cover": LOCKED_COVER,
        "_kind": kind,
        "_room_uuid": owner["id"] if owner else str(uuid.uuid4()),
        "_record": bool(settings.get("record_on_start")),
        "_started": started,
    }
    return session
