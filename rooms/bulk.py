"""Admin actions on many rows: a run record in the request, the work in the worker's batches.

The request only records an ActionRun with the selected keys and queues its first batch
(by task name, through rooms.outbox); it never waits on SignalWire. The worker takes the
keys batch by batch, calls the same services a single edit uses, and keeps the run's
progress and summary up to date, so admin shows how far it got and what happened.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from rooms import outbox, services, tokens
from rooms.audit import audit_context
from rooms.models import ActionRun, AuditEntry
from rooms.signalwire.client import SignalWireClient, build_client
from rooms.signalwire.errors import SignalWireError

# Room for the first errors of a run; later ones are only counted.
ERROR_TEXT_MAX = 4000
DONE_STATES = (
    ActionRun.State.SUCCEEDED,
    ActionRun.State.FINISHED_WITH_ERRORS,
    ActionRun.State.NOT_QUEUED,
)


def action_run_start(*, action: str, rows: models.QuerySet, actor: Any = None) -> ActionRun:
    """Record an action on the selected rows and queue its first batch; never call SignalWire.

    The returned run's `queued` says whether the task queue took it (None while the
    surrounding transaction has not committed yet).
    """
    if action == ActionRun.Action.PUSH:
        # One statement: the rows show "Pending push" at once, and the periodic push finds
        # them even if the worker never gets this run.
        services.mirror_mark_pending(rows=rows, queue=False)
    pks = list(rows.order_by("pk").values_list("pk", flat=True))
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        run = ActionRun.objects.create(
            action=action,
            kind=rows.model._meta.model_name,
            requested_by=user,
            total=len(pks),
            pks=pks,
        )
        run.queued = None

        def queue() -> None:
            run.queued = outbox.send(outbox.ACTION_RUN_TASK, run.pk, 0)
            if not run.queued:
                run.state = ActionRun.State.NOT_QUEUED
                run.finished_at = timezone.now()
                run.error = "The task queue could not be reached, so nothing was done."
                ActionRun.objects.filter(pk=run.pk).update(
                    state=run.state, finished_at=run.finished_at, error=run.error
                )

        transaction.on_commit(queue)
    return run


def action_run_batch(*, run_id: int, offset: int = 0) -> int | None:
    """Carry out one batch of a run; return where the next batch starts, None when done."""
    run = ActionRun.objects.filter(pk=run_id).first()
    if run is None or run.state in DONE_STATES:
        return None
    if run.started_at is None:
        ActionRun.objects.filter(pk=run.pk).update(
            state=ActionRun.State.RUNNING, started_at=timezone.now()
        )
    batch = run.pks[offset : offset + settings.ROOMS_ACTION_BATCH_SIZE]
    counts: Counter[str] = Counter()
    errors: list[str] = []
    model = services.mirror_for(run.kind).model
    rows = model.objects.in_bulk(batch)
    with audit_context(
        source=AuditEntry.Source.ADMIN, actor=run.requested_by, correlation_id=run.run_id.hex
    ):
        client = build_client(profile="background")
        for pk in batch:
            row = rows.get(pk)
            if row is None:
                counts["gone_meanwhile"] += 1
                continue
            try:
                counts[_carry_out(run, row, client)] += 1
            except SignalWireError as exc:
                counts["failed"] += 1
                errors.append(f"{row}: {exc}")
    next_offset = offset + len(batch)
    _record_progress(run.pk, counts, errors, finished=next_offset >= len(run.pks))
    return None if next_offset >= len(run.pks) else next_offset


def action_run_abort(*, run_id: int, error: str) -> None:
    """End a run that cannot go on (its next batch could not be queued, a batch crashed)."""
    with transaction.atomic():
        run = ActionRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.state in DONE_STATES:
            return
        run.state = ActionRun.State.FINISHED_WITH_ERRORS
        run.finished_at = timezone.now()
        run.errors += 1
        run.error = "\n".join([run.error, f"Stopped after {run.done} of {run.total}: {error}"])
        run.error = run.error.strip()[:ERROR_TEXT_MAX]
        run.save(update_fields=["state", "finished_at", "errors", "error"])


def _carry_out(run: ActionRun, row: Any, client: SignalWireClient) -> str:
    """Do the run's action to one row through the services; name the outcome."""
    actor = run.requested_by
    if run.action == ActionRun.Action.REFRESH:
        return services.mirror_refresh(row=row, actor=actor, client=client)
    if run.action == ActionRun.Action.REFRESH_TOKENS:
        if not row.remote_id:
            return "skipped"
        tokens.conference_tokens_refresh(conference=row, actor=actor, client=client)
        return "refreshed"
    if run.action == ActionRun.Action.PUSH:
        try:
            return services.mirror_push(kind=run.kind, pk=row.pk, client=client)
        except SignalWireError as exc:
            if not exc.retryable:
                raise
            # The row's own push task retries it with backoff until it lands.
            outbox.push_enqueue(run.kind, row.pk)
            return "left_pending"
    if run.action == ActionRun.Action.DELETE:
        gone = services.mirror_delete(row=row, actor=actor, client=client)
        return "deleted" if gone else "pending_delete"
    raise ValueError(f"unknown action {run.action!r}")


def _record_progress(pk: int, counts: Counter[str], errors: list[str], *, finished: bool) -> None:
    """Add one batch's outcomes to the run, in one short transaction."""
    with transaction.atomic():
        run = ActionRun.objects.select_for_update().get(pk=pk)
        merged = Counter(run.counts)
        merged.update(counts)
        run.counts = dict(merged)
        run.done += sum(counts.values())
        run.errors += len(errors)
        if errors and len(run.error) < ERROR_TEXT_MAX:
            run.error = "\n".join([run.error, *errors]).strip()[:ERROR_TEXT_MAX]
        if finished:
            run.finished_at = timezone.now()
            run.state = (
                ActionRun.State.FINISHED_WITH_ERRORS if run.errors else ActionRun.State.SUCCEEDED
            )
        run.save(update_fields=["counts", "done", "errors", "error", "finished_at", "state"])
