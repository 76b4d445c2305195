"""Usage figures per day and per room, read from the daily rollup (UsageDay).

Minutes are member minutes (the time every member spent in a session, which is what
SignalWire bills); the estimate is what SignalWire reported per session, the billed cost
what its video logs charged. Days are UTC days. Each figure is one grouped query over the
rollup, whose size grows with days and rooms, never with sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from rooms.models import UsageDay
from rooms.selectors.spaces import Spaces, in_spaces

PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 30
TOP_ROOMS = 10
ZERO = Decimal("0")
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


def _totals() -> dict[str, Any]:
    return {
        "n": Coalesce(Sum("sessions"), 0),
        "seconds": Coalesce(Sum("member_seconds"), 0),
        "cost": Coalesce(Sum("estimated_cost"), ZERO),
        "billed": Coalesce(Sum("billed_cost"), ZERO),
        "logs": Coalesce(Sum("logs"), 0),
    }


def _usage(label: str, row: dict[str, Any]) -> Usage:
    return Usage(
        label, row["n"], row["seconds"], _cents(row["cost"]), _cents(row["billed"]), row["logs"]
    )


def usage_by_day(*, days: int, today: date | None = None, spaces: Spaces = None) -> list[Usage]:
    """Every day of the period, oldest first, days without sessions included as zeros."""
    first = period_first_day(days=days, today=today)
    days_of = in_spaces(UsageDay.objects.filter(day__gte=first), spaces)
    rows = days_of.order_by().values("day").annotate(**_totals())
    found: dict[date, dict[str, Any]] = {row["day"]: row for row in cast(Any, rows)}
    empty = {"n": 0, "seconds": 0, "cost": ZERO, "billed": ZERO, "logs": 0}
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        result.append(_usage(day.isoformat(), found.get(day, empty)))
    return result


def usage_by_room(
    *, days: int, today: date | None = None, limit: int | None = TOP_ROOMS, spaces: Spaces = None
) -> list[Usage]:
    """The rooms with the most member minutes in the period, most first."""
    first = period_first_day(days=days, today=today)
    rows: Any = (
        in_spaces(UsageDay.objects.filter(day__gte=first), spaces)
        .order_by()
        .values("room_name")
        .annotate(**_totals())
        .filter(Q(n__gt=0) | Q(logs__gt=0))
        .order_by(F("seconds").desc(), "room_name")
    )
    if limit is not None:
        rows = rows[:limit]
    return [_usage(row["room_name"], row) for row in cast(list[dict[str, Any]], list(rows))]


def _cents(value: Decimal | float | int) -> Decimal:
    """A sum of costs at the API's precision (SQLite sums decimals as floats)."""
    return Decimal(str(value)).quantize(Decimal("0.0001"))


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
