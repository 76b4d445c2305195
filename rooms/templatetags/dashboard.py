"""The admin index's operator dashboard: its figures, read where the template needs them."""

from __future__ import annotations

from django import template

from rooms.selectors import dashboard
from rooms.services import alerts

register = template.Library()


@register.simple_tag
def dashboard_figures() -> dict:
    """Live sessions now, rows waiting or failed, the last sync of each kind, minutes today."""
    return dashboard.dashboard_figures()


@register.simple_tag
def open_alerts() -> list:
    """The open alerts, newest first, for the "Needs attention" card."""
    alerts.check_heartbeats()  # a dead worker shows here even though its own check cannot run
    return alerts.open_alerts()[:20]
