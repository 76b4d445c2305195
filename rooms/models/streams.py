"""The mirror of the RTMP/RTMPS outputs of conferences and rooms."""

from auditlog.registry import auditlog
from django.core.exceptions import ValidationError
from django.db import models

from rooms.models.conferences import Conference
from rooms.models.mirror import RemoteMirror
from rooms.models.rooms import Room
from rooms.signalwire import schema
from rooms.stream_urls import mask_stream_url, stream_host, validate_stream_url


class Stream(RemoteMirror):
    """An RTMP/RTMPS output of a conference or a room; it starts in every session of it.

    The url carries the destination's stream key: pages show it masked, the audit trail
    masks it, and the stored raw payload leaves it out (it lives in `url` alone).
    """

    class OwnerKind(models.TextChoices):
        CONFERENCE = "conference", "Conference"
        ROOM = "room", "Room"

    conference = models.ForeignKey(
        Conference, on_delete=models.CASCADE, null=True, blank=True, related_name="streams"
    )
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, null=True, blank=True, related_name="streams"
    )
    url = models.CharField(
        "URL",
        max_length=schema.STREAM_URL_MAX,
        validators=[validate_stream_url],
        help_text="The rtmp:// or rtmps:// address of the destination, with its stream key.",
    )
    stream_type = models.CharField(max_length=40, blank=True, editable=False)
    width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    fps = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_id", "space"], name="rooms_stream_space_remote_id"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(conference__isnull=False, room__isnull=True)
                    | models.Q(conference__isnull=True, room__isnull=False)
                ),
                name="rooms_stream_one_owner",
            )
        ]
        indexes = [models.Index(fields=["space", "sync_state", "remote_id"])]
        permissions = [("reveal_stream_url", "Can reveal stream URLs (they hold stream keys)")]

    def __str__(self) -> str:
        host = stream_host(self.url)
        return f"Stream to {host}" if host else "Stream"

    @property
    def masked_url(self) -> str:
        """The URL with everything but its scheme and host hidden."""
        return mask_stream_url(self.url)

    @property
    def owner(self) -> Conference | Room | None:
        """The conference or room the stream belongs to."""
        return self.conference if self.conference_id else self.room

    @property
    def owner_kind(self) -> str:
        """Say whether a conference or a room owns the stream."""
        return self.OwnerKind.CONFERENCE if self.conference_id else self.OwnerKind.ROOM

    @property
    def name(self) -> str:
        """A label for intents and logs: the owner's name, never the URL."""
        owner = self.owner
        return f"{owner.name if owner is not None else '?'} stream"[: schema.NAME_MAX]

    def clean(self) -> None:
        """A stream belongs to exactly one conference or room."""
        super().clean()
        if bool(self.conference_id) == bool(self.room_id):
            raise ValidationError("A stream belongs to exactly one conference or room.")

    def get_additional_data(self) -> dict:
        """Keep the remote id, the owner and the host on audit entries, never the URL."""
        return {
            "remote_id": self.remote_id,
            "owner_kind": str(self.owner_kind),
            "owner_id": self.conference_id or self.room_id,
            "destination": stream_host(self.url),
        }

    def audit_related_object(self) -> tuple[type[models.Model], int | None]:
        """Name the conference or room whose history shows this stream's entries."""
        if self.conference_id:
            return Conference, self.conference_id
        return Room, self.room_id


# Registered beside the model (rooms.audit registers the others at start-up; it imports
# rooms.models, so it cannot be imported here): the stream URL is masked in every entry,
# and the mirror's bookkeeping stays out as it does for conferences and rooms.
auditlog.register(
    Stream,
    exclude_fields=[
        "id",
        *(f.name for f in RemoteMirror._meta.local_fields if f.name != "remote_id"),
    ],
    mask_fields=["url"],
    # Scheme and host stay readable ("rtmps://live.twitch.tv/••••••••"); path, key and any
    # credentials never reach the audit table.
    mask_callable="rooms.stream_urls.mask_stream_url",
)
