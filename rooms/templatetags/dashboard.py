"""The admin index's operator dashboard: its figures, read where the template needs them."""

from __future__ import annotations

from typing import Any

from django import template

from rooms.admin.scoping import request_spaces
from rooms.selectors import dashboard
from rooms.services import alerts

register = template.Library()


@register.simple_tag(takes_context=True)
def dashboard_figures(context: dict[str, Any]) -> dict:
    """Live sessions now, rows waiting or failed, the last sync of each kind, minutes today."""
    return dashboard.dashboard_figures(spaces=request_spaces(context["request"]))


@register.simple_tag(takes_context=True)
def open_alerts(context: dict[str, Any]) -> list:
    """The open alerts of the viewer's Spaces and the portal-wide ones, newest first."""
    alerts.check_heartbeats()  # a dead worker shows here even though its own check cannot run
    spaces = request_spaces(context["request"])
    ids = None if spaces is None else {space.pk for space in spaces}
    shown = [
        alert for alert in alerts.open_alerts()
        if ids is None or alert.space_id is None or alert.space_id in ids
    ]
    return shown[:20]
