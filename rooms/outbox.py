"""The outbox seam: "a row changed, push it" and "keep pushes quiet for these writes".

Save hooks, services and admin depend on this module; it never imports the tasks. Tasks
are sent by their registered names through Celery's app, so no module of rooms imports
another in a circle. A broker that cannot take a task is reported to the caller as False
(the row stays pending and the periodic push_pending sends it later), never as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery import current_app
from django.db import transaction

logger = logging.getLogger("rooms.outbox")

# A kind's tasks are registered (rooms.tasks.push, from rooms.registry) under these names.
PUSH_TASK_PATTERN = "rooms.tasks.push_{kind}"
DELETE_TASK_PATTERN = "rooms.tasks.delete_{kind}"
DELETE_REMOTE_TASK = "rooms.tasks.delete_remote"
ACTION_RUN_TASK = "rooms.tasks.action_run_batch"
PROMOTE_RUN_TASK = "rooms.tasks.promote_run_batch"

_suppressed: ContextVar[bool] = ContextVar("room_portal_pushes_suppressed", default=False)


@contextmanager
def pushes_suppressed() -> Iterator[None]:
    """Keep the save hooks quiet for writes that already agree with SignalWire."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def suppressed() -> bool:
    """Tell whether the writes made now must not be pushed."""
    return _suppressed.get()


def _load_tasks(name: str) -> None:
    """Let Celery import the apps' task modules (autodiscovery) if `name` is not known yet."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()


def send(name: str, *args: Any, **kwargs: Any) -> bool:
    """Queue the task registered under `name`; False (logged) when the broker refused it."""
    try:
        _load_tasks(name)
        # A signature by name runs through the registered task, so eager mode still works.
        current_app.signature(name, args=args, kwargs=kwargs).apply_async()
    except Exception as exc:  # a broker outage must never fail the write that asked
        logger.warning("could not queue %s%r: %s", name, args, exc)
        return False
    return True


def push_task_name(kind: str, *, delete: bool = False) -> str:
    """Name the task that pushes (or finishes deleting) a row of this kind."""
    return (DELETE_TASK_PATTERN if delete else PUSH_TASK_PATTERN).format(kind=kind)


def push_enqueue(kind: str, pk: int, *, delete: bool = False) -> bool:
    """Queue the background push (or delete) of one row; push_pending catches any miss."""
    return send(push_task_name(kind, delete=delete), pk)


def remote_delete_enqueue(kind: str, remote_id: str, space_id: int | None = None) -> bool:
    """Queue the remote delete of a row already deleted locally (a shell delete)."""
    return send(DELETE_REMOTE_TASK, kind, remote_id, space_id)


def push_after_commit(
    kind: str, pk: int, *, delete: bool = False, report: Callable[[bool], None] | None = None
) -> None:
    """Queue a row's push once the current transaction commits; report whether it was queued."""

    def queue() -> None:
        queued = push_enqueue(kind, pk, delete=delete)
        if report is not None:
            report(queued)

    transaction.on_commit(queue)


def remote_delete_after_commit(kind: str, remote_id: str, space_id: int | None = None) -> None:
    """Queue the remote delete of a locally deleted row once the transaction commits."""
    transaction.on_commit(lambda: remote_delete_enqueue(kind, remote_id, space_id))
