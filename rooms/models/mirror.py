"""What every mirrored SignalWire object shares: its sync state, its mirror fields, validators."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    RegexValidator,
)
from django.db import models

from rooms import jsontext
from rooms.jsontext import CanonicalJSONEncoder
from rooms.models.spaces import space_field
from rooms.signalwire import schema

name_validator = RegexValidator(
    schema.NAME_PATTERN, "Use only letters, digits, underscores and hyphens (A-Z a-z 0-9 _ -)."
)
colour_validator = RegexValidator(schema.COLOUR_PATTERN, "Enter a colour as #RRGGBB.")

QUALITY_CHOICES = [(q, q) for q in schema.QUALITIES]
LAYOUT_CHOICES = [(v, v) for v in schema.LAYOUTS]
SIZE_CHOICES = [(s, s.capitalize()) for s in schema.SIZES]


class SyncState(models.TextChoices):
    """Where a local row stands with respect to SignalWire."""

    SYNCED = "synced", "Synced"
    PENDING_PUSH = "pending_push", "Pending push"
    PENDING_DELETE = "pending_delete", "Pending delete"
    PUSH_FAILED = "push_failed", "Push failed"
    DELETED_REMOTELY = "deleted_remotely", "Deleted remotely"


UNPUSHED_STATES = (SyncState.PENDING_PUSH, SyncState.PENDING_DELETE)


def validate_meta(value) -> None:
    """Reject meta that is not a JSON object or is too long for SignalWire."""
    import json

    from rooms.strictjson import problem

    if value is None:
        return
    if not isinstance(value, dict):
        raise ValidationError("Meta must be a JSON object.")
    # Before it is measured as JSON: deep nesting would exhaust the encoder's recursion.
    strict_problem = problem(value)
    if strict_problem:
        raise ValidationError(strict_problem)
    # Measured as compact JSON, as SignalWire (and the sandbox) measure it.
    if len(json.dumps(value, separators=(",", ":"))) > schema.META_MAX_JSON_CHARS:
        raise ValidationError(
            f"Meta must be at most {schema.META_MAX_JSON_CHARS} characters as JSON."
        )


class RemoteMirror(models.Model):
    """What every mirrored SignalWire object keeps beside its own fields."""

    space = space_field()
    remote_id = models.CharField(
        "SignalWire ID", max_length=64, null=True, blank=True, editable=False
    )
    remote_created_at = models.DateTimeField("created in SignalWire", null=True, editable=False)
    remote_updated_at = models.DateTimeField("updated in SignalWire", null=True, editable=False)
    raw = models.JSONField(
        "last payload from SignalWire", default=dict, blank=True, editable=False,
        encoder=CanonicalJSONEncoder,
    )
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    sync_state = models.CharField(
        max_length=20, choices=SyncState.choices, default=SyncState.SYNCED, editable=False
    )
    last_error = models.TextField(blank=True, editable=False)
    push_attempts = models.PositiveIntegerField(default=0, editable=False)
    # Bumped on every local edit; a push carries it, so a stale push never wins.
    local_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def get_additional_data(self) -> dict:
        """Keep the remote id and name on audit entries, readable after deletion."""
        return {"remote_id": self.remote_id, "name": getattr(self, "name", "")}

    @property
    def is_unpushed(self) -> bool:
        """Tell whether local changes still wait to reach SignalWire."""
        return self.sync_state in UNPUSHED_STATES


class RoomSettings(RemoteMirror):
    """Settings that conferences and rooms share in SignalWire's API."""

    name = models.CharField(
        max_length=schema.NAME_MAX,
        validators=[name_validator],
        help_text=(
            "Unique name in its SignalWire Space: letters, digits, _ and -. "
            "Fixed after creation."
        ),
    )
    display_name = models.CharField(max_length=schema.DISPLAY_NAME_MAX, blank=True)
    description = models.TextField(
        blank=True, validators=[MaxLengthValidator(schema.DESCRIPTION_MAX)]
    )
    join_from = models.DateTimeField(
        null=True, blank=True, help_text="No one can join before this time."
    )
    join_until = models.DateTimeField(
        null=True, blank=True, help_text="No one can join after this time."
    )
    quality = models.CharField(max_length=16, choices=QUALITY_CHOICES, default="720p")
    layout = models.CharField(max_length=40, choices=LAYOUT_CHOICES, default="grid-responsive")
    record_on_start = models.BooleanField(default=False)
    tone_on_entry_and_exit = models.BooleanField(default=True)
    user_join_video_off = models.BooleanField(default=False)
    room_join_video_off = models.BooleanField(default=False)
    enable_room_previews = models.BooleanField(null=True, blank=True)
    meta = models.JSONField(null=True, blank=True, validators=[validate_meta])
    # jsontext.digest(raw), kept with raw on every write (save() here, the sync's bulk
    # writes): a no-change sync compares digests instead of whole payloads.
    raw_digest = models.CharField(
        max_length=jsontext.DIGEST_LENGTH, blank=True, default="", editable=False
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.display_name or self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, keeping raw_digest the digest of raw whenever raw is written."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "raw" in update_fields:
            self.raw_digest = jsontext.digest(self.raw)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "raw_digest"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Mirror SignalWire's cross-field rules so bad input never leaves the browser."""
        super().clean()
        if self.join_from and self.join_until and self.join_from >= self.join_until:
            raise ValidationError({"join_until": "Join until must be after join from."})
