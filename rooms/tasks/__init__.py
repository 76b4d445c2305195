"""Celery tasks of the rooms app; each module holds one family, all thin over services."""

from rooms.tasks import actions, maintenance, push, sync  # noqa: F401
