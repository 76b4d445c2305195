"""Usage figures per day and per room, read from the usage rollup.

Minutes are member minutes (the time every member spent in a session, which is what
SignalWire bills); the estimate is what SignalWire reported per session, the billed cost
what its video logs charged. Days are UTC days. Per day reads one row a day (UsageDayTotal);
per room reads one row per month and room (UsageMonth) for the whole months of the period
and the day rows (UsageDay) of the month it starts in, so a year costs about a dozen rows
per room, never a row per session or per day and room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connections
from django.db.models import QuerySet, Sum
from django.utils import timezone

from rooms.models import UsageDay, UsageDayTotal, UsageMonth
from rooms.models.usage import month_of, next_month

PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 30
TOP_ROOMS = 10
ZERO = Decimal("0")
CENT = Decimal("0.0001")
# A day whose billed cost and estimate differ by more than this share is marked.
DIFFERENCE_MARK = Decimal("0.01")


@dataclass(frozen=True)
class Usage:
    """One row of figures: a day or a room."""

    label: str
    sessions: int
    seconds: int
    cost: Decimal
    billed: Decimal = ZERO
    logs: int = 0

    @property
    def minutes(self) -> float:
        """Member minutes, to a tenth."""
        return round(self.seconds / 60, 1)

    @property
    def has_billed(self) -> bool:
        """Tell whether any video log has been mirrored for these figures."""
        return self.logs > 0

    @property
    def differs(self) -> bool:
        """Tell whether billed cost and estimate differ by more than 1% (once logs exist)."""
        if not self.has_billed:
            return False
        base = max(abs(self.cost), abs(self.billed))
        return base > 0 and abs(self.billed - self.cost) > base * DIFFERENCE_MARK


def utc_today() -> date:
    """Today's date in UTC, the rollup's days."""
    return timezone.now().astimezone(UTC).date()


def period_first_day(*, days: int, today: date | None = None) -> date:
    """The first day of the period of `days` days that ends today (UTC)."""
    return (today or utc_today()) - timedelta(days=days - 1)


FIGURES = ("sessions", "member_seconds", "estimated_cost", "billed_cost", "logs")


def _usage(label: str, row: Any) -> Usage:
    """A row of figures, in FIGURES' order."""
    n, seconds, cost, billed, logs = row
    return Usage(label, int(n), int(seconds), _cents(cost), _cents(billed), int(logs))


def usage_by_day(*, days: int, today: date | None = None) -> list[Usage]:
    """Every day of the period, oldest first, days without sessions included as zeros."""
    first = period_first_day(days=days, today=today)
    rows = UsageDayTotal.objects.filter(
        day__gte=first, day__lt=first + timedelta(days=days)
    ).values_list("day", *FIGURES)
    found = {row[0]: row[1:] for row in rows}
    empty = (0, 0, ZERO, ZERO, 0)
    return [
        _usage(day.isoformat(), found.get(day, empty))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


def usage_by_room(
    *, days: int, today: date | None = None, limit: int | None = TOP_ROOMS
) -> list[Usage]:
    """The rooms with the most member minutes in the period (and any later day), most first."""
    first = period_first_day(days=days, today=today)
    month, after = month_of(first), next_month(month_of(first))
    if first == month:
        parts = [_figures(UsageMonth.objects.filter(month__gte=month))]
    elif (first - month).days < (after - first).days:
        # Fewer days of that month before the period than in it: its month rows, less those.
        before = UsageDay.objects.filter(day__gte=month, day__lt=first)
        parts = [_figures(UsageMonth.objects.filter(month__gte=month)), _figures(before, -1)]
    else:
        within = UsageDay.objects.filter(day__gte=first, day__lt=after)
        parts = [_figures(UsageMonth.objects.filter(month__gte=after)), _figures(within)]
    both = parts[0].union(*parts[1:], all=True)
    inner, params = both.query.get_compiler(both.db).as_sql()
    # Django cannot group a union, so the sum over its parts is written out: the database
    # orders it (ties by name in its own collation, as before) and keeps the top rows.
    sums = ", ".join(f"SUM(sum_{name})" for name in FIGURES)
    sql = (
        f"SELECT room_name, {sums} FROM ({inner}) figures GROUP BY room_name "
        "HAVING SUM(sum_sessions) > 0 OR SUM(sum_logs) > 0 ORDER BY 3 DESC, room_name"
    )
    if limit is not None:
        sql += " LIMIT %s"
        params = (*params, limit)
    with connections[both.db].cursor() as cursor:
        cursor.execute(sql, params)
        return [_usage(row[0], row[1:]) for row in cursor.fetchall()]


def _figures(rows: QuerySet[Any], sign: int = 1) -> QuerySet[Any]:
    """Some rollup rows summed per room name (negated for -1), FIGURES' order, for a union."""
    sums = {f"sum_{name}": Sum(name) * sign for name in FIGURES}
    return rows.order_by().values("room_name").annotate(**sums).values_list("room_name", *sums)


def _cents(value: Decimal | float | int) -> Decimal:
    """A sum of costs at the API's precision (SQLite sums decimals as floats)."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return exact.quantize(CENT)


def usage_total(rows: list[Usage]) -> Usage:
    """The sum of some rows."""
    return Usage(
        "total",
        sum(r.sessions for r in rows),
        sum(r.seconds for r in rows),
        sum((r.cost for r in rows), ZERO),
        sum((r.billed for r in rows), ZERO),
        sum(r.logs for r in rows),
    )
