"""Staff account pages under the admin: enrol and verify the second factor."""

from django.contrib import admin
from django.urls import path

from staff import second_factor

urlpatterns = [
    path(
        "two-factor/",
        admin.site.admin_view(second_factor.otp_enrol),
        name=second_factor.ENROL_URL_NAME,
    ),
    path(
        "two-factor/verify/",
        admin.site.admin_view(second_factor.otp_verify),
        name=second_factor.VERIFY_URL_NAME,
    ),
]
