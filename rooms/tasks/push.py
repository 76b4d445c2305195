"""Celery tasks: push."""
