"""The mirror of SignalWire rooms (without the prebuilt UI)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from rooms.models.mirror import RoomSettings
from rooms.signalwire import schema


class Room(RoomSettings):
    """A SignalWire room without the prebuilt UI; staff mint join tokens for it."""

    max_members = models.PositiveSmallIntegerField(
        default=20,
        validators=[
            MinValueValidator(schema.MAX_MEMBERS_MIN),
            MaxValueValidator(schema.MAX_MEMBERS_MAX),
        ],
    )
    fps = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    remove_at = models.DateTimeField(
        null=True, blank=True, help_text="Remove everyone from the room at this time."
    )
    remove_after_seconds_elapsed = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(schema.REMOVE_AFTER_MIN),
            MaxValueValidator(schema.REMOVE_AFTER_MAX),
        ],
        help_text="Remove each participant after this many seconds in the room.",
    )
    sync_audio_video = models.BooleanField(null=True, blank=True)
    prioritize_handraise = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]
        # Both serve filters on sync_state; the second also answers the sync's sweep for
        # rows a listing did not show from the index alone.
        indexes = [
            models.Index(fields=["sync_state", "name"]),
            models.Index(fields=["space", "sync_state", "remote_id"]),
        ]
        # Names and ids are unique in a Space; two Spaces may each have a room "lobby".
        constraints = [
            models.UniqueConstraint(fields=["name", "space"], name="rooms_room_space_name"),
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_room_space_remote_id"
            ),
        ]
        permissions = [("mint_room_token", "Can mint room join tokens")]
