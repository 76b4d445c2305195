"""Mirrors of what happens in the rooms: SignalWire room sessions and their members."""

from __future__ import annotations

from django.db import models

from rooms.jsontext import CanonicalJSONEncoder
from rooms.models.conferences import Conference
from rooms.models.rooms import Room
from rooms.models.spaces import space_field

LIVE = "in-progress"
COMPLETED = "completed"


class RoomSession(models.Model):
    """One meeting in a room or conference, live or past, as SignalWire reported it."""

    space = space_field()
    remote_id = models.CharField("SignalWire ID", max_length=64)
    conference = models.ForeignKey(
        Conference,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
    )
    room = models.ForeignKey(
        Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    # SignalWire's room_id: null for rooms made on the fly by a token.
    remote_room_id = models.CharField(max_length=64, blank=True, db_index=True)
    room_name = models.CharField(max_length=100, db_index=True)
    # Kept as SignalWire sent it, so a status the portal does not know survives.
    status = models.CharField(max_length=40, db_index=True)
    start_time = models.DateTimeField(null=True, blank=True, db_index=True)
    end_time = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField("duration (seconds)", null=True, blank=True)
    locked = models.BooleanField(null=True, blank=True)
    cost_in_dollars = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    members_now = models.PositiveIntegerField("members present", default=0)
    member_count = models.PositiveIntegerField("members", default=0)
    member_seconds = models.PositiveBigIntegerField("member time (seconds)", default=0)
    remote_updated_at = models.CharField(max_length=40, blank=True)
    raw = models.JSONField(default=dict, blank=True, encoder=CanonicalJSONEncoder)
    # Values SignalWire sent that could not be stored (kept as unknown; raw has them).
    sync_note = models.TextField(blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_time", "-id"]
        indexes = [
            models.Index(fields=["status", "conference"]),
            models.Index(fields=["status", "room"]),
            models.Index(fields=["room_name", "-start_time"]),
            # The sessions list, newest first, filtered by status or by its room's page. Kept
            # ascending: read backwards they give "-start_time, -id" with no sort on SQLite.
            models.Index(fields=["status", "start_time"], name="rooms_session_status_start"),
            models.Index(fields=["conference", "start_time"], name="rooms_session_conf_start"),
            models.Index(fields=["room", "start_time"], name="rooms_session_room_start"),
            models.Index(fields=["space", "start_time"], name="rooms_session_space_start"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_session_space_remote_id"
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.start_time:%Y-%m-%d %H:%M}" if self.start_time else "not started"
        return f"{self.room_name} · {when}"

    @property
    def is_live(self) -> bool:
        """Tell whether SignalWire last reported the session as in progress."""
        return self.status == LIVE


class SessionMember(models.Model):
    """One participant's time in a room session."""

    space = space_field()
    session = models.ForeignKey(RoomSession, on_delete=models.CASCADE, related_name="members")
    remote_id = models.CharField("SignalWire ID", max_length=64)
    name = models.CharField(max_length=255, blank=True)
    join_time = models.DateTimeField(null=True, blank=True)
    leave_time = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField("duration (seconds)", null=True, blank=True)
    cost_in_dollars = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True, encoder=CanonicalJSONEncoder)
    # Values SignalWire sent that could not be stored (kept as unknown; raw has them).
    sync_note = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["session_id", "join_time", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_member_space_remote_id"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.remote_id
