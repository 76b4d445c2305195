"""Django admin for the rooms app: one module per family of pages."""

from rooms.admin import audit, conferences, rooms, sync  # noqa: F401
