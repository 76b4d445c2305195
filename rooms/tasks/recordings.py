"""Celery tasks of room recordings: the syncs, finishing pending deletes, daily retention.

The frequent sync is incremental; a daily full one reads the whole listing, the only way
to see recordings deleted in SignalWire: a deleted recording just drops out of the listing,
so only a read to its end can tell that it is gone.

All thin over rooms.sync.recordings and rooms.services.recordings; they take ids and retry
only what can heal (SignalWire unavailable or rate limiting).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.contrib.auth import get_user_model

from rooms.tasks.push import BACKOFF_MAX, RETRYABLE

logger = logging.getLogger("rooms.tasks.recordings")


@shared_task(bind=True, name="rooms.tasks.sync_recordings", ignore_result=True)
def sync_recordings(
    self: Task, trigger: str = "schedule", space_id: int | None = None
) -> str:
    """Mirror the recordings new or changed since the last run; refresh unfinished ones."""
    from rooms import sync
    from rooms.tasks.sync import run_sync_task

    return run_sync_task(self, sync.recordings_sync, space_id, trigger=trigger)


@shared_task(bind=True, name="rooms.tasks.sync_recordings_full", ignore_result=True)
def sync_recordings_full(
    self: Task, trigger: str = "schedule", space_id: int | None = None
) -> str:
    """Read the whole recordings listing and mark the ones gone from SignalWire (daily)."""
    from rooms import sync
    from rooms.tasks.sync import run_sync_task

    return run_sync_task(self, sync.recordings_sync, space_id, trigger=trigger, full=True)


@shared_task(
    bind=True,
    name="rooms.tasks.delete_recording",
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=BACKOFF_MAX,
    retry_jitter=True,
    max_retries=12,
)
def delete_recording(self: Task, pk: int, actor_pk: int | None = None, reason: str = "") -> str:
    """Finish deleting a recording left pending delete while SignalWire was down."""
    from rooms.services import recordings

    actor = get_user_model().objects.filter(pk=actor_pk).first() if actor_pk else None
    return recordings.recording_delete_pending(pk=pk, actor=actor, reason=reason)


@shared_task(name="rooms.tasks.apply_recording_retention", ignore_result=True)
def apply_recording_retention() -> str:
    """Delete the completed recordings older than RECORDING_RETENTION_DAYS (0: keep all)."""
    from rooms.models import AuditEntry
    from rooms.services import recordings

    result = recordings.recordings_apply_retention(source=AuditEntry.Source.TASK)
    if result.days == 0:
        return "retention off"
    if result.skipped_busy:
        return "skipped: another retention run holds the lock"
    logger.info(
        "recording retention: %s deleted, %s pending, %s failed",
        result.counts["deleted"], result.counts["pending_delete"], result.counts["failed"],
    )
    return f"{sum(result.counts.values())} handled"


@worker_ready.connect(dispatch_uid="rooms.tasks.recordings.recordings_on_start")
def recordings_on_start(sender: object = None, **kwargs: object) -> None:
    """Queue a recordings sync when a worker starts, so a fresh portal lists them at once."""
    if not getattr(settings, "SIGNALWIRE_SYNC_ON_START", True):
        return
    try:
        sync_recordings.delay(trigger="startup")
    except Exception:  # the worker must start even if the broker hiccups
        logger.exception("could not queue the start-up recordings sync")
