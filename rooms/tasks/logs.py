"""Celery tasks of video logs: the incremental sync, and a daily full one that sees removals.

Thin over rooms.sync.logs; they retry only what can heal (SignalWire unavailable or rate
limiting).
"""

from __future__ import annotations

from celery import Task, shared_task


@shared_task(bind=True, name="rooms.tasks.sync_logs", ignore_result=True)
def sync_logs(
    self: Task, trigger: str = "schedule", full: bool = False, space_id: int | None = None
) -> str:
    """Mirror the video logs made since the newest one mirrored (the whole listing if full)."""
    from rooms import sync
    from rooms.tasks.sync import run_sync_task

    return run_sync_task(self, sync.logs_sync, space_id, trigger=trigger, full=full)
