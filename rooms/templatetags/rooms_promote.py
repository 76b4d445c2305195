"""Template filters of the compare and promote pages."""

from __future__ import annotations

from typing import Any

from django import template

from rooms.admin.audit_display import display_value

register = template.Library()


@register.filter
def setting_value(value: Any) -> str:
    """Show one setting for people: not set as a dash, yes/no, JSON as JSON."""
    return display_value(value, limit=200)
