"""System checks of staff accounts."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_second_factor_required(app_configs=None, **kwargs) -> list:
    """A deployed admin should ask every staff user for a second factor."""
    if settings.PORTAL_REQUIRE_OTP:
        return []
    return [
        Warning(
            "PORTAL_REQUIRE_OTP is off: staff can use the admin with a password alone.",
            hint="Unset PORTAL_REQUIRE_OTP (it defaults to on when DEBUG is off) or set it "
            "to true; each staff user then enrols an authenticator app at first log-in.",
            # The id it had when the check lived in rooms: deployments silence it by it.
            id="rooms.W001",
        )
    ]
