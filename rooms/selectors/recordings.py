"""Reads admin and the retention command show about recordings: totals, sizes, ages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, FloatField, QuerySet, Sum
from django.db.models.functions import Cast, Coalesce

from rooms.models import Recording


def recording_totals(queryset: QuerySet[Recording]) -> dict[str, Any]:
    """Count, size and cost of a set of recordings, in one aggregate query."""
    # Summed as floating point: a sum of 64-bit sizes can pass what a 64-bit integer holds
    # (SQLite's SUM then fails), and a total shown in TiB needs no byte-exact figure.
    totals = queryset.order_by().aggregate(
        count=Count("pk"),
        size=Coalesce(Sum(Cast("size_in_bytes", FloatField())), 0.0),
        cost=Coalesce(Sum("cost_in_dollars"), Decimal("0")),
    )
    return {"count": totals["count"], "size": int(totals["size"]), "cost": totals["cost"]}


def size_text(size: int | None) -> str:
    """Say a size in bytes the way people read it (binary units)."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def ended_at(recording: Recording) -> datetime | None:
    """When a recording ended, as retention measures its age: finished, else created."""
    return recording.finished_at or recording.remote_created_at or recording.started_at
