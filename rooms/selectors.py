"""Reads that are more than a filter: the sync's bulk lookups and the run summaries admin shows."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, models
from django.utils.timesince import timesince

from rooms.models import RemoteIntent, SyncRun

Outcome = SyncRun.Outcome


def mirror_rows_by_remote_id(
    model: type[models.Model], remote_ids: Iterable[str]
) -> dict[str, tuple[int, str, object]]:
    """Read (pk, sync_state, remote_updated_at) of the known rows among some remote ids."""
    rows = (
        model._default_manager.filter(remote_id__in=list(remote_ids))
        .order_by()
        .values_list("remote_id", "pk", "sync_state", "remote_updated_at")
    )
    return {remote_id: (pk, state, updated) for remote_id, pk, state, updated in rows}


def markable_remote_ids(model: type[models.Model], states: Iterable[str]) -> set[str]:
    """Return the remote ids of every mirrored row in the given states, as plain strings.

    The sync walks every mirrored row on every run: plain rows from the covering
    (sync_state, remote_id) index and set arithmetic, no model instances.
    """
    candidates = (
        model._default_manager.filter(remote_id__isnull=False, sync_state__in=list(states))
        .order_by()
        .values_list("remote_id")
    )
    sql, params = candidates.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {remote_id for (remote_id,) in cursor.fetchall()}


def names_awaiting_create(kind: str) -> set[str]:
    """Return the names of a kind whose create was sent but whose row was never stored."""
    return set(
        RemoteIntent.objects.filter(
            kind=kind, action=RemoteIntent.Action.CREATE, object_pk__isnull=True
        ).values_list("name", flat=True)
    )


def latest_sync_run(kind: str) -> SyncRun | None:
    """Return the newest run of a kind that did some work (skipped runs say nothing new)."""
    return SyncRun.objects.filter(kind=kind).exclude(outcome=Outcome.SKIPPED).first()


def latest_sync_summary(kind: str) -> str:
    """Say in one line how the latest sync of a kind went, for admin pages to show."""
    run = latest_sync_run(kind)
    if run is None:
        return "Not synced with SignalWire yet."
    ago = timesince(run.started_at)
    if run.outcome == Outcome.RUNNING:
        return f"A sync is running (started {ago} ago, {run.seen} seen so far)."
    if run.outcome == Outcome.FAILED:
        reason = (run.error or "unknown error").splitlines()[0][:200]
        return f"Last sync {ago} ago failed: {reason}"
    text = (
        f"Last synced {ago} ago: {run.seen} seen, {run.created} new, {run.updated} updated, "
        f"{run.marked_deleted} deleted remotely, {run.restored} restored"
    )
    if run.skipped_pending:
        text += f", {run.skipped_pending} waiting to push"
    if run.errors:
        text += f", {run.errors} not readable"
    return text + "."
