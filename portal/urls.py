"""URL routes: the admin (at a configurable path), staff account pages and a health endpoint."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from rooms.metrics import metrics
from rooms.views import health

urlpatterns = [
    path("health/", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path(f"{settings.ADMIN_URL}account/", include("staff.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
]
