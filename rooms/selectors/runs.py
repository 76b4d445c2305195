"""Sync run summaries: the latest run of a kind and one line on how it went, for admin."""

from __future__ import annotations

from django.utils.timesince import timesince

from rooms.models import SyncRun
from rooms.selectors.spaces import Spaces, in_spaces

Outcome = SyncRun.Outcome


def latest_sync_run(kind: str, *, spaces: Spaces = None) -> SyncRun | None:
    """Return the newest run of a kind that did some work (skipped runs say nothing new)."""
    runs = in_spaces(SyncRun.objects.filter(kind=kind), spaces)
    return runs.exclude(outcome=Outcome.SKIPPED).first()


def latest_sync_summary(kind: str, *, spaces: Spaces = None) -> str:
    """Say in one line how the latest sync of a kind went, for admin pages to show."""
    run = latest_sync_run(kind, spaces=spaces)
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
