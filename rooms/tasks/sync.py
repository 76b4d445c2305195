"""Celery tasks that keep the mirror in step with SignalWire: thin wrappers over rooms.sync.

Beat runs them every SIGNALWIRE_SYNC_INTERVAL seconds (tokens refresh on their own, slower
interval); a run that finds another one holding the lock records "skipped" and returns.
Only errors that can heal (SignalWire unavailable or rate limiting) are retried.
Each sync runs per Space: called without a Space, a task queues itself once per Space, so
one Space that fails (down, token revoked) fails only its own task.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable
from typing import Any

from celery import Task, chain, shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings

from rooms import sync
from rooms.models import Conference, Room, Space, SyncRun, environment_space
from rooms.registry import RESOURCES, Resource
from rooms.signalwire.errors import SignalWireError

logger = logging.getLogger("rooms.tasks.sync")

MAX_RETRIES = 3
# Seconds before the first retry; doubled on each further attempt.
RETRY_BASE = 30
# Allocations between two collections of gc's youngest generation in a worker.
GC_THRESHOLD = 50_000


def all_spaces() -> list[Space]:
    """Every Space the portal mirrors, the environment's first (made on first use)."""
    first = environment_space()
    return [first, *Space.objects.exclude(pk=first.pk).order_by("pk")]


def run_sync_task(
    task: Task, service: Callable[..., SyncRun], space_id: int | None = None, **kwargs: object
) -> str:
    """Call a sync service in one Space; retry later when SignalWire failed in a way that heals.

    Without `space_id`: with one Space, run in it; with several, queue the task once per
    Space (with the arguments it was called with) and return.
    """
    if space_id is None:
        every = all_spaces()
        if len(every) > 1:
            called_with = dict(task.request.kwargs or {})
            for space in every:
                task.apply_async(
                    args=tuple(task.request.args or ()),
                    kwargs={**called_with, "space_id": space.pk},
                )
            return f"queued for {len(every)} Spaces"
        space = every[0]
    else:
        found = Space.objects.filter(pk=space_id).first()
        if found is None:
            return "no such Space"
        space = found
    try:
        run = service(space=space, **kwargs)
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
    def sync_listing(
        self: Task, trigger: str = "schedule", space_id: int | None = None
    ) -> str:
        """Reconcile the local rows of one resource with each Space's (or one Space's)."""
        return run_sync_task(
            self, sync.sync_resource, space_id, kind=resource.kind, trigger=trigger
        )

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
    return run_sync_task(
        self, sync.sync_streams, owner.space_id, owner=owner, trigger=trigger
    )


@shared_task(bind=True, name="rooms.tasks.fetch_missing_tokens", ignore_result=True)
def fetch_missing_tokens(
    self: Task, trigger: str = "schedule", space_id: int | None = None
) -> str:
    """Mirror the tokens of conferences that have none locally yet (new ones)."""
    return run_sync_task(
        self, sync.sync_conference_tokens, space_id, trigger=trigger, missing_only=True
    )


@shared_task(bind=True, name="rooms.tasks.refresh_all_tokens", ignore_result=True)
def refresh_all_tokens(
    self: Task, trigger: str = "schedule", space_id: int | None = None
) -> str:
    """Refresh every conference's tokens, catching resets made outside the portal."""
    return run_sync_task(
        self, sync.sync_conference_tokens, space_id, trigger=trigger, missing_only=False
    )


def queue_full_sync(trigger: str, spaces: Iterable[Space] | None = None) -> None:
    """Queue a sync of every resource (conferences then their new tokens) in some Spaces.

    `spaces`: the Spaces to sync (None: every Space).
    """
    every = all_spaces()
    chosen = every if spaces is None else [s for s in every if s in set(spaces)]
    for space in chosen:
        # With one Space the tasks run in it without queuing themselves again.
        space_id = space.pk if len(every) > 1 else None
        for resource in RESOURCES.values():
            task = SYNC_TASKS[resource.sync_kind]
            if resource.has_tokens:
                chain(
                    task.si(trigger=trigger, space_id=space_id),
                    fetch_missing_tokens.si(trigger=trigger, space_id=space_id),
                ).delay()
            else:
                task.delay(trigger=trigger, space_id=space_id)


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
