"""Celery tasks that keep the mirror in step with SignalWire: thin wrappers over rooms.sync.

Beat runs them every SIGNALWIRE_SYNC_INTERVAL seconds (tokens refresh on their own, slower
interval); a run that finds another one holding the lock records "skipped" and returns.
Only errors that can heal (SignalWire unavailable or rate limiting) are retried.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

from celery import Task, chain, shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings

from rooms import sync
from rooms.models import Conference, Room, SyncRun
from rooms.registry import RESOURCES, Resource
from rooms.signalwire.errors import SignalWireError

logger = logging.getLogger("rooms.tasks.sync")

MAX_RETRIES = 3
# Seconds before the first retry; doubled on each further attempt.
RETRY_BASE = 30
# Allocations between two collections of gc's youngest generation in a worker.
GC_THRESHOLD = 50_000


def run_sync_task(task: Task, service: Callable[..., SyncRun], **kwargs: object) -> str:
    """Call a sync service; retry later when SignalWire failed in a way that can heal."""
    try:
        run = service(**kwargs)
    except SignalWireError as exc:
        if exc.retryable and task.request.retries < MAX_RETRIES:
            countdown = RETRY_BASE * 2**task.request.retries
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                countdown = max(countdown, int(retry_after))
            raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from exc
        # The run recorded the failure; a permanent one waits for the next schedule.
        logger.warning("%s failed: %s", task.name, exc)
        return "failed"
    return str(run.outcome)


def _register(resource: Resource[Any]) -> Task:
    """Register the task that reconciles one resource's listing, under the registry's name."""

    @shared_task(bind=True, name=resource.sync_task, ignore_result=True)
    def sync_listing(self: Task, trigger: str = "schedule") -> str:
        """Reconcile the local rows of one resource with the Space's."""
        return run_sync_task(self, sync.sync_resource, kind=resource.kind, trigger=trigger)

    return sync_listing


# The listing sync task of every registered resource, by its SyncRun kind.
SYNC_TASKS: dict[str, Task] = {r.sync_kind: _register(r) for r in RESOURCES.values()}


def __getattr__(name: str) -> Task:
    """Name each resource's sync task sync_<sync kind> (sync_conferences, sync_rooms...)."""
    verb, _, kind = name.partition("_")
    if verb == "sync" and kind in SYNC_TASKS:
        return SYNC_TASKS[kind]
    raise AttributeError(name)


@shared_task(bind=True, name="rooms.tasks.sync_owner_streams", ignore_result=True)
def sync_owner_streams(self: Task, kind: str, pk: int, trigger: str = "owner_edit") -> str:
    """List one conference's or room's streams again, right after the owner was saved."""
    model = Conference if kind == "conference" else Room
    owner = model.objects.filter(pk=pk, remote_id__isnull=False).first()
    if owner is None:
        return "no owner in SignalWire"
    return run_sync_task(self, sync.sync_streams, owner=owner, trigger=trigger)


@shared_task(bind=True, name="rooms.tasks.fetch_missing_tokens", ignore_result=True)
def fetch_missing_tokens(self: Task, trigger: str = "schedule") -> str:
    """Mirror the tokens of conferences that have none locally yet (new ones)."""
    return run_sync_task(self, sync.sync_conference_tokens, trigger=trigger, missing_only=True)


@shared_task(bind=True, name="rooms.tasks.refresh_all_tokens", ignore_result=True)
def refresh_all_tokens(self: Task, trigger: str = "schedule") -> str:
    """Refresh every conference's tokens, catching resets made outside the portal."""
    return run_sync_task(self, sync.sync_conference_tokens, trigger=trigger, missing_only=False)


def queue_full_sync(trigger: str) -> None:
    """Queue a sync of every resource (conferences then their new tokens); never run one here."""
    for resource in RESOURCES.values():
        task = SYNC_TASKS[resource.sync_kind]
        if resource.has_tokens:
            chain(task.si(trigger=trigger), fetch_missing_tokens.si(trigger=trigger)).delay()
        else:
            task.delay(trigger=trigger)


@worker_process_init.connect(dispatch_uid="rooms.tasks.sync.collect_less")
def collect_less(sender: object = None, **kwargs: object) -> None:
    """Keep the cycle collector from rescanning a worker's whole heap on every sync page.

    A page of a thousand payloads allocates tens of thousands of dicts and lists that
    reference counting frees. Freezing what the worker holds after start-up out of the
    collector's scans and collecting the youngest generation less often made the first
    sync of 10,000 conferences 1.25x faster (0.78 s against 0.98 s, bench/sync_bench.py
    --plain, gc tuned); a no-op sync gained nothing. Set once per worker process.
    """
    gc.freeze()
    gc.set_threshold(max(gc.get_threshold()[0], GC_THRESHOLD), *gc.get_threshold()[1:])


@worker_ready.connect(dispatch_uid="rooms.tasks.sync.sync_on_start")
def sync_on_start(sender: object = None, **kwargs: object) -> None:
    """Queue a sync when a worker starts, so a fresh portal shows its rooms at once."""
    if not getattr(settings, "SIGNALWIRE_SYNC_ON_START", True):
        return
    try:
        queue_full_sync("startup")
    except Exception:  # the worker must start even if the broker hiccups
        logger.exception("could not queue the start-up sync")
