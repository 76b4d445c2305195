"""Celery tasks: sync."""
