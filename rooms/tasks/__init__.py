"""Celery tasks of the rooms app; each module holds one family, all thin over services."""

from rooms.tasks import actions, activity, maintenance, push, recordings, sync  # noqa: F401
