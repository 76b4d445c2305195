"""Celery tasks that keep room sessions in step: a frequent live refresh, a history sync.

Beat runs the live refresh every SIGNALWIRE_LIVE_SESSIONS_INTERVAL seconds (about a
minute) and the history sync every SIGNALWIRE_SYNC_INTERVAL; both are thin over
rooms.sync.sessions and retry only errors that can heal.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings

logger = logging.getLogger("rooms.tasks.sessions")


@shared_task(bind=True, name="rooms.tasks.refresh_live_sessions", ignore_result=True)
def refresh_live_sessions(
    self: Task, trigger: str = "schedule", space_id: int | None = None
) -> str:
    """Refresh the sessions in progress and their members; close those that ended."""
    from rooms import sync
    from rooms.tasks.sync import run_sync_task

    return run_sync_task(self, sync.sessions_refresh_live, space_id, trigger=trigger)


@shared_task(bind=True, name="rooms.tasks.sync_session_history", ignore_result=True)
def sync_session_history(
    self: Task, trigger: str = "schedule", space_id: int | None = None
) -> str:
    """Mirror the completed sessions that are new or changed since the last run."""
    from rooms import sync
    from rooms.tasks.sync import run_sync_task

    return run_sync_task(self, sync.sessions_sync_history, space_id, trigger=trigger)


@worker_ready.connect(dispatch_uid="rooms.tasks.activity.sessions_on_start")
def sessions_on_start(sender: object = None, **kwargs: object) -> None:
    """Queue a live refresh and a history sync when a worker starts, so the dashboard is live."""
    if not getattr(settings, "SIGNALWIRE_SYNC_ON_START", True):
        return
    try:
        refresh_live_sessions.delay(trigger="startup")
        sync_session_history.delay(trigger="startup")
    except Exception:  # the worker must start even if the broker hiccups
        logger.exception("could not queue the start-up session sync")


@shared_task(name="rooms.tasks.apply_session_retention", ignore_result=True)
def apply_session_retention() -> str:
    """Remove the sessions and members older than SESSION_RETENTION_DAYS (0: keep all)."""
    from rooms.services import sessions

    result = sessions.sessions_apply_retention()
    if result.days == 0:
        return "retention off"
    if result.skipped_busy:
        return "skipped: another session retention run holds the lock"
    logger.info(
        "session retention: %s sessions and %s members removed in %s batches",
        result.sessions, result.members, result.batches,
    )
    return f"{result.sessions} sessions removed"
