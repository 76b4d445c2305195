"""Admin actions on many rows: a run record in the request, the work in the worker's batches.

The request only records an ActionRun with the selected keys and queues its first batch
(by task name, through rooms.outbox); it never waits on SignalWire. The worker takes the
keys batch by batch, calls the same services a single edit uses, and keeps the run's
progress and summary up to date, so admin shows how far it got and what happened.

A bulk edit (`bulk_edit_start`) and its restore (`bulk_restore_start`) are runs too: each
row goes through the same remote-first update service as a single edit, under an audit
context whose correlation id is the run's id, so the change log shows the edit as one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.utils import timezone

from rooms import outbox, services
from rooms.audit import audit_context, json_value
from rooms.models import ActionRun, AuditEntry, Conference, Recording, Room, SyncState
from rooms.services import alerts, restore, tokens
from rooms.services import recordings as recording_services
from rooms.services.common import client_for
from rooms.signalwire import schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import SignalWireError

# Room for the first errors of a run; later ones are only counted.
ERROR_TEXT_MAX = 4000
DONE_STATES = (
    ActionRun.State.SUCCEEDED,
    ActionRun.State.FINISHED_WITH_ERRORS,
    ActionRun.State.NOT_QUEUED,
)
# Rows SignalWire refused that a run keeps with their message; later ones are only counted.
FAILURES_KEPT = 500
# Rows whose own outcome a run keeps for its page (a promotion's); later ones are counted.
ROWS_KEPT = 1000
# What a bulk edit may set: the fields of SignalWire's PUT that the model lets staff edit.
BULK_EDITABLE: dict[type[models.Model], tuple[str, ...]] = {
    model: tuple(f for f in fields if model._meta.get_field(f).editable)
    for model, fields in restore.RESTORABLE_FIELDS.items()
}
# A row in one of these states holds changes SignalWire does not have yet: a bulk edit
# would send them along, so it leaves the row alone.
UNPUSHED_OR_REFUSED = (SyncState.PENDING_PUSH, SyncState.PENDING_DELETE, SyncState.PUSH_FAILED)
# Outcomes of a bulk edit or restore, grouped as its run page reports them.
CHANGED, UNCHANGED, PENDING, FAILED = "changed", "unchanged", "left_pending", "failed"
SKIPPED_UNPUSHED = "skipped_unpushed"
SKIPPED_DELETED = "skipped_deleted_remotely"
SKIPPED_CHANGED_SINCE = "skipped_changed_since"


def queue_after_commit(run: ActionRun, task: str = outbox.ACTION_RUN_TASK) -> None:
    """Queue a run's first batch once its record commits; record it when the queue is down."""
    run.queued = None

    def queue() -> None:
        run.queued = outbox.send(task, run.pk, 0)
        if not run.queued:
            run.state = ActionRun.State.NOT_QUEUED
            run.finished_at = timezone.now()
            run.error = "The task queue could not be reached, so nothing was done."
            ActionRun.objects.filter(pk=run.pk).update(
                state=run.state, finished_at=run.finished_at, error=run.error
            )

    transaction.on_commit(queue)


def action_run_start(*, action: str, rows: models.QuerySet[Any], actor: Any = None) -> ActionRun:
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
            **_space_of(rows),
        )
        queue_after_commit(run)
    return run


def action_run_batch(*, run_id: int, offset: int = 0) -> int | None:
    """Carry out one batch of a run; return where the next batch starts, None when done."""
    run = ActionRun.objects.filter(pk=run_id).first()
    if run is None or run.state in DONE_STATES:
        return None
    if run.done != offset:
        # A batch delivered again (its answer to the broker was lost) was already recorded;
        # the batch after it is queued, so nothing here is done a second time.
        return None
    if run.started_at is None:
        ActionRun.objects.filter(pk=run.pk).update(
            state=ActionRun.State.RUNNING, started_at=timezone.now()
        )
    batch = run.pks[offset : offset + settings.ROOMS_ACTION_BATCH_SIZE]
    counts: Counter[str] = Counter()
    errors: list[str] = []
    failures: list[dict[str, Any]] = []
    # What this batch's recording deletes freed, kept on the run (its page reads it there).
    freed = recording_services.Freed() if run.kind == Recording._meta.model_name else None
    model = _model_of(run.kind)
    rows = model._default_manager.select_related("space").in_bulk(batch)
    edits = _batch_edits(run, model, batch)
    with audit_context(
        source=AuditEntry.Source.ADMIN, actor=run.requested_by, correlation_id=run.run_id.hex
    ):
        for pk in batch:
            row = rows.get(pk)
            if row is None:
                counts["gone_meanwhile"] += 1
                continue
            try:
                # Each row's own Space: one that cannot be reached fails only its rows.
                client = client_for(getattr(row, "space", None))
                if edits is None:
                    outcome = _carry_out(run, row, client)
                    counts[outcome] += 1
                    if (
                        freed is not None
                        and isinstance(row, Recording)
                        and outcome in recording_services.FREEING
                    ):
                        freed.add_recording(row)
                else:
                    counts[_edit_row(run, row, edits.get(pk, {}), client)] += 1
            except (SignalWireError, ValidationError) as exc:
                counts[FAILED] += 1
                message = refusal_message(exc)
                errors.append(f"{row}: {message}")
                failures.append({"pk": pk, "name": str(row), "message": message})
    next_offset = offset + len(batch)
    if not record_progress(
        run.pk, counts, errors, offset=offset, finished=next_offset >= len(run.pks),
        failures=failures, freed=freed,
    ):
        return None
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
        alerts.soon()


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
    if run.action == ActionRun.Action.DELETE and isinstance(row, Recording):
        return recording_services.recording_delete(
            recording=row, actor=actor, source=AuditEntry.Source.ADMIN, client=client
        )
    if run.action == ActionRun.Action.DELETE:
        gone = services.mirror_delete(row=row, actor=actor, client=client)
        return "deleted" if gone else "pending_delete"
    raise ValueError(f"unknown action {run.action!r}")


def record_progress(
    pk: int,
    counts: Counter[str],
    errors: list[str],
    *,
    offset: int,
    finished: bool,
    failures: list[dict[str, Any]] | None = None,
    freed: recording_services.Freed | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> bool:
    """Add one batch's outcomes to the run, in one short transaction; False if recorded.

    `rows`: each row's own outcome, kept in the run's changes under "rows" (the first
    ROWS_KEPT of them).
    """
    with transaction.atomic():
        run = ActionRun.objects.select_for_update().get(pk=pk)
        if run.done != offset:
            return False  # the same batch, run twice at once, was recorded by the other run
        merged = Counter(run.counts)
        merged.update(counts)
        run.counts = dict(merged)
        run.done += sum(counts.values())
        run.errors += len(errors)
        if errors and len(run.error) < ERROR_TEXT_MAX:
            run.error = "\n".join([run.error, *errors]).strip()[:ERROR_TEXT_MAX]
        if failures and len(run.failures) < FAILURES_KEPT:
            run.failures = [*run.failures, *failures][:FAILURES_KEPT]
        if freed is not None:
            run.changes = recording_services.freed_added(run.changes, freed)
        if rows:
            kept = list(run.changes.get("rows", []))
            run.changes = {**run.changes, "rows": [*kept, *rows][:ROWS_KEPT]}
        if finished:
            run.finished_at = timezone.now()
            run.state = (
                ActionRun.State.FINISHED_WITH_ERRORS if run.errors else ActionRun.State.SUCCEEDED
            )
        run.save(
            update_fields=[
                "counts", "done", "errors", "error", "failures", "finished_at", "state",
                "changes",
            ]
        )
        if finished and run.errors:
            alerts.soon()
    return True


# --- bulk edits and their restores ------------------------------------------------------


def _model_of(kind: str) -> type[models.Model]:
    """Return the mirrored model a run's kind names."""
    if kind == Recording._meta.model_name:
        return Recording
    return services.mirror_for(kind).model


def bulk_editable_fields(model: type[models.Model]) -> tuple[str, ...]:
    """Name the fields a bulk edit of this model may set."""
    if model not in BULK_EDITABLE:
        raise ValueError(f"{model.__name__} cannot be bulk edited")
    return BULK_EDITABLE[model]


def bulk_edit_clean(*, model: type[models.Model], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check a bulk edit's fields and values as the model does; return them cleaned.

    Raises ValidationError (keyed by field) for an unknown or fixed field, a value the
    field refuses, or clearing a field SignalWire's PUT cannot clear; then nothing runs.
    """
    allowed = bulk_editable_fields(model)
    if not changes:
        raise ValidationError("Choose at least one field to change.")
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    refused_clears = schema.update_clear_errors(changes)
    for name, value in changes.items():
        if name not in allowed:
            errors.setdefault(NON_FIELD_ERRORS, []).append(
                f"“{name}” cannot be changed by a bulk edit."
            )
            continue
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        if name in refused_clears:
            errors.setdefault(name, []).append(refused_clears[name])
            continue
        try:
            cleaned[name] = field.clean(value, None)
        except ValidationError as exc:
            errors.setdefault(name, []).extend(exc.messages)
    join_from, join_until = cleaned.get("join_from"), cleaned.get("join_until")
    if join_from and join_until and join_from >= join_until:
        errors.setdefault("join_until", []).append("Join until must be after join from.")
    if errors:
        raise ValidationError(errors)
    return cleaned


def _space_of(rows: models.QuerySet[Any]) -> dict[str, int]:
    """The run's Space: the one its rows belong to (rows of several: the environment's)."""
    found = list(rows.order_by().values_list("space_id", flat=True).distinct()[:2])
    return {"space_id": found[0]} if len(found) == 1 else {}


def bulk_edit_start(
    *,
    model: type[models.Model],
    pks: list[int],
    changes: Mapping[str, Any],
    actor: Any = None,
) -> ActionRun:
    """Record a bulk edit of the rows and queue its first batch; never call SignalWire.

    Each row is later changed by the same remote-first update service as a single edit.
    Raises ValidationError when the changes are not valid; then nothing is recorded.
    """
    cleaned = bulk_edit_clean(model=model, changes=changes)
    return _start(
        action=ActionRun.Action.BULK_EDIT,
        kind=model._meta.model_name or "",
        pks=sorted(set(pks)),
        actor=actor,
        changes=cleaned,
        space=_space_of(model._default_manager.filter(pk__in=pks)),
    )


def bulk_restore_rows(*, run: ActionRun) -> list[int]:
    """Return the rows a bulk edit changed (those with an audit entry under its run id)."""
    model = _model_of(run.kind)
    pks = _edit_entries(run, model).values_list("object_pk", flat=True)
    return sorted({int(pk) for pk in pks})


def bulk_restore_start(
    *, run: ActionRun, actor: Any = None, pks: list[int] | None = None
) -> ActionRun:
    """Queue the undo of a bulk edit for the rows it changed (or those of them in `pks`)."""
    if run.action != ActionRun.Action.BULK_EDIT:
        raise ValidationError("Only a bulk edit can be restored.")
    if run.state not in DONE_STATES:
        raise ValidationError("This bulk edit is still running; restore it once it ended.")
    changed = bulk_restore_rows(run=run)
    if pks is not None:
        wanted = set(pks)
        changed = [pk for pk in changed if pk in wanted]
    if not changed:
        raise ValidationError("This bulk edit changed no row that could be restored.")
    return _start(
        action=ActionRun.Action.RESTORE,
        kind=run.kind,
        pks=changed,
        actor=actor,
        changes=run.changes,
        undoes=run,
        space={"space_id": run.space_id} if run.space_id else None,
    )


def _start(
    *,
    action: str,
    kind: str,
    pks: list[int],
    actor: Any,
    changes: Mapping[str, Any],
    undoes: ActionRun | None = None,
    space: dict[str, int] | None = None,
) -> ActionRun:
    """Record a bulk edit or restore run and queue its first batch once committed."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        run = ActionRun.objects.create(
            action=action,
            kind=kind,
            requested_by=user,
            total=len(pks),
            pks=pks,
            changes=dict(changes),
            undoes=undoes,
            **(space or {}),
        )
        queue_after_commit(run)
    # Stored as JSON (datetimes as text); the batches turn them back into field values.
    run.refresh_from_db(fields=["changes"])
    return run


def decoded_changes(run: ActionRun) -> dict[str, Any]:
    """Return a bulk edit's changes as field values (datetimes parsed back)."""
    model = _model_of(run.kind)
    values = {}
    for name, value in run.changes.items():
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        values[name] = restore.parse_value(field, value)
    return values


def _edit_entries(run: ActionRun, model: type[models.Model]) -> models.QuerySet[AuditEntry]:
    """The audit entries of the rows a bulk edit changed."""
    entries: models.QuerySet[AuditEntry] = AuditEntry.objects.filter(
        cid=run.run_id.hex,
        content_type=ContentType.objects.get_for_model(model),
        action=AuditEntry.Action.UPDATE,
    )
    return entries


def _batch_edits(
    run: ActionRun, model: type[models.Model], batch: list[int]
) -> dict[int, dict[str, Any]] | None:
    """Say what each row of a bulk edit's or restore's batch should get; None otherwise.

    A restore gives each row back the value it had before the bulk edit, for the fields
    the edit set and nobody changed since (the row still holds the edit's value).
    """
    if run.action == ActionRun.Action.BULK_EDIT:
        values = decoded_changes(run)
        return {pk: values for pk in batch}
    if run.action != ActionRun.Action.RESTORE or run.undoes is None:
        return None
    entries = _edit_entries(run.undoes, model).filter(object_pk__in=[str(pk) for pk in batch])
    edits: dict[int, dict[str, Any]] = {}
    fields = set(run.undoes.changes)
    for entry in entries.order_by("timestamp"):
        before = {k: v for k, v in restore.restore_values(entry=entry).items() if k in fields}
        after = {k: pair[1] for k, pair in entry.changes.items() if k in before}
        edits[int(entry.object_pk)] = {"before": before, "after": after}
    return edits


def _same(field: str, current: Any, value: Any) -> bool:
    """Tell whether a row already holds a value (colours regardless of letter case)."""
    if field in schema.COLOUR_FIELDS and isinstance(current, str) and isinstance(value, str):
        return current.lower() == value.lower()
    return bool(current == value)


def _edit_row(run: ActionRun, row: Any, edit: dict[str, Any], client: SignalWireClient) -> str:
    """Change one row through the remote-first update service; name the outcome."""
    if row.sync_state in UNPUSHED_OR_REFUSED:
        return SKIPPED_UNPUSHED
    if row.sync_state == SyncState.DELETED_REMOTELY:
        return SKIPPED_DELETED
    if run.action == ActionRun.Action.RESTORE:
        if not edit:
            return SKIPPED_CHANGED_SINCE
        # A field someone changed after the bulk edit keeps that later value.
        data, changed_since = {}, False
        for name, value in edit["before"].items():
            field = row._meta.get_field(name)
            current = json_value(field, getattr(row, name))
            if current == edit["after"][name]:
                data[name] = value
            elif current != json_value(field, value):
                changed_since = True
        if not data:
            return SKIPPED_CHANGED_SINCE if changed_since else UNCHANGED
    else:
        data = dict(edit)
    data = {name: v for name, v in data.items() if not _same(name, getattr(row, name), v)}
    if not data:
        # Already there (an earlier attempt of this batch landed it): nothing is sent again.
        return UNCHANGED
    result: Conference | Room
    try:
        if isinstance(row, Conference):
            result = services.conference_update(
                conference=row, data=data, actor=run.requested_by, client=client
            )
        elif isinstance(row, Room):
            result = services.room_update(
                room=row, data=data, actor=run.requested_by, client=client
            )
        else:  # pragma: no cover - BULK_EDITABLE names only these two
            raise ValueError(f"cannot edit {type(row).__name__}")
    except ValidationError:
        states = type(row)._default_manager.filter(pk=row.pk).values_list("sync_state", flat=True)
        state = states.first()
        if state == SyncState.DELETED_REMOTELY:
            return SKIPPED_DELETED
        raise
    if result.sync_state == SyncState.PENDING_PUSH:
        # Saved here and queued: the row's push task lands it with backoff.
        return PENDING
    return CHANGED


def refusal_message(exc: Exception) -> str:
    """Say in one line why a row was refused: SignalWire's messages by field."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        parts = []
        for field, errors in exc.error_dict.items():
            for message in ValidationError(errors).messages:
                parts.append(message if field == NON_FIELD_ERRORS else f"{field}: {message}")
        return "; ".join(parts)
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def run_outcomes(run: ActionRun) -> dict[str, int]:
    """Group a run's counts as staff read them: changed, unchanged, pending, failed, skipped."""
    counts = run.counts or {}
    skipped = sum(n for k, n in counts.items() if k.startswith("skipped") or k == "gone_meanwhile")
    return {
        "changed": counts.get(CHANGED, 0),
        "unchanged": counts.get(UNCHANGED, 0),
        "pending": counts.get(PENDING, 0),
        "failed": counts.get(FAILED, 0),
        "skipped": skipped,
    }


@dataclass(frozen=True)
class EditPreview:
    """What a bulk edit would do to the selected rows, as counted before it starts."""

    total: int
    change: int
    unchanged: int
    skipped_unpushed: int
    skipped_deleted: int
    # A few rows that would change: (row, [(field label, before, after), ...]).
    examples: list[tuple[Any, list[tuple[str, Any, Any]]]]


def bulk_edit_preview(
    *, rows: models.QuerySet[Any], changes: Mapping[str, Any], examples: int = 5
) -> EditPreview:
    """Count what a bulk edit would change, skip or leave as it is; read only, no SignalWire."""
    model = rows.model
    fields = list(bulk_edit_clean(model=model, changes=changes))
    cleaned = dict(changes)
    counts: Counter[str] = Counter()
    shown: list[tuple[Any, list[tuple[str, Any, Any]]]] = []
    columns = ["pk", "name", "display_name", "sync_state", *fields]
    for row in rows.order_by("pk").only(*columns).iterator(chunk_size=2000):
        if row.sync_state in UNPUSHED_OR_REFUSED:
            counts[SKIPPED_UNPUSHED] += 1
            continue
        if row.sync_state == SyncState.DELETED_REMOTELY:
            counts[SKIPPED_DELETED] += 1
            continue
        diff = [
            (str(model._meta.get_field(f).verbose_name), getattr(row, f), cleaned[f])
            for f in fields
            if not _same(f, getattr(row, f), cleaned[f])
        ]
        counts[CHANGED if diff else UNCHANGED] += 1
        if diff and len(shown) < examples:
            shown.append((row, diff))
    return EditPreview(
        total=sum(counts.values()),
        change=counts[CHANGED],
        unchanged=counts[UNCHANGED],
        skipped_unpushed=counts[SKIPPED_UNPUSHED],
        skipped_deleted=counts[SKIPPED_DELETED],
        examples=shown,
    )
