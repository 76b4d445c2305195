"""The mirror of SignalWire room recordings: what was recorded, how big, what it cost.

A recording's `uri` is a signed link that SignalWire makes on every read and that expires
after `media_ttl` seconds: it is never stored here (not even in `raw`). A download asks
SignalWire for a fresh one at that moment (rooms.services.recordings.recording_link).
"""

from __future__ import annotations

from django.db import models

from rooms.jsontext import CanonicalJSONEncoder
from rooms.models.conferences import Conference
from rooms.models.rooms import Room
from rooms.models.sessions import RoomSession
from rooms.models.spaces import space_field

RECORDING = "recording"
PAUSED = "paused"
PROCESSING = "processing"
COMPLETED = "completed"
# Statuses whose recording can still change: the sync reads these again on every run.
UNFINISHED = (RECORDING, PAUSED, PROCESSING)


class RecordingState(models.TextChoices):
    """Where a recording row stands with respect to SignalWire."""

    SYNCED = "synced", "Synced"
    PENDING_DELETE = "pending_delete", "Pending delete"
    DELETED_REMOTELY = "deleted_remotely", "Deleted remotely"


class Recording(models.Model):
    """One room recording as SignalWire reported it (never its download link)."""

    space = space_field()
    remote_id = models.CharField("SignalWire ID", max_length=64)
    session = models.ForeignKey(
        RoomSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recordings",
    )
    # SignalWire's room_session_id, kept so a session mirrored later is linked then.
    remote_session_id = models.CharField(max_length=64, blank=True, db_index=True)
    # The session's room name, copied when linked, so the list filters by room in one table.
    room_name = models.CharField(max_length=100, blank=True, db_index=True)
    # Kept as SignalWire sent it, so a status the portal does not know survives.
    status = models.CharField(max_length=40, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField("duration (seconds)", null=True, blank=True)
    size_in_bytes = models.PositiveBigIntegerField("size (bytes)", null=True, blank=True)
    format = models.CharField(max_length=40, blank=True)
    cost_in_dollars = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    remote_created_at = models.DateTimeField("created in SignalWire", null=True, blank=True)
    remote_updated_at = models.CharField(max_length=40, blank=True)
    # The last payload without its `uri` (a secret that expires).
    raw = models.JSONField(default=dict, blank=True, encoder=CanonicalJSONEncoder)
    # Values SignalWire sent that could not be stored (kept as unknown; raw has them).
    sync_note = models.TextField(blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    sync_state = models.CharField(
        max_length=20, choices=RecordingState.choices, default=RecordingState.SYNCED
    )
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-started_at"]),
            models.Index(fields=["room_name", "-started_at"]),
            # The recordings list, newest first, filtered by sync state (read backwards).
            models.Index(fields=["sync_state", "started_at"], name="rooms_rec_state_started"),
            models.Index(fields=["space", "started_at"], name="rooms_rec_space_started"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_recording_space_remote_id"
            ),
        ]
        permissions = [
            ("download_recording", "Can download recordings (a fresh link from SignalWire)"),
        ]

    def __str__(self) -> str:
        when = f"{self.started_at:%Y-%m-%d %H:%M}" if self.started_at else "not started"
        return f"{self.room_name or 'recording'} · {when}"

    def get_additional_data(self) -> dict:
        """Keep the remote id, room and session on audit entries, readable after deletion."""
        return {
            "remote_id": self.remote_id,
            "room_name": self.room_name,
            "session": self.remote_session_id,
        }

    def audit_related_object(self) -> tuple[type[models.Model], int | None]:
        """Name the conference or room (else the session) whose history shows this entry."""
        session = self.session if self.session_id else None
        if session is not None and session.conference_id:
            return Conference, session.conference_id
        if session is not None and session.room_id:
            return Room, session.room_id
        return RoomSession, self.session_id

    @property
    def name(self) -> str:
        """Name the recording in outbox intents: its SignalWire id."""
        return self.remote_id

    @property
    def is_completed(self) -> bool:
        """Tell whether SignalWire last reported the file as ready."""
        return self.status == COMPLETED
