"""Celery tasks that land local changes in SignalWire: thin wrappers over rooms.services.

They take ids and retry only errors that can heal (rate limits, outages, a busy row) with
exponential backoff, waiting at least as long as SignalWire's Retry-After asks. An error
that will not heal marks the row push_failed at once (in the service); a row whose
retries ran out during an outage stays pending, and the periodic push_pending retries it,
so an outage never loses an edit.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from rooms import outbox, services
from rooms.audit import audit_context
from rooms.models import AuditEntry
from rooms.registry import RESOURCES, NamedResource, Resource
from rooms.services import streams
from rooms.signalwire.errors import RateLimitedError, UnavailableError

logger = logging.getLogger("rooms.tasks.push")

RETRYABLE = (RateLimitedError, UnavailableError)
# Longest pause between two attempts of one push, in seconds.
BACKOFF_MAX = 600


class PushTask(Task):
    """A push task: retries what can heal, then records the failure on the row."""

    autoretry_for = RETRYABLE
    retry_backoff = True
    retry_backoff_max = BACKOFF_MAX
    retry_jitter = True
    # The kind of row the first argument names; None for tasks about no single row.
    push_kind: str | None = None

    @property
    def max_retries(self) -> int:  # type: ignore[override]
        """Read the retry budget from settings when a retry is decided, not at import."""
        return settings.SIGNALWIRE_PUSH_MAX_ATTEMPTS

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Keep an outage's row pending for the periodic push; mark anything else failed."""
        pk = args[0] if args else kwargs.get("pk")
        text = str(exc)
        if self.push_kind and pk is not None:
            # The resource masks what the error may echo (a stream's URL carries its key).
            text = RESOURCES[self.push_kind].error_text(pk, exc)
            if isinstance(exc, RETRYABLE):
                services.push_note_waiting(kind=self.push_kind, pk=pk, error=text)
            else:
                services.push_mark_failed(kind=self.push_kind, pk=pk, error=text)
        logger.warning("%s[%s] gave up for now: %s", self.name, task_id, text)

    def call_honouring_retry_after(self, work: Any) -> Any:
        """Run one attempt; on a 429 with Retry-After wait at least that long before the next."""
        try:
            return work()
        except RateLimitedError as exc:
            if not exc.retry_after:
                raise
            backoff = get_exponential_backoff_interval(
                factor=1, retries=self.request.retries, maximum=BACKOFF_MAX, full_jitter=True
            )
            raise self.retry(exc=exc, countdown=max(float(exc.retry_after), backoff)) from exc


def _as_push(task: Task) -> Any:
    """Attribute the audit entries of one task run to the push, grouped by the task id."""
    return audit_context(
        source=AuditEntry.Source.PUSH, actor_label="push", correlation_id=task.request.id
    )


def _push_call(resource: Resource[Any], pk: int, version: int | None) -> str:
    """Land one row through its resource's push: streams have their own (owner-scoped)."""
    if not isinstance(resource, NamedResource):
        return streams.stream_push(pk=pk, version=version)
    return services.mirror_push(kind=resource.kind, pk=pk, version=version)


def _delete_call(resource: Resource[Any], pk: int) -> str:
    """Finish a row's pending delete through the shared push, streams' too."""
    return services.mirror_push_delete(kind=resource.kind, pk=pk)


def _register(resource: Resource[Any]) -> tuple[Task, Task]:
    """Register the push and the delete task of one resource under the registry's names."""

    @shared_task(bind=True, base=PushTask, name=resource.push_task, push_kind=resource.kind)
    def push(self: PushTask, pk: int, version: int | None = None) -> str:
        """Land a row's pending change in SignalWire."""
        with _as_push(self):
            return self.call_honouring_retry_after(
                lambda: _push_call(resource, pk, version)
            )

    @shared_task(bind=True, base=PushTask, name=resource.delete_task, push_kind=resource.kind)
    def delete(self: PushTask, pk: int) -> str:
        """Finish deleting a row left pending delete."""
        with _as_push(self):
            return self.call_honouring_retry_after(
                lambda: _delete_call(resource, pk)
            )

    return push, delete


# The push and delete task of every registered resource, by kind.
PUSH_TASKS: dict[str, Task] = {}
DELETE_TASKS: dict[str, Task] = {}
for _resource in RESOURCES.values():
    PUSH_TASKS[_resource.kind], DELETE_TASKS[_resource.kind] = _register(_resource)


def __getattr__(name: str) -> Task:
    """Name each resource's tasks push_<kind> and delete_<kind> (push_room, delete_room...)."""
    verb, _, kind = name.partition("_")
    tasks = {"push": PUSH_TASKS, "delete": DELETE_TASKS}.get(verb, {})
    if kind in tasks:
        return tasks[kind]
    raise AttributeError(name)


@shared_task(bind=True, base=PushTask, name="rooms.tasks.delete_remote")
def delete_remote(
    self: PushTask, kind: str, remote_id: str, space_id: int | None = None
) -> None:
    """Delete in SignalWire an object whose local row was deleted outside the services."""
    with _as_push(self):
        self.call_honouring_retry_after(
            lambda: services.remote_delete(kind=kind, remote_id=remote_id, space_id=space_id)
        )


@shared_task(name="rooms.tasks.push_pending")
def push_pending() -> int:
    """Queue a push or delete for every row still waiting to land (periodic safety net)."""
    from rooms.services import recordings

    # Recording deletes whose outcome was never stored become pending deletes first; the
    # generic replay below knows only the registered resources.
    recordings.recordings_replay_intents()
    services.intents_replay()  # edits whose answer was never stored become pending first
    count = 0
    for pk in recordings.recordings_pending_delete():
        outbox.send(recordings.DELETE_TASK, pk)
        count += 1
    for kind, pk, is_delete in services.pending_rows():
        services.push_enqueue(kind, pk, delete=is_delete)
        count += 1
    return count
