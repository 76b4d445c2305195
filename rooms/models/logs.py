"""The mirror of SignalWire video logs: what each room session was charged, read-only."""

from __future__ import annotations

from django.db import models

from rooms.jsontext import CanonicalJSONEncoder
from rooms.models.spaces import space_field


class LogState(models.TextChoices):
    """Where a log row stands with respect to SignalWire."""

    SYNCED = "synced", "Synced"
    DELETED_REMOTELY = "deleted_remotely", "Deleted remotely"


class VideoLog(models.Model):
    """One video log as SignalWire reported it: a session's charge and what made it up."""

    space = space_field()
    remote_id = models.CharField("SignalWire ID", max_length=64)
    source = models.CharField(max_length=40, blank=True)
    log_type = models.CharField("type", max_length=60, blank=True)
    # The room session the log's url names; kept as an id, the session may be mirrored later.
    remote_session_id = models.CharField(max_length=64, blank=True, db_index=True)
    room_name = models.CharField(max_length=100, blank=True)
    # Kept as SignalWire sent it, so a status the portal does not know survives.
    status = models.CharField(max_length=40, blank=True)
    locked = models.BooleanField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    charge = models.DecimalField(
        "charge (dollars)", max_digits=14, decimal_places=4, null=True, blank=True
    )
    remote_created_at = models.DateTimeField("created in SignalWire", null=True, blank=True)
    discarded_at = models.DateTimeField("discarded in SignalWire", null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True, encoder=CanonicalJSONEncoder)
    # Digest of raw's canonical form: an unchanged listed log is skipped without a write.
    raw_digest = models.CharField(max_length=32, blank=True, editable=False)
    # Values SignalWire sent that could not be stored (kept as unknown; raw has them).
    sync_note = models.TextField(blank=True, editable=False)
    sync_state = models.CharField(
        max_length=20, choices=LogState.choices, default=LogState.SYNCED
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-remote_created_at", "-id"]
        indexes = [
            models.Index(fields=["-remote_created_at"], name="rooms_log_newest"),
            models.Index(fields=["room_name", "remote_created_at"], name="rooms_log_room_day"),
            # The usage rollup's billed figures: a room's logs by the day their session began.
            models.Index(fields=["room_name", "started_at"], name="rooms_log_room_started"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_log_space_remote_id"
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.remote_created_at:%Y-%m-%d %H:%M}" if self.remote_created_at else "?"
        return f"{self.room_name or 'log'} · {when}"
