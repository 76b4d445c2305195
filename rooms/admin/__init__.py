"""Django admin for the rooms app: one module per family of pages."""

from django.contrib import admin  # noqa: E402

from rooms.admin import accounts, audit, conferences, recordings, rooms, sessions, sync  # noqa: F401

admin.site.site_header = "Room portal"
admin.site.site_title = "Room portal"
admin.site.index_title = "SignalWire Video rooms"
