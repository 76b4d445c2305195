"""The room portal project: settings, URLs and the Celery app."""

from portal.celery import app as celery_app

__all__ = ("celery_app",)
__version__ = "0.1.0"
