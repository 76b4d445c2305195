"""The usage page: minutes, sessions and cost per day and the top rooms, as charts, table, CSV.

Charts are pygal SVG drawn on the server and served as images from the portal itself, so
the page needs no JavaScript and no CDN and keeps the strict Content-Security-Policy.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import pygal  # type: ignore[import-untyped]
from csp.decorators import csp_replace
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from pygal.style import Style  # type: ignore[import-untyped]

from rooms.admin.scoping import request_spaces
from rooms.models import RoomSession
from rooms.selectors import usage

CHARTS = {
    "minutes": ("Member minutes per day", "minutes"),
    "sessions": ("Sessions per day", "sessions"),
    "cost": ("Cost per day ($): estimate and billed", "cost"),
    "rooms": ("Top rooms by member minutes", "minutes"),
}
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#333333",
    foreground_subtle="#888888",
    colors=("#417690", "#b0243b", "#1e7e34", "#b26a00"),
    font_family="sans-serif",
)


def _days(request: HttpRequest) -> int:
    """The period asked for: one of usage.PERIODS (7, 30, 90 or 365 days)."""
    try:
        days = int(request.GET.get("days", usage.DEFAULT_PERIOD))
    except ValueError:
        return usage.DEFAULT_PERIOD
    return days if days in usage.PERIODS else usage.DEFAULT_PERIOD


def _check(request: HttpRequest) -> None:
    if not request.user.has_perm("rooms.view_roomsession"):
        raise PermissionDenied


def usage_urls(model_admin: admin.ModelAdmin) -> list:
    """The usage page, its charts and its CSV, under the sessions' admin."""
    wrap = model_admin.admin_site.admin_view
    return [
        path("usage/", wrap(usage_view(model_admin)), name="rooms_usage"),
        path("usage/usage.csv", wrap(usage_csv_view), name="rooms_usage_csv"),
        path("usage/<str:chart>.svg", wrap(usage_chart_view), name="rooms_usage_chart"),
    ]


def usage_view(model_admin: admin.ModelAdmin) -> Any:
    """Build the usage page's view for an admin site."""

    def view(request: HttpRequest) -> HttpResponse:
        """Show the charts and the same figures as tables."""
        _check(request)
        days = _days(request)
        by_day = usage.usage_by_day(days=days, spaces=request_spaces(request))
        by_room = usage.usage_by_room(days=days, spaces=request_spaces(request))
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": RoomSession._meta,
            "title": f"Usage: the last {days} days",
            "days": days,
            "periods": usage.PERIODS,
            "by_day": list(reversed(by_day)),
            "by_room": by_room,
            "total": usage.usage_total(by_day),
            "charts": [
                {
                    "title": title,
                    "url": reverse("admin:rooms_usage_chart", args=[name]) + f"?days={days}",
                }
                for name, (title, _) in CHARTS.items()
            ],
            "csv_url": reverse("admin:rooms_usage_csv") + f"?days={days}",
        }
        return TemplateResponse(request, "admin/rooms/usage.html", context)

    return view


def usage_csv_view(request: HttpRequest) -> HttpResponse:
    """The per-day and per-room figures as CSV."""
    _check(request)
    days = _days(request)
    # Written to a buffer and handed over once: a response's write per row costs more than
    # the row (thousands of rooms in a year).
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "kind", "day_or_room", "sessions", "member_minutes", "cost_in_dollars",
            "billed_cost_in_dollars", "billed_differs_over_1pct",
        ]
    )
    for kind, rows in (
        ("day", usage.usage_by_day(days=days, spaces=request_spaces(request))),
        ("room", usage.usage_by_room(days=days, limit=None, spaces=request_spaces(request))),
    ):
        for row in rows:
            cells = [kind, row.label, row.sessions, row.minutes, row.cost, *_billed(row)]
            writer.writerow(_safe_row(cells))
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{days}-days.csv"'
    return response


def _billed(row: usage.Usage) -> list[Any]:
    """The billed cost and its mark, blank while no video log has arrived for the row."""
    if not row.has_billed:
        return ["", ""]
    return [row.billed, "yes" if row.differs else "no"]


# A text cell starting with one of these is read as a formula by some spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe_row(cells: list[Any]) -> list[Any]:
    """Keep a spreadsheet from reading any text cell (a room name) as a formula."""
    return [_safe_cell(c) if isinstance(c, str) else c for c in cells]


def _safe_cell(value: str) -> str:
    """Prefix a text cell that a spreadsheet would read as a formula with a quote."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


@csp_replace({"style-src": ["'unsafe-inline'"], "script-src": ["'none'"]})  # type: ignore[arg-type]
def usage_chart_view(request: HttpRequest, chart: str) -> HttpResponse:
    """One chart as an SVG image (its own styles inline, no scripts)."""
    _check(request)
    if chart not in CHARTS:
        raise Http404("No such chart.")
    days = _days(request)
    title, field = CHARTS[chart]
    if chart == "rooms":
        rows = usage.usage_by_room(days=days, spaces=request_spaces(request))
        drawing = pygal.HorizontalBar(**_options(title))
        for row in reversed(rows):
            drawing.add(row.label, [float(row.minutes)])
        drawing.show_legend = True
    else:
        rows = usage.usage_by_day(days=days, spaces=request_spaces(request))
        drawing = (
            pygal.Bar(**_options(title))
            if chart == "sessions"
            else pygal.Line(**_options(title), fill=True, show_dots=days <= 30)
        )
        drawing.x_labels = [row.label[5:] for row in rows]
        drawing.x_labels_major_every = 7
        drawing.show_minor_x_labels = False
        drawing.add(title, [float(getattr(row, field)) for row in rows])
        if chart == "cost":
            drawing.title = title
            drawing.show_legend = True
            drawing.add("Billed", [float(row.billed) if row.has_billed else None for row in rows])
    response = HttpResponse(_svg(drawing), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=60"
    return response


def _options(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "style": STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "show_legend": False,
        "width": 900,
        "height": 320,
        "x_label_rotation": 0,
        "print_values": False,
    }


def _svg(drawing: Any) -> bytes:
    """Render without pygal's script tag: the SVG is an image and runs nothing."""
    tree = drawing.render_tree()
    tree.set("width", str(drawing.config.width))
    tree.set("height", str(drawing.config.height))
    for parent in tree.iter():
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return ET.tostring(tree, encoding="utf-8")
