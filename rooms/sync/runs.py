"""The frame of every sync run: the single-flight lock, the SyncRun record and its counts."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.utils import timezone

from rooms.audit import audit_context
from rooms.locks import Flight, single_flight
from rooms.models import AuditEntry, Space, SyncRun, environment_space
from rooms.observations import observe
from rooms.services import alerts
from rooms.signalwire.client import SignalWireClient, build_client

logger = logging.getLogger("rooms.sync")

Outcome = SyncRun.Outcome
Progress = Callable[[SyncRun], None]

# Row-level reasons kept on a run; the count says how many there were in all.
MAX_REASONS = 20
COUNTERS = (
    "pages",
    "seen",
    "created",
    "updated",
    "unchanged",
    "marked_deleted",
    "restored",
    "skipped_pending",
    "errors",
)


LOST_LOCK = "Lost the sync lock; stopped so two runs never overlap."


class SyncAborted(Exception):
    """The run cannot go on safely (it lost its lock); it is recorded as failed."""


def lock_name(kind: str, space: Space) -> str:
    """Name the single-flight lock of one kind of sync in one Space."""
    return f"sync:{space.pk}:{kind}"


def locked_run(
    kind: str,
    trigger: str,
    client: SignalWireClient | None,
    work: Callable[[SyncRun, Flight, SignalWireClient], None],
    space: Space | None = None,
) -> SyncRun:
    """Run `work` under the kind's lock in one Space with a SyncRun record.

    Failures are recorded and raised. Without `space`, the Space the environment configures.
    """
    space = space if space is not None else environment_space()
    with single_flight(lock_name(kind, space)) as flight:
        if not flight.acquired:
            now = timezone.now()
            logger.info("%s sync of %s skipped: another run holds the lock", kind, space)
            return SyncRun.objects.create(
                space=space,
                kind=kind,
                trigger=trigger,
                outcome=Outcome.SKIPPED,
                finished_at=now,
                error="Another run of this sync held the lock.",
            )
        # Holding the lock means no other run of this kind is alive: any left "running"
        # belonged to a worker that died.
        stale = list(
            SyncRun.objects.filter(space=space, kind=kind, outcome=Outcome.RUNNING).values_list(
                "pk", flat=True
            )
        )
        if stale:
            error = "Interrupted: the worker stopped before the run finished."
            if flight.took_over is not None:
                error = (
                    f"Interrupted: its worker ({flight.took_over}) stopped before the run "
                    "finished; the next run took its lock over at once."
                )
            SyncRun.objects.filter(pk__in=stale).update(
                outcome=Outcome.FAILED, finished_at=timezone.now(), error=error
            )
        run = SyncRun.objects.create(space=space, kind=kind, trigger=trigger)
        with audit_context(source=AuditEntry.Source.SYNC, actor_label="sync",
                           correlation_id=str(run.run_id)):
            try:
                api = client if client is not None else build_client(
                    profile="background", credentials=space.credentials()
                )
                try:
                    work(run, flight, api)
                finally:
                    if client is None:
                        api.close()
            except BaseException as exc:
                run.outcome = Outcome.FAILED
                run.error = _join_error(str(exc) or type(exc).__name__, run.error)
                run.finished_at = timezone.now()
                save_run(run)
                observe_run(run)
                logger.warning("%s sync %s failed: %s", kind, run.run_id, exc)
                alerts.soon()
                raise
        run.outcome = Outcome.SUCCEEDED
        run.finished_at = timezone.now()
        save_run(run)
        observe_run(run)
        logger.info(
            "%s sync %s done: %s", kind, run.run_id,
            ", ".join(f"{name}={getattr(run, name)}" for name in COUNTERS),
        )
        return run


def save_run(run: SyncRun) -> None:
    """Write a run's counts and outcome, whatever state the connection's transaction is in."""
    SyncRun.objects.filter(pk=run.pk).update(
        outcome=run.outcome,
        finished_at=run.finished_at,
        error=run.error,
        **{name: getattr(run, name) for name in COUNTERS},
    )


def observe_run(run: SyncRun) -> None:
    """Count a finished run's duration in the sync run histogram."""
    if run.finished_at is not None:
        seconds = (run.finished_at - run.started_at).total_seconds()
        observe("sync_run", (run.kind, run.outcome), seconds)


def _join_error(first: str, rest: str) -> str:
    return f"{first}\n{rest}" if rest else first


def note_error(run: SyncRun, reasons: list[str], reason: str) -> None:
    """Count a row that could not be mirrored and keep the first few reasons on the run."""
    run.errors += 1
    if len(reasons) < MAX_REASONS:
        reasons.append(reason)
    more = run.errors - len(reasons)
    run.error = "\n".join(reasons) + (f"\n… and {more} more" if more > 0 else "")
