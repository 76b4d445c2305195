"""Local mirrors of SignalWire Video rooms, their tokens, sync runs and the audit trail."""

import uuid
from typing import Any

from auditlog.models import AbstractLogEntry, LogEntryManager
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models

from rooms import jsontext
from rooms.jsontext import CanonicalJSONEncoder
from rooms.signalwire import schema
from rooms.stream_urls import mask_stream_url, stream_host, validate_stream_url

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

    remote_id = models.CharField(
        "SignalWire ID", max_length=64, unique=True, null=True, blank=True, editable=False
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
        unique=True,
        validators=[name_validator],
        help_text="Unique name in SignalWire: letters, digits, _ and -. Fixed after creation.",
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
            models.Index(fields=["sync_state", "remote_id"]),
        ]


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
            models.Index(fields=["sync_state", "remote_id"]),
        ]
        permissions = [("mint_room_token", "Can mint room join tokens")]


class ConferenceToken(models.Model):
    """A moderator or guest token SignalWire made for a conference; the value is a secret."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="tokens")
    remote_id = models.CharField("SignalWire ID", max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    token = models.CharField(max_length=255)
    scopes = models.JSONField(default=list, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conference_id", "name"]
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
            models.CheckConstraint(
                condition=(
                    models.Q(conference__isnull=False, room__isnull=True)
                    | models.Q(conference__isnull=True, room__isnull=False)
                ),
                name="rooms_stream_one_owner",
            )
        ]
        indexes = [models.Index(fields=["sync_state", "remote_id"])]
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


class SyncRun(models.Model):
    """One run of a background sync or push, with its counts and outcome."""

    class Kind(models.TextChoices):
        CONFERENCES = "conferences", "Conferences"
        ROOMS = "rooms", "Rooms"
        TOKENS = "tokens", "Conference tokens"
        PUSH = "push", "Push pending changes"
        SESSIONS = "sessions", "Room sessions (history)"
        LIVE_SESSIONS = "live_sessions", "Live room sessions"
        STREAMS = "streams", "Streams"
        RECORDINGS = "recordings", "Room recordings"

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (another run held the lock)"

    run_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    trigger = models.CharField(max_length=20, default="schedule")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    pages = models.PositiveIntegerField(default=0)
    seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    marked_deleted = models.PositiveIntegerField(default=0)
    restored = models.PositiveIntegerField(default=0)
    skipped_pending = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"
        permissions = [("run_sync", "Can start a sync with SignalWire")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} sync {self.started_at:%Y-%m-%d %H:%M:%S}"


class AuditEntryManager(LogEntryManager):
    """auditlog's manager; each new entry also names its object's remote id and parent."""

    def log_create(self, instance: Any, force_log: bool = False, **kwargs: Any) -> Any:
        """Write an entry as auditlog does, with the object's SignalWire id and parent."""
        kwargs.setdefault("object_remote_id", getattr(instance, "remote_id", "") or "")
        related = getattr(instance, "audit_related_object", None)
        if callable(related) and "related_object_type" not in kwargs:
            model, pk = related()
            if pk is not None:
                kwargs["related_object_type"] = ContentType.objects.get_for_model(model)
                kwargs["related_object_id"] = pk
        return super().log_create(instance, force_log=force_log, **kwargs)


class AuditEntry(AbstractLogEntry):
    """django-auditlog's entry plus where the change came from (NetBox-style change log).

    An entry about a token also names the conference or room it belongs to
    (related_object_type, related_object_id), so "everything about this room" is one
    indexed query.
    """

    class Source(models.TextChoices):
        ADMIN = "admin", "Admin"
        SYNC = "sync", "Sync"
        PUSH = "push", "Push task"
        SHELL = "shell", "Shell or script"
        COMMAND = "command", "Management command"
        TASK = "task", "Background task"

    # Index diet: auditlog indexes content_type, object_pk, object_id and action one by one.
    # The portal's queries never use them alone (history and "about" filters go through
    # the two composite indexes below, whose first column also serves the content type's
    # cascade), and source and action are low-cardinality filters answered faster by
    # reading the timestamp index in order; each index dropped is one less B-tree per row
    # the sync writes. Kept: timestamp, cid, actor, object_remote_id and the composites.
    content_type = models.ForeignKey(
        to="contenttypes.ContentType",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name="content type",
        db_index=False,
    )
    object_pk = models.CharField(max_length=255, verbose_name="object pk")
    object_id = models.BigIntegerField(blank=True, null=True, verbose_name="object id")
    action = models.PositiveSmallIntegerField(
        choices=AbstractLogEntry.Action.choices, verbose_name="action"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SHELL)
    # Who acted when no staff user did: "sync", "push", "shell", ...
    actor_label = models.CharField(max_length=150, blank=True, default=Source.SHELL.value)
    # cid and object_remote_id are matched whole only: indexed in Meta.indexes, where
    # PostgreSQL gets no second, LIKE-only (varchar_pattern_ops) index beside each.
    cid = models.CharField(max_length=255, blank=True, null=True, verbose_name="Correlation ID")
    object_remote_id = models.CharField(max_length=64, blank=True)
    related_object_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
    )
    related_object_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        swappable = "AUDITLOG_LOGENTRY_MODEL"
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail entries"
        indexes = [
            models.Index(fields=["content_type", "object_pk", "-timestamp"]),
            # The change log filtered by object type, newest first, without a sort.
            models.Index(fields=["content_type", "-timestamp"], name="rooms_audit_type_time_idx"),
            # One request's or run's entries, newest first: by cid alone, the planner may
            # walk the timestamp index from the newest row back to an old run's rows.
            models.Index(fields=["cid", "-timestamp"], name="rooms_audit_cid_time_idx"),
            models.Index(fields=["object_remote_id"], name="rooms_audit_remote_id_idx"),
            # Partial: most entries belong to no parent, so the index holds only token
            # entries, stays small, and the planner's statistics see it as selective.
            models.Index(
                fields=["related_object_type", "related_object_id", "-timestamp"],
                name="rooms_audit_related_part_idx",
                condition=models.Q(related_object_id__isnull=False),
            ),
        ]


class RemoteIntent(models.Model):
    """An edit on its way to SignalWire, written before the call (the outbox).

    The service that sends the edit deletes it in the transaction that stores the answer.
    One left behind means the answer was never stored (the process died, the database
    failed); the next push replays it under its actor, so the change is never lost.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    kind = models.CharField(max_length=20)
    action = models.CharField(max_length=10, choices=Action.choices)
    object_pk = models.BigIntegerField(null=True, blank=True, db_index=True)
    name = models.CharField(max_length=schema.NAME_MAX)
    data = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    source = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.kind} {self.name}"


class ActionRun(models.Model):
    """One admin action on many rows, carried out in batches by the worker."""

    class Action(models.TextChoices):
        REFRESH = "refresh", "Refresh from SignalWire"
        PUSH = "push", "Push to SignalWire"
        REFRESH_TOKENS = "refresh_tokens", "Refresh tokens from SignalWire"
        DELETE = "delete", "Delete in SignalWire and here"
        BULK_EDIT = "bulk_edit", "Edit selected"
        RESTORE = "restore", "Restore to before a bulk edit"
        RETENTION = "retention", "Recording retention"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FINISHED_WITH_ERRORS = "finished_with_errors", "Finished with errors"
        NOT_QUEUED = "not_queued", "Not queued (task queue unreachable)"

    run_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    action = models.CharField(max_length=20, choices=Action.choices)
    kind = models.CharField(max_length=20)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=24, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The selected primary keys, in the order the batches take them.
    pks = models.JSONField(default=list, blank=True)
    # A bulk edit: the fields it sets and their values, as JSON.
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # A restore: the bulk edit whose changes it undoes.
    undoes = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="restores"
    )
    # The first rows SignalWire refused, each with its message: [{"pk", "name", "message"}].
    failures = models.JSONField(default=list, blank=True)
    # Not stored: whether the task queue took the run (None until the transaction commits).
    queued: bool | None = None

    class Meta:
        ordering = ["-requested_at"]
        get_latest_by = "requested_at"

    def __str__(self) -> str:
        when = f"{self.requested_at:%Y-%m-%d %H:%M:%S}" if self.requested_at else "not saved"
        return f"{self.get_action_display()} · {self.total} {self.kind}(s) · {when}"

    @property
    def summary(self) -> str:
        """Say in a few words what the run did so far."""
        done = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.counts.items()))
        return done or "nothing yet"


# The activity mirrors live in their own module; imported here so Django finds them.
from rooms.activity_models import RoomSession, SessionMember  # noqa: E402, F401

# Registered beside the model (rooms.audit registers the others at start-up; it imports
# this module, so it cannot be imported here): the stream URL is masked in every entry,
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


from rooms.recording_models import Recording  # noqa: E402, F401
