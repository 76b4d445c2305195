"""Records of background work: sync runs and admin actions carried out in batches."""

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from rooms.models.spaces import space_field


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
        LOGS = "logs", "Video logs"

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (another run held the lock)"

    space = space_field()
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
        SESSION_RETENTION = "session_retention", "Session retention"
        PROMOTE = "promote", "Promote to another Space"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FINISHED_WITH_ERRORS = "finished_with_errors", "Finished with errors"
        NOT_QUEUED = "not_queued", "Not queued (task queue unreachable)"

    space = space_field()
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
