"""Celery task of the admin's actions on many rows: one bounded batch per task run.

Each run of the task carries out one batch of an ActionRun and queues the next, so a
selection of thousands of rows never holds a worker for long and shows its progress.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task

from rooms import outbox
from rooms.services import bulk, promote


def run_one_batch(
    task_name: str, batch: Callable[..., int | None], run_id: int, offset: int
) -> str:
    """Carry out one batch of a run with `batch`, then queue the next under `task_name`."""
    try:
        next_offset = batch(run_id=run_id, offset=offset)
    except Exception as exc:
        bulk.action_run_abort(run_id=run_id, error=f"the batch failed ({type(exc).__name__})")
        raise
    if next_offset is None:
        return "done"
    if not outbox.send(task_name, run_id, next_offset):
        bulk.action_run_abort(run_id=run_id, error="the next batch could not be queued")
        return "stopped"
    return f"next batch at {next_offset}"


@shared_task(bind=True, name=outbox.ACTION_RUN_TASK, ignore_result=True)
def action_run_batch(self: Task, run_id: int, offset: int = 0) -> str:
    """Carry out one batch of an admin action run, then queue the next batch."""
    return run_one_batch(outbox.ACTION_RUN_TASK, bulk.action_run_batch, run_id, offset)


@shared_task(bind=True, name=outbox.PROMOTE_RUN_TASK, ignore_result=True)
def promote_run_batch(self: Task, run_id: int, offset: int = 0) -> str:
    """Promote one batch of a run's rows to its Space, then queue the next batch."""
    return run_one_batch(outbox.PROMOTE_RUN_TASK, promote.promote_batch, run_id, offset)
