"""URL routes: the admin (at a configurable path), staff account pages and a health endpoint."""

from django.conf import settings
from django.contrib import admin
from django.urls import path

from rooms import accounts
from rooms.views import health

urlpatterns = [
    path("health/", health, name="health"),
    path(
        f"{settings.ADMIN_URL}account/two-factor/",
        admin.site.admin_view(accounts.otp_enrol),
        name=accounts.ENROL_URL_NAME,
    ),
    path(
        f"{settings.ADMIN_URL}account/two-factor/verify/",
        admin.site.admin_view(accounts.otp_verify),
        name=accounts.VERIFY_URL_NAME,
    ),
    path(settings.ADMIN_URL, admin.site.urls),
]
