"""Facts about the SignalWire Video API that the client, sandbox and models share.

Taken from SignalWire's OpenAPI description of /api/video; one place, so the portal's
local validation, the sandbox's validation and the payload mapping cannot drift apart.
"""

from collections.abc import Mapping
from typing import Any

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
NAME_MAX = 100
DISPLAY_NAME_MAX = 200
DESCRIPTION_MAX = 3000
USER_NAME_MAX = 100
META_MAX_JSON_CHARS = 2000
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
MAX_MEMBERS_MIN, MAX_MEMBERS_MAX = 1, 300
REMOVE_AFTER_MIN, REMOVE_AFTER_MAX = 1, 200000
PAGE_SIZE_MIN, PAGE_SIZE_MAX, PAGE_SIZE_DEFAULT = 1, 1000, 50

# Fields an update cannot clear: PUT keeps every field it is not sent and takes no nulls,
# so a cleared value would come back. Each with what to send instead to lift it.
UPDATE_NOT_CLEARABLE = {
    "join_from": "set a time in the past instead: anyone may join from then on",
    "join_until": "set a time far in the future instead",
    "remove_at": "set a time far in the future instead",
    "remove_after_seconds_elapsed": (
        f"set the largest value SignalWire takes, {REMOVE_AFTER_MAX}, instead"
    ),
    "meta": "set {} (an empty object) instead",
}
CLEAR_REFUSED = (
    "SignalWire cannot clear this: an update keeps every value it is not sent and takes no "
    "empty value, so the old value would come back. To lift it, {hint}."
)


def update_clear_errors(
    changes: Mapping[str, Any], stored: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Map each field a change would clear that an update cannot clear to why it is refused.

    Without stored values (a bulk edit over many rows) every clear of such a field counts.
    """
    return {
        name: CLEAR_REFUSED.format(hint=UPDATE_NOT_CLEARABLE[name])
        for name, value in changes.items()
        if name in UPDATE_NOT_CLEARABLE
        and value is None
        and (stored is None or stored.get(name) is not None)
    }

QUALITIES = ("720p", "1080p")
SIZES = ("small", "medium", "large")
LAYOUTS = (
    "grid-responsive",
    "grid-responsive-mobile",
    "highlight-1-responsive",
    "1x1",
    "2x1",
    "2x2",
    "5up",
    "3x3",
    "4x4",
    "5x5",
    "6x6",
    "8x8",
    "10x10",
)
FPS_VALUES = (20, 30)
# Streams: the url is an RTMP or RTMPS address (the spec gives no maxLength; the portal
# keeps up to this many characters); a room stream's create answers 201, a conference's 200.
STREAM_SCHEMES = ("rtmp", "rtmps")
STREAM_URL_MAX = 2048
STREAM_BODY_FIELDS = ("url",)
STREAM_RESPONSE_FIELDS = (
    "id", "url", "stream_type", "width", "height", "fps", "created_at", "updated_at",
)
JOIN_AS = ("audience", "member")
MEDIA_ALLOWED = ("all", "video-only", "audio-only")

COLOUR_FIELDS = tuple(
    f"{theme}_{part}"
    for theme in ("dark", "light")
    for part in ("primary", "background", "foreground", "success", "negative")
)
COLOUR_DEFAULTS = {
    "dark_primary": "#044EF4",
    "dark_background": "#FFFFFF",
    "dark_foreground": "#1D2127",
    "dark_success": "#17BB58",
    "dark_negative": "#F42C50",
    "light_primary": "#044EF4",
    "light_background": "#FFFFFF",
    "light_foreground": "#1D2127",
    "light_success": "#17BB58",
    "light_negative": "#F42C50",
}

# Request bodies accepted by the API (unknown properties are rejected with 422).
CONFERENCE_CREATE_FIELDS = (
    "name",
    "display_name",
    "description",
    "join_from",
    "join_until",
    "quality",
    "layout",
    "size",
    "record_on_start",
    "enable_room_previews",
    "enable_chat",
    *COLOUR_FIELDS,
)
CONFERENCE_UPDATE_FIELDS = (
    "display_name",
    "description",
    "join_from",
    "join_until",
    "quality",
    "layout",
    "size",
    "record_on_start",
    "tone_on_entry_and_exit",
    "room_join_video_off",
    "user_join_video_off",
    "enable_room_previews",
    "enable_chat",
    *COLOUR_FIELDS,
)
# Objects the API answers with (every key is always present).
CONFERENCE_RESPONSE_FIELDS = (
    "id",
    "name",
    "display_name",
    "description",
    "join_from",
    "join_until",
    "quality",
    "layout",
    "size",
    "record_on_start",
    "tone_on_entry_and_exit",
    "user_join_video_off",
    "room_join_video_off",
    "enable_chat",
    "enable_room_previews",
    *COLOUR_FIELDS,
    "meta",
    "created_at",
    "updated_at",
)

ROOM_CREATE_FIELDS = (
    "name",
    "display_name",
    "description",
    "max_members",
    "quality",
    "join_from",
    "join_until",
    "remove_at",
    "remove_after_seconds_elapsed",
    "layout",
    "record_on_start",
    "enable_room_previews",
    "meta",
    "sync_audio_video",
)
ROOM_UPDATE_FIELDS = tuple(f for f in ROOM_CREATE_FIELDS if f != "name")
ROOM_RESPONSE_FIELDS = (
    "id",
    "name",
    "display_name",
    "description",
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
    "enable_room_previews",
    "sync_audio_video",
    "meta",
    "prioritize_handraise",
    "created_at",
    "updated_at",
)

ROOM_TOKEN_FIELDS = (
    "room_name",
    "user_name",
    "permissions",
    "join_from",
    "join_until",
    "remove_at",
    "remove_after_seconds_elapsed",
    "join_audio_muted",
    "join_video_muted",
    "auto_create_room",
    "enable_room_previews",
    "room_display_name",
    "end_room_session_on_leave",
    "join_as",
    "media_allowed",
    "room_meta",
    "meta",
    "sync_audio_video",
)

ROOM_TOKEN_PERMISSIONS = (
    "room.member.audio_mute",
    "room.member.audio_unmute",
    "room.member.video_mute",
    "room.member.video_unmute",
    "room.member.deaf",
    "room.member.undeaf",
    "room.member.set_input_volume",
    "room.member.set_output_volume",
    "room.member.set_input_sensitivity",
    "room.member.set_position",
    "room.member.set_meta",
    "room.member.raisehand",
    "room.member.lowerhand",
    "room.member.remove",
    "room.member.promote",
    "room.member.demote",
    "room.hide_video_muted",
    "room.list_available_layouts",
    "room.lock",
    "room.playback",
    "room.playback_seek",
    "room.prioritize_handraise",
    "room.recording",
    "room.set_layout",
    "room.set_position",
    "room.set_meta",
    "room.show_video_muted",
    "room.stream",
    "room.unlock",
    "room.self.audio_mute",
    "room.self.audio_unmute",
    "room.self.video_mute",
    "room.self.video_unmute",
    "room.self.deaf",
    "room.self.undeaf",
    "room.self.set_input_volume",
    "room.self.set_output_volume",
    "room.self.set_input_sensitivity",
    "room.self.set_position",
    "room.self.set_meta",
    "room.self.raisehand",
    "room.self.lowerhand",
    "room.self.screenshare",
    "room.self.additional_source",
)
SELF_PERMISSIONS = tuple(p for p in ROOM_TOKEN_PERMISSIONS if p.startswith("room.self."))
# Moderator-like tokens: every room-level and member-level scope, plus the self ones.
MODERATOR_PERMISSIONS = ROOM_TOKEN_PERMISSIONS
GUEST_PERMISSIONS = SELF_PERMISSIONS
# The API's default when a room-token request names no permissions.
DEFAULT_ROOM_TOKEN_PERMISSIONS = (
    "room.self.audio_mute",
    "room.self.audio_unmute",
    "room.self.video_mute",
    "room.self.video_unmute",
    "room.self.deaf",
    "room.self.undeaf",
    "room.self.set_input_volume",
    "room.self.set_output_volume",
    "room.self.set_input_sensitivity",
    "room.self.screenshare",
    "room.self.additional_source",
)
