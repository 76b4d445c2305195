"""Celery tasks that keep the mirror in step with SignalWire: thin wrappers over rooms.sync.

Beat runs them every SIGNALWIRE_SYNC_INTERVAL seconds (tokens refresh on their own, slower
interval); a run that finds another one holding the lock records "skipped" and returns.
Only errors that can heal (SignalWire unavailable or rate limiting) are retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Task, chain, shared_task
from celery.signals import worker_ready
from django.conf import settings

from rooms import sync
from rooms.models import SyncRun
from rooms.signalwire.errors import SignalWireError

logger = logging.getLogger("rooms.tasks.sync")

MAX_RETRIES = 3
# Seconds before the first retry; doubled on each further attempt.
RETRY_BASE = 30


def _run(task: Task, service: Callable[..., SyncRun], **kwargs: object) -> str:
    """Call a sync service; retry later when SignalWire failed in a way that can heal."""
    try:
        run = service(**kwargs)
    except SignalWireError as exc:
        if exc.retryable and task.request.retries < MAX_RETRIES:
            countdown = RETRY_BASE * 2**task.request.retries
            if getattr(exc, "retry_after", None):
                countdown = max(countdown, int(exc.retry_after))
            raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from exc
        # The run recorded the failure; a permanent one waits for the next schedule.
        logger.warning("%s failed: %s", task.name, exc)
        return "failed"
    return str(run.outcome)


@shared_task(bind=True, name="rooms.tasks.sync_conferences", ignore_result=True)
def sync_conferences(self: Task, trigger: str = "schedule") -> str:
    """Reconcile the local conferences with the Space's."""
    return _run(self, sync.sync_conferences, trigger=trigger)


@shared_task(bind=True, name="rooms.tasks.sync_rooms", ignore_result=True)
def sync_rooms(self: Task, trigger: str = "schedule") -> str:
    """Reconcile the local rooms with the Space's."""
    return _run(self, sync.sync_rooms, trigger=trigger)


@shared_task(bind=True, name="rooms.tasks.fetch_missing_tokens", ignore_result=True)
def fetch_missing_tokens(self: Task, trigger: str = "schedule") -> str:
    """Mirror the tokens of conferences that have none locally yet (new ones)."""
    return _run(self, sync.sync_conference_tokens, trigger=trigger, missing_only=True)


@shared_task(bind=True, name="rooms.tasks.refresh_all_tokens", ignore_result=True)
def refresh_all_tokens(self: Task, trigger: str = "schedule") -> str:
    """Refresh every conference's tokens, catching resets made outside the portal."""
    return _run(self, sync.sync_conference_tokens, trigger=trigger, missing_only=False)


def queue_full_sync(trigger: str) -> None:
    """Queue a conference sync (then its new tokens) and a room sync; never run them here."""
    chain(
        sync_conferences.si(trigger=trigger), fetch_missing_tokens.si(trigger=trigger)
    ).delay()
    sync_rooms.delay(trigger=trigger)


@worker_ready.connect(dispatch_uid="rooms.tasks.sync.sync_on_start")
def sync_on_start(sender: object = None, **kwargs: object) -> None:
    """Queue a sync when a worker starts, so a fresh portal shows its rooms at once."""
    if not getattr(settings, "SIGNALWIRE_SYNC_ON_START", True):
        return
    try:
        queue_full_sync("startup")
    except Exception:  # the worker must start even if the broker hiccups
        logger.exception("could not queue the start-up sync")
