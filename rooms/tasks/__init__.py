"""Celery tasks of the rooms app; each module holds one family, all thin over services."""

from rooms.tasks import (  # noqa: F401
    actions,
    alerts,
    logs,
    maintenance,
    push,
    recordings,
    sessions,
    sync,
)
