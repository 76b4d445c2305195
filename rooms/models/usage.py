"""The daily usage rollup: per UTC day and per room name, what the sessions and logs add up to."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from rooms.models.conferences import Conference
from rooms.models.rooms import Room
from rooms.models.spaces import space_field


class UsageDay(models.Model):
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
        ordering = ["-day", "room_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["space", "day", "room_name"], name="rooms_usage_space_day_room"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_name} · {self.day:%Y-%m-%d}"

    @property
    def member_minutes(self) -> float:
        """Member minutes, to a tenth."""
        return round(self.member_seconds / 60, 1)
