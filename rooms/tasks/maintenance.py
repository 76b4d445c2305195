"""Celery tasks: maintenance."""

from __future__ import annotations

import logging

from celery import shared_task

from rooms.audit import delete_expired_entries

logger = logging.getLogger("rooms.tasks.maintenance")


@shared_task(name="rooms.tasks.audit_cleanup", ignore_result=True)
def audit_cleanup() -> int:
    """Delete audit rows past AUDIT_RETENTION_DAYS (0 keeps them forever); return the count."""
    deleted = delete_expired_entries()
    if deleted:
        logger.info("audit clean-up deleted %d entries", deleted)
    return deleted
