"""The staff app: log-in lockout, second factor and their admin pages."""

from django.apps import AppConfig


class StaffConfig(AppConfig):
    """Register the staff accounts' system checks and lockout alert when Django starts."""

    name = "staff"
    verbose_name = "Staff accounts"

    def ready(self) -> None:
        from staff import checks, lockout  # noqa: F401
