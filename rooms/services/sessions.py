"""Session history retention: remove mirrored sessions and members older than the policy.

SESSION_RETENTION_DAYS (0 keeps everything) removes, once a day, the sessions that
started before midnight UTC that many days ago, and their members, in batches of short
transactions. The daily usage rollup is not touched: usage keeps those days' figures.
Sessions still in progress are never removed. Recordings keep their own retention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from rooms.locks import single_flight
from rooms.models import ActionRun, RoomSession, SessionMember
from rooms.models.sessions import LIVE
from rooms.services.usage import day_start, utc_day

# A hundred years, like the recordings' retention: a cutoff that can always be computed.
RETENTION_DAYS_MAX = 36500
BATCH_SIZE = 1000
KIND = "session"


def retention_days_problem(days: Any) -> str | None:
    """Say what is wrong with a session retention period in days, or None when it can be used."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        return f"must be 0 (keep every session) or a positive number of days, not {days!r}"
    if days > RETENTION_DAYS_MAX:
        return f"must be at most {RETENTION_DAYS_MAX} days (100 years), not {days}"
    return None


def retention_days() -> int:
    """Return SESSION_RETENTION_DAYS; refuse a negative or huge value with a clear error."""
    days = getattr(settings, "SESSION_RETENTION_DAYS", 0)
    problem = retention_days_problem(days)
    if problem:
        raise ImproperlyConfigured(f"SESSION_RETENTION_DAYS {problem}.")
    return int(days)


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days before today: sessions that started before it are removed."""
    today = utc_day(now or timezone.now())
    assert today is not None
    return day_start(today - timedelta(days=days))


def first_kept_day(days: int | None = None) -> date | None:
    """The oldest day retention keeps sessions of (None when it keeps everything)."""
    days = retention_days() if days is None else days
    return retention_cutoff(days).date() if days else None


def retention_candidates(cutoff: datetime) -> QuerySet[RoomSession]:
    """The sessions retention removes: started before the cutoff and not in progress."""
    return RoomSession.objects.filter(start_time__lt=cutoff).exclude(status=LIVE)


@dataclass
class SessionRetentionResult:
    """What a session retention pass found and did."""

    days: int
    cutoff: datetime | None
    dry_run: bool
    sessions: int = 0
    members: int = 0
    batches: int = 0
    skipped_busy: bool = False
    run: ActionRun | None = None
    counts: dict[str, int] = field(default_factory=dict)


def sessions_apply_retention(
    *,
    dry_run: bool = False,
    days: int | None = None,
    batch_size: int = BATCH_SIZE,
    now: datetime | None = None,
) -> SessionRetentionResult:
    """Remove sessions and members older than the period (counts only when `dry_run`)."""
    days = retention_days() if days is None else days
    problem = retention_days_problem(days)
    if problem:
        raise ImproperlyConfigured(f"The session retention period {problem}.")
    if days == 0:
        return SessionRetentionResult(days=0, cutoff=None, dry_run=dry_run)
    cutoff = retention_cutoff(days, now)
    result = SessionRetentionResult(days=days, cutoff=cutoff, dry_run=dry_run)
    old = retention_candidates(cutoff)
    if dry_run:
        result.sessions = old.count()
        result.members = SessionMember.objects.filter(session__in=old).count()
        return result
    with single_flight("retention:sessions") as flight:
        if not flight.acquired:
            result.skipped_busy = True
            return result
        # One run per Space, so each Space's staff see what was removed from theirs.
        for space_id in sorted(set(old.order_by().values_list("space_id", flat=True))):
            _remove_in_space(result, old.filter(space_id=space_id), space_id, batch_size)
        if result.run is not None:
            result.run.refresh_from_db()
    result.counts = _counts(result)
    return result


def _remove_in_space(
    result: SessionRetentionResult, old: QuerySet[RoomSession], space_id: int, batch_size: int
) -> None:
    """Remove one Space's old sessions in short batches, as that Space's run."""
    mine = SessionRetentionResult(days=result.days, cutoff=result.cutoff, dry_run=False)
    cutoff = result.cutoff.isoformat() if result.cutoff else ""
    run = ActionRun.objects.create(
        space_id=space_id,
        action=ActionRun.Action.SESSION_RETENTION,
        kind=KIND,
        state=ActionRun.State.RUNNING,
        started_at=timezone.now(),
        changes={"days": result.days, "cutoff": cutoff},
    )
    result.run = result.run or run
    while True:
        # Each batch is its own short transaction: the oldest sessions first.
        pks = list(old.order_by("start_time", "id").values_list("pk", flat=True)[:batch_size])
        if not pks:
            break
        with transaction.atomic():
            members, _ = SessionMember.objects.filter(session_id__in=pks).delete()
            removed = RoomSession.objects.filter(pk__in=pks).delete()[1]
        mine.members += members
        mine.sessions += removed.get(RoomSession._meta.label, 0)
        mine.batches += 1
        ActionRun.objects.filter(pk=run.pk).update(done=mine.sessions, counts=_counts(mine))
    ActionRun.objects.filter(pk=run.pk).update(
        total=mine.sessions,
        done=mine.sessions,
        counts=_counts(mine),
        finished_at=timezone.now(),
        state=ActionRun.State.SUCCEEDED,
    )
    result.sessions += mine.sessions
    result.members += mine.members
    result.batches += mine.batches


def _counts(result: SessionRetentionResult) -> dict[str, int]:
    return {"sessions": result.sessions, "members": result.members, "batches": result.batches}
