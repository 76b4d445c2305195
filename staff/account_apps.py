"""App configs that give the account apps (django-axes, django-otp's TOTP) plain admin names."""

from axes.apps import AppConfig as AxesAppConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TOTPAppConfig


class LoginLockoutsConfig(AxesAppConfig):
    """django-axes, shown in admin as the staff log-in records."""

    verbose_name = "Staff log-ins and lockouts"


class TwoFactorConfig(TOTPAppConfig):
    """django-otp's TOTP devices, shown in admin as two-factor devices."""

    verbose_name = "Two-factor authentication"
