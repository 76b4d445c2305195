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

from rooms.models import Space, UsageDay, UsageDayTotal, UsageMonth
from rooms.models.usage import month_of, next_month
from rooms.selectors.spaces import Spaces, in_spaces

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


def usage_by_day(*, days: int, today: date | None = None, spaces: Spaces = None) -> list[Usage]:
    """Every day of the period, oldest first, days without sessions included as zeros."""
    first = period_first_day(days=days, today=today)
    rows = (
        in_spaces(
            UsageDayTotal.objects.filter(day__gte=first, day__lt=first + timedelta(days=days)),
            spaces,
        )
        .order_by()
        .values("day")
        .annotate(**{f"sum_{name}": Sum(name) for name in FIGURES})
        .values_list("day", *(f"sum_{name}" for name in FIGURES))
    )
    found = {row[0]: row[1:] for row in rows}
    empty = (0, 0, ZERO, ZERO, 0)
    return [
        _usage(day.isoformat(), found.get(day, empty))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


def usage_by_room(
    *, days: int, today: date | None = None, limit: int | None = TOP_ROOMS, spaces: Spaces = None
) -> list[Usage]:
    """The rooms with the most member minutes in the period (and any later day), most first."""
    first = period_first_day(days=days, today=today)
    month, after = month_of(first), next_month(month_of(first))
    months, days_of = (
        in_spaces(UsageMonth.objects.all(), spaces), in_spaces(UsageDay.objects.all(), spaces)
    )
    if first == month:
        parts = [_figures(months.filter(month__gte=month))]
    elif (first - month).days < (after - first).days:
        # Fewer days of that month before the period than in it: its month rows, less those.
        before = days_of.filter(day__gte=month, day__lt=first)
        parts = [_figures(months.filter(month__gte=month)), _figures(before, -1)]
    else:
        within = days_of.filter(day__gte=first, day__lt=after)
        parts = [_figures(months.filter(month__gte=after)), _figures(within)]
    both = parts[0].union(*parts[1:], all=True)
    inner, params = both.query.get_compiler(both.db).as_sql()
    # Django cannot group a union, so the sum over its parts is written out: the database
    # orders it (ties by name in its own collation, as before) and keeps the top rows. A
    # room name is one room per Space: rooms of one name in two Spaces stay apart.
    sums = ", ".join(f"SUM(sum_{name})" for name in FIGURES)
    sql = (
        f"SELECT space_id, room_name, {sums} FROM ({inner}) figures "
        "GROUP BY space_id, room_name "
        "HAVING SUM(sum_sessions) > 0 OR SUM(sum_logs) > 0 ORDER BY 4 DESC, room_name, space_id"
    )
    if limit is not None:
        sql += " LIMIT %s"
        params = (*params, limit)
    with connections[both.db].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    named = _space_names({row[0] for row in found}, spaces)
    return [_usage(_room_label(row[1], named.get(row[0])), row[2:]) for row in found]


def _space_names(ids: set[int], spaces: Spaces) -> dict[int, str]:
    """The names of the Spaces rows belong to, when the reader may see more than one Space."""
    visible = in_spaces(Space.objects.all(), spaces, field="pk")
    if visible.count() < 2:
        return {}
    return dict(Space.objects.filter(pk__in=ids).values_list("pk", "name"))


def _room_label(room_name: str, space_name: str | None) -> str:
    """A room's name, with its Space's when the reader sees several Spaces."""
    return f"{room_name} ({space_name})" if space_name else room_name


def _figures(rows: QuerySet[Any], sign: int = 1) -> QuerySet[Any]:
    """Some rollup rows summed per Space and room name (negated for -1), for a union."""
    sums = {f"sum_{name}": Sum(name) * sign for name in FIGURES}
    return (
        rows.order_by().values("space_id", "room_name").annotate(**sums)
        .values_list("space_id", "room_name", *sums)
    )


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
