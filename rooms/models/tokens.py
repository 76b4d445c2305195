"""Conference tokens SignalWire made, and the records of room tokens staff minted."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from rooms.models.conferences import Conference
from rooms.models.rooms import Room
from rooms.models.spaces import space_field
from rooms.signalwire import schema


class ConferenceToken(models.Model):
    """A moderator or guest token SignalWire made for a conference; the value is a secret."""

    space = space_field()
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="tokens")
    remote_id = models.CharField("SignalWire ID", max_length=64)
    name = models.CharField(max_length=100, blank=True)
    token = models.CharField(max_length=255)
    scopes = models.JSONField(default=list, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conference_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_conftoken_space_remote_id"
            ),
        ]
        permissions = [
            ("reveal_conferencetoken", "Can reveal and copy conference token values"),
            ("reset_conferencetoken", "Can reset conference tokens"),
        ]

    def __str__(self) -> str:
        return f"{self.conference.name} · {self.name or 'token'}"

    def get_additional_data(self) -> dict:
        """Keep the token's remote id and conference on audit entries."""
        return {"remote_id": self.remote_id, "conference_id": self.conference_id}

    def audit_related_object(self) -> tuple[type[models.Model], int | None]:
        """Name the conference whose history shows this token's entries."""
        return Conference, self.conference_id

    @property
    def masked(self) -> str:
        """Show only enough of the value to tell tokens apart."""
        return mask_secret(self.token)


def mask_secret(value: str) -> str:
    """Keep a short prefix and suffix of a secret so staff can tell values apart."""
    if not value:
        return ""
    if len(value) <= 10:
        return "•" * 8
    return f"{value[:4]}••••••••{value[-4:]}"


class IssuedRoomToken(models.Model):
    """The record of a room join token minted by staff; never the token itself."""

    space = space_field()
    room = models.ForeignKey(
        Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="issued_tokens"
    )
    room_name = models.CharField(max_length=schema.NAME_MAX)
    user_name = models.CharField(max_length=schema.USER_NAME_MAX, blank=True)
    role = models.CharField(max_length=20, default="custom")
    scopes = models.JSONField(default=list)
    join_from = models.DateTimeField(null=True, blank=True)
    join_until = models.DateTimeField(null=True, blank=True)
    remove_at = models.DateTimeField(null=True, blank=True)
    remove_after_seconds_elapsed = models.PositiveIntegerField(null=True, blank=True)
    join_audio_muted = models.BooleanField(default=False)
    join_video_muted = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The other options the token was minted with: join_as, media_allowed,
    # end_room_session_on_leave, room_display_name, meta. Never the token.
    options = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the token, to recognise it without keeping it."
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    issued_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"{self.room_name} · {self.user_name or 'anonymous'} · {self.fingerprint[:12]}"

    def get_additional_data(self) -> dict:
        """Keep the room on audit entries, readable after the room is gone."""
        return {"room_id": self.room_id, "room_name": self.room_name}

    def audit_related_object(self) -> tuple[type[models.Model], int | None]:
        """Name the room whose history shows this issued token's entries."""
        return Room, self.room_id
