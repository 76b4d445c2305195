"""Search and totals of the activity lists (sessions, recordings) that stay on indexes.

Both tables grow by thousands of rows a day. A substring search of their room names, or
totals of every row a list shows, would read all of them on every page; here a name is
looked up among the conferences and rooms (a few thousand rows), and their sessions or
recordings through the room-name index, and totals are summed only over a selection small
enough to count.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from rooms.models import Conference, Room
from rooms.selectors import recordings

# Conference and room names a search looks up the activity of (more: refine the term).
SEARCH_NAMES = 200
NAME_SEARCH_HELP = (
    "Search by part of a conference's or room's name, a whole room name (also of rooms "
    "made on the fly), or a whole SignalWire ID."
)


def matching_names(term: str) -> list[str]:
    """The names of conferences and rooms whose name or display name contains the term."""
    names: list[str] = []
    for model in (Conference, Room):
        named = model.objects.filter(Q(name__icontains=term) | Q(display_name__icontains=term))
        names += named.order_by("name").values_list("name", flat=True)[:SEARCH_NAMES]
    return names[:SEARCH_NAMES]


def search_by_room_name(queryset: QuerySet, term: str, *id_fields: str) -> QuerySet:
    """Rows of the rooms named like the term, or whose SignalWire ids equal it."""
    term = term.strip()
    if not term:
        return queryset
    match = Q(room_name__in=[term, *matching_names(term)])
    for field in id_fields:
        match |= Q(**{field: term})
    return queryset.filter(match)


def bounded_totals(queryset: QuerySet, paginator: Any) -> dict[str, Any]:
    """Count, size and cost of the selected recordings, or only "more than" past the cap.

    The list's paginator has counted them, stopping at its cap: the sums are read only
    when that count is exact.
    """
    if getattr(paginator, "is_capped", False):
        return {"capped": True, "cap": paginator.cap_label}
    totals = recordings.recording_totals(queryset)
    totals["size_text"] = recordings.size_text(totals["size"])
    return totals
