"""The usage rollup: per UTC day and room name what the sessions and logs add up to, and totals.

Three levels, kept by the same upkeep: one row per day and room name (UsageDay), one per day
(UsageDayTotal) and one per month and room name (UsageMonth), so a year of usage reads a few
hundred day rows and a dozen rows per room instead of every day of every room.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import models

from rooms.models.conferences import Conference
from rooms.models.rooms import Room
from rooms.models.spaces import space_field


class UsageFigures(models.Model):
    """The figures every level of the rollup holds."""

    sessions = models.PositiveIntegerField(default=0)
    member_seconds = models.PositiveBigIntegerField("member time (seconds)", default=0)
    estimated_cost = models.DecimalField(
        "estimated cost (dollars)", max_digits=16, decimal_places=4, default=Decimal("0")
    )
    # What the video logs charged; `logs` tells a day with no logs yet from one billed $0.
    logs = models.PositiveIntegerField(default=0)
    billed_cost = models.DecimalField(
        "billed cost (dollars)", max_digits=16, decimal_places=4, default=Decimal("0")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def member_minutes(self) -> float:
        """Member minutes, to a tenth."""
        return round(self.member_seconds / 60, 1)


class UsageDay(UsageFigures):
    """One day's figures for one conference or room (or a room made on the fly, by name).

    The owner is the room name: SignalWire names a conference or room uniquely in a Space,
    and a room made on the fly by a token has nothing else. The conference or room it
    belongs to is kept beside it, when the portal has one.
    """

    space = space_field()
    day = models.DateField("day (UTC)")
    room_name = models.CharField(max_length=100)
    conference = models.ForeignKey(
        Conference, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    room = models.ForeignKey(
        Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-day", "room_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "room_name", "space"], name="rooms_usage_space_day_room"
            ),
        ]
        indexes = [
            # The month totals of some rooms are recounted from their days.
            models.Index(fields=["space", "room_name", "day"], name="rooms_usage_room_day"),
        ]

    def __str__(self) -> str:
        return f"{self.room_name} · {self.day:%Y-%m-%d}"


class UsageDayTotal(UsageFigures):
    """One day's figures over every room of a Space: the sum of that day's UsageDay rows."""

    space = space_field()
    day = models.DateField("day (UTC)")

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["day", "space"], name="rooms_usage_total_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d}"


class UsageMonth(UsageFigures):
    """One UTC month's figures for one room name of a Space: its UsageDay rows that month."""

    space = space_field()
    month = models.DateField("month (UTC, its first day)")
    room_name = models.CharField(max_length=100)

    class Meta:
        ordering = ["-month", "room_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["month", "room_name", "space"], name="rooms_usage_month_room"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_name} · {self.month:%Y-%m}"


def month_of(day: date) -> date:
    """The first day of a day's month, the key of the month totals."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after this one."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)
