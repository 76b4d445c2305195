"""Keep the usage rollup in step with the mirrored sessions and video logs.

The rollup has three levels: UsageDay (per Space, day and room name, summed from the
mirrored rows), UsageDayTotal (per Space and day) and UsageMonth (per Space, month and room
name), both summed from UsageDay. The sync calls `refresh_session_usage` /
`refresh_billed_usage` with the (Space, day, room name) keys a written batch touched, inside
the batch's transaction: one grouped query over just those keys (by the room name and time
indexes) and one upsert, then per totals level one upsert that reads its grouped figures
itself, whatever the page size. `rebuild_usage` recomputes whole days from the mirrored rows,
a batch of days at a time, then both totals levels a month at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Count, DateTimeField, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Round, TruncDate, TruncMonth
from django.utils import timezone

from rooms.models import RoomSession, UsageDay, UsageDayTotal, UsageMonth, VideoLog
from rooms.models.usage import month_of, next_month

# (space id, UTC day, room name): a room name is unique only within its Space.
Key = tuple[int, date, str]
ZERO = Decimal("0")
CENT = Decimal("0.0001")
SESSION_FIGURES = ("sessions", "member_seconds", "estimated_cost", "conference", "room")
BILLED_FIGURES = ("logs", "billed_cost")
# The same figures in the totals levels (which know no conference or room).
SESSION_TOTALS = ("sessions", "member_seconds", "estimated_cost")
BILLED_TOTALS = BILLED_FIGURES
MONEY = ("estimated_cost", "billed_cost")
# PostgreSQL advisory locks: one writer at a time recomputes each kind of figure, so a
# recompute always sees the rows every earlier one wrote (SQLite's IMMEDIATE
# transactions already serialise writers).
SESSION_LOCK = 7_325_001
BILLED_LOCK = 7_325_002


def utc_day(moment: datetime | None) -> date | None:
    """The UTC date of a moment (None for an unknown one)."""
    return moment.astimezone(UTC).date() if moment is not None else None


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def session_key(session: RoomSession) -> Key | None:
    """The rollup key a session counts under (None when its start is unknown)."""
    day = utc_day(session.start_time)
    if day is None or session.space_id is None:
        return None
    return (session.space_id, day, session.room_name)


def log_key(log: VideoLog) -> Key | None:
    """The rollup key a video log counts under: the day its session started."""
    day = utc_day(log.started_at or log.remote_created_at)
    if day is None or log.space_id is None:
        return None
    return (log.space_id, day, log.room_name)


def _serialise(lock: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock])


def _money(value: Any) -> Decimal:
    """A sum of costs at the API's precision (SQLite sums decimals as floats)."""
    return Decimal(str(value or 0)).quantize(CENT)


def _span(keys: Iterable[Key]) -> tuple[set[int], set[str], datetime, datetime]:
    listed = list(keys)
    days = [day for _, day, _ in listed]
    spaces = {space for space, _, _ in listed}
    names = {name for _, _, name in listed}
    return spaces, names, day_start(min(days)), day_start(max(days) + timedelta(1))


def _session_groups(sessions: QuerySet[RoomSession]) -> dict[Key, dict[str, Any]]:
    rows = (
        sessions.annotate(day=TruncDate("start_time", tzinfo=UTC))
        .order_by()
        .values("space_id", "day", "room_name")
        .annotate(
            n=Count("id"),
            seconds=Coalesce(Sum("member_seconds"), 0),
            cost=Sum("cost_in_dollars"),
            conference_pk=Max("conference_id"),
            room_pk=Max("room_id"),
        )
    )
    return {(row["space_id"], row["day"], row["room_name"]): row for row in cast(Any, rows)}


def _log_groups(logs: QuerySet[VideoLog]) -> dict[Key, dict[str, Any]]:
    rows = (
        logs.annotate(day=TruncDate(Coalesce("started_at", "remote_created_at"), tzinfo=UTC))
        .order_by()
        .values("space_id", "day", "room_name")
        .annotate(n=Count("id"), charge=Sum("charge"))
    )
    return {(row["space_id"], row["day"], row["room_name"]): row for row in cast(Any, rows)}


def _logs_between(names: set[str] | None, start: datetime, end: datetime) -> QuerySet[VideoLog]:
    logs = VideoLog.objects.filter(
        Q(started_at__gte=start, started_at__lt=end)
        | Q(started_at__isnull=True, remote_created_at__gte=start, remote_created_at__lt=end)
    )
    return logs.filter(room_name__in=names) if names is not None else logs


def _session_row(key: Key, row: dict[str, Any] | None) -> UsageDay:
    row = row or {}
    return UsageDay(
        space_id=key[0],
        day=key[1],
        room_name=key[2],
        sessions=row.get("n", 0),
        member_seconds=row.get("seconds", 0),
        estimated_cost=_money(row.get("cost")),
        conference_id=row.get("conference_pk"),
        room_id=row.get("room_pk"),
    )


def _billed_row(key: Key, row: dict[str, Any] | None) -> UsageDay:
    row = row or {}
    return UsageDay(
        space_id=key[0], day=key[1], room_name=key[2], logs=row.get("n", 0),
        billed_cost=_money(row.get("charge")),
    )


def _upsert(rows: list[UsageDay], figures: tuple[str, ...]) -> None:
    UsageDay.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["space", "day", "room_name"],
        update_fields=[*figures, "updated_at"],
    )


def refresh_session_usage(keys: Iterable[Key | None]) -> None:
    """Recompute the session figures of these (Space, day, room name) keys, in a transaction."""
    wanted = {key for key in keys if key is not None}
    if not wanted:
        return
    _serialise(SESSION_LOCK)
    spaces, names, start, end = _span(wanted)
    groups = _session_groups(
        RoomSession.objects.filter(
            space_id__in=spaces, room_name__in=names, start_time__gte=start, start_time__lt=end
        )
    )
    _upsert([_session_row(key, groups.get(key)) for key in sorted(wanted)], SESSION_FIGURES)
    _recount_totals(wanted, SESSION_TOTALS)


def refresh_billed_usage(keys: Iterable[Key | None]) -> None:
    """Recompute the billed figures of these (Space, day, room name) keys, in a transaction."""
    wanted = {key for key in keys if key is not None}
    if not wanted:
        return
    _serialise(BILLED_LOCK)
    spaces, names, start, end = _span(wanted)
    groups = _log_groups(_logs_between(names, start, end).filter(space_id__in=spaces))
    _upsert([_billed_row(key, groups.get(key)) for key in sorted(wanted)], BILLED_FIGURES)
    _recount_totals(wanted, BILLED_TOTALS)


def _sums(figures: tuple[str, ...]) -> dict[str, Any]:
    return {f"sum_{name}": Sum(name) for name in figures}


def _summed(row: dict[str, Any] | None, figures: tuple[str, ...]) -> dict[str, Any]:
    """The figures of a grouped row of UsageDay (zeros for none)."""
    row = row or {}
    return {
        name: _money(row.get(f"sum_{name}")) if name in MONEY else int(row.get(f"sum_{name}") or 0)
        for name in figures
    }


def _recount_totals(keys: set[Key], figures: tuple[str, ...]) -> None:
    """Recount these figures of the day totals and month totals the keys fall in."""
    spaces = {space for space, _, _ in keys}
    days = {day for _, day, _ in keys}
    in_spaces = UsageDay.objects.filter(space_id__in=spaces)
    by_day = in_spaces.filter(day__in=days).order_by().values("space_id", "day")
    _upsert_summed(UsageDayTotal, ["space_id", "day"], by_day, figures)
    months = {month_of(day) for day in days}
    by_month = (
        in_spaces.filter(
            room_name__in={name for _, _, name in keys},
            day__gte=min(months),
            day__lt=next_month(max(months)),
        )
        .annotate(month=TruncMonth("day"))
        .order_by()
        .values("space_id", "month", "room_name")
    )
    _upsert_summed(UsageMonth, ["space_id", "month", "room_name"], by_month, figures)


def _upsert_summed(
    model: type[UsageDayTotal | UsageMonth], unique: list[str], groups: QuerySet[Any],
    figures: tuple[str, ...],
) -> None:
    """Write a totals level from grouped UsageDay rows in one statement (read and write).

    Every key the upkeep asks for has a UsageDay row (it was just upserted), so the groups
    cover them all; a group beyond them is recounted too, which is harmless.
    """
    every = (*SESSION_TOTALS, *BILLED_TOTALS)
    # A new row starts at zero for the other kind of figure, which this upkeep leaves alone.
    summed = groups.annotate(
        **{
            f"sum_{name}": (Round(Sum(name), 4) if name in MONEY else Sum(name))
            if name in figures
            else Value(0)
            for name in every
        },
        at=Value(timezone.now(), output_field=DateTimeField()),
    )
    select, params = summed.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in [*unique, *every, "updated_at"])
    written = [*figures, "updated_at"]
    updates = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in written)
    conflict = ", ".join(quote(name) for name in unique)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {select} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}",
            params,
        )


def _rebuild_totals_of_month(month: date) -> None:
    """Write a month's day totals and month totals afresh from its UsageDay rows."""
    figures = (*SESSION_TOTALS, *BILLED_TOTALS)
    days = UsageDay.objects.filter(day__gte=month, day__lt=next_month(month)).order_by()
    by_day = days.values("space_id", "day").annotate(**_sums(figures))
    by_room = days.values("space_id", "room_name").annotate(**_sums(figures))
    UsageDayTotal.objects.filter(day__gte=month, day__lt=next_month(month)).delete()
    UsageMonth.objects.filter(month=month).delete()
    totals = [
        UsageDayTotal(space_id=row["space_id"], day=row["day"], **_summed(row, figures))
        for row in cast(Any, by_day)
    ]
    rooms = [
        UsageMonth(
            space_id=row["space_id"], month=month, room_name=row["room_name"],
            **_summed(row, figures),
        )
        for row in cast(Any, by_room)
    ]
    UsageDayTotal.objects.bulk_create([t for t in totals if t.sessions or t.logs], batch_size=500)
    UsageMonth.objects.bulk_create([r for r in rooms if r.sessions or r.logs], batch_size=500)


def _rollup_months() -> Iterator[date]:
    """Every month from the first any level of the rollup holds to the last."""
    bounds = [
        UsageDay.objects.aggregate(a=Min("day"), b=Max("day")),
        UsageDayTotal.objects.aggregate(a=Min("day"), b=Max("day")),
        UsageMonth.objects.aggregate(a=Min("month"), b=Max("month")),
    ]
    firsts = [b["a"] for b in bounds if b["a"] is not None]
    if not firsts:
        return
    month, last = month_of(min(firsts)), month_of(max(b["b"] for b in bounds if b["b"]))
    while month <= last:
        yield month
        month = next_month(month)


@dataclass
class RebuildResult:
    """What a rebuild did."""

    batches: int = 0
    session_days: int = 0
    billed_days: int = 0
    rows: int = 0
    months: int = 0
    kept_before: date | None = None
    days: list[date] = field(default_factory=list)


def _on_days(pairs: set[tuple[int, date]]) -> Q:
    """Match the rollup rows of these (Space, day) pairs (none when there are none)."""
    match = Q(pk__in=[])
    for space in {space for space, _ in pairs}:
        match |= Q(space_id=space, day__in=[day for s, day in pairs if s == space])
    return match


def _day_batches(first: date, last: date, size: int) -> Iterator[tuple[date, date]]:
    day = first
    while day <= last:
        yield day, min(day + timedelta(size - 1), last)
        day += timedelta(size)


def rebuild_usage(*, batch_days: int = 7, keep_before: date | None = None) -> RebuildResult:
    """Recompute the rollup from the mirrored rows, `batch_days` days per transaction.

    Only days that still have mirrored rows are rewritten (session figures where sessions
    remain, billed figures where logs remain), and none before `keep_before`: days whose
    sessions retention removed keep the figures the rollup has for them. Then the day and
    month totals are summed afresh from the days, a month per transaction.
    """
    result = RebuildResult(kept_before=keep_before)
    _rebuild_days(result, batch_days, keep_before)
    for month in list(_rollup_months()):
        with transaction.atomic():
            _serialise(SESSION_LOCK)
            _serialise(BILLED_LOCK)
            _rebuild_totals_of_month(month)
        result.months += 1
    return result


def _rebuild_days(result: RebuildResult, batch_days: int, keep_before: date | None) -> None:
    bounds = [
        RoomSession.objects.aggregate(a=Min("start_time"), b=Max("start_time")),
        VideoLog.objects.aggregate(a=Min("started_at"), b=Max("started_at")),
        VideoLog.objects.filter(started_at__isnull=True).aggregate(
            a=Min("remote_created_at"), b=Max("remote_created_at")
        ),
    ]
    firsts = [utc_day(b["a"]) for b in bounds if b["a"] is not None]
    lasts = [utc_day(b["b"]) for b in bounds if b["b"] is not None]
    if not firsts:
        return
    first, last = min(d for d in firsts if d), max(d for d in lasts if d)
    if keep_before is not None:
        first = max(first, keep_before)
    for low, high in _day_batches(first, last, batch_days):
        start, end = day_start(low), day_start(high + timedelta(1))
        with transaction.atomic():
            _serialise(SESSION_LOCK)
            _serialise(BILLED_LOCK)
            sessions = _session_groups(
                RoomSession.objects.filter(start_time__gte=start, start_time__lt=end)
            )
            billed = _log_groups(_logs_between(None, start, end))
            # Each Space's days are rewritten on their own: a day one Space has sessions
            # for leaves another Space's figures of that day alone.
            session_days = {(space, day) for space, day, _ in sessions}
            billed_days = {(space, day) for space, day, _ in billed}
            in_days = UsageDay.objects.filter(day__gte=low, day__lte=high)
            in_days.filter(_on_days(session_days)).update(
                sessions=0, member_seconds=0, estimated_cost=ZERO, conference=None, room=None
            )
            in_days.filter(_on_days(billed_days)).update(logs=0, billed_cost=ZERO)
            _upsert([_session_row(k, row) for k, row in sorted(sessions.items())], SESSION_FIGURES)
            _upsert([_billed_row(k, row) for k, row in sorted(billed.items())], BILLED_FIGURES)
            in_days.filter(_on_days(session_days | billed_days), sessions=0, logs=0).delete()
        result.batches += 1
        result.session_days += len({day for _, day in session_days})
        result.billed_days += len({day for _, day in billed_days})
        result.rows += len(sessions.keys() | billed.keys())
        result.days.extend(sorted({day for _, day in session_days | billed_days}))
