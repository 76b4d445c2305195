"""Usage figures from the mirrored room sessions: minutes, sessions and cost per day and room.

Minutes are member minutes (the time every member spent in a session, which is what
SignalWire bills); cost is what SignalWire reported per session. Each figure is one
grouped query, whatever the number of sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from rooms.models import RoomSession

PERIODS = (30, 90)
TOP_ROOMS = 10
ZERO = Decimal("0")


@dataclass(frozen=True)
class Usage:
    """One row of figures: a day or a room."""

    label: str
    sessions: int
    seconds: int
    cost: Decimal

    @property
    def minutes(self) -> float:
        """Member minutes, to a tenth."""
        return round(self.seconds / 60, 1)


def period_start(*, days: int, today: date | None = None) -> datetime:
    """The first moment of the period of `days` days that ends today (local time)."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, time.min))


def _totals() -> dict:
    return {
        "sessions": Count("id"),
        "seconds": Coalesce(Sum("member_seconds"), 0),
        "cost": Coalesce(Sum("cost_in_dollars"), ZERO),
    }


def usage_by_day(*, days: int, today: date | None = None) -> list[Usage]:
    """Every day of the period, oldest first, days without sessions included as zeros."""
    today = today or timezone.localdate()
    start = period_start(days=days, today=today)
    rows = (
        RoomSession.objects.filter(start_time__gte=start)
        .annotate(day=TruncDate("start_time"))
        .order_by()
        .values("day")
        .annotate(**_totals())
    )
    found: dict[date, dict[str, Any]] = {row["day"]: row for row in cast(Any, rows)}
    result = []
    for offset in range(days):
        day = start.date() + timedelta(days=offset)
        row = found.get(day, {"sessions": 0, "seconds": 0, "cost": ZERO})
        result.append(Usage(day.isoformat(), row["sessions"], row["seconds"], _cents(row["cost"])))
    return result


def usage_by_room(
    *, days: int, today: date | None = None, limit: int | None = TOP_ROOMS
) -> list[Usage]:
    """The rooms with the most member minutes in the period, most first."""
    start = period_start(days=days, today=today)
    rows: Any = (
        RoomSession.objects.filter(start_time__gte=start)
        .order_by()
        .values("room_name")
        .annotate(**_totals())
        .order_by(F("seconds").desc(), "room_name")
    )
    if limit is not None:
        rows = rows[:limit]
    return [
        Usage(row["room_name"], row["sessions"], row["seconds"], _cents(row["cost"]))
        for row in cast(list[dict[str, Any]], list(rows))
    ]


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
    )
