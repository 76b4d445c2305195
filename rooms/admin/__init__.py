"""Django admin for the rooms app: one module per family of pages."""

from django.contrib import admin  # noqa: E402

from rooms.admin import (  # noqa: F401
    alerts,
    audit,
    conferences,
    logs,
    recordings,
    rooms,
    sessions,
    spaces,
    streams,
    sync,
)

admin.site.site_header = "Room portal"
admin.site.site_title = "Room portal"
admin.site.index_title = "SignalWire Video rooms"
# The portal has no public site, so admin's "View site" link would lead to a 404.
admin.site.site_url = None
