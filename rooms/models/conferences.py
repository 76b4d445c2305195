"""The mirror of SignalWire conferences (video rooms with the prebuilt UI)."""

from django.db import models

from rooms.models.mirror import SIZE_CHOICES, RoomSettings, colour_validator


class Conference(RoomSettings):
    """A SignalWire conference: a video room with the prebuilt UI."""

    size = models.CharField(max_length=16, choices=SIZE_CHOICES, default="medium", blank=True)
    enable_chat = models.BooleanField(default=True)
    dark_primary = models.CharField(max_length=7, default="#044EF4", validators=[colour_validator])
    dark_background = models.CharField(
        max_length=7, default="#FFFFFF", validators=[colour_validator]
    )
    dark_foreground = models.CharField(
        max_length=7, default="#1D2127", validators=[colour_validator]
    )
    dark_success = models.CharField(max_length=7, default="#17BB58", validators=[colour_validator])
    dark_negative = models.CharField(
        max_length=7, default="#F42C50", validators=[colour_validator]
    )
    light_primary = models.CharField(
        max_length=7, default="#044EF4", validators=[colour_validator]
    )
    light_background = models.CharField(
        max_length=7, default="#FFFFFF", validators=[colour_validator]
    )
    light_foreground = models.CharField(
        max_length=7, default="#1D2127", validators=[colour_validator]
    )
    light_success = models.CharField(
        max_length=7, default="#17BB58", validators=[colour_validator]
    )
    light_negative = models.CharField(
        max_length=7, default="#F42C50", validators=[colour_validator]
    )

    class Meta:
        ordering = ["name"]
        # Both serve filters on sync_state; the second also answers the sync's sweep for
        # rows a listing did not show from the index alone.
        indexes = [
            models.Index(fields=["sync_state", "name"]),
            models.Index(fields=["space", "sync_state", "remote_id"]),
        ]
        # Names and ids are unique in a Space; two Spaces may each have a room "lobby".
        # Name or id first: the same index serves a search by either across Spaces.
        constraints = [
            models.UniqueConstraint(fields=["name", "space"], name="rooms_conference_space_name"),
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_conference_space_remote_id"
            ),
        ]
