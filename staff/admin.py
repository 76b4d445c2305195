"""Admin for staff accounts: login lockouts and log-ins (django-axes), TOTP devices."""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice


class SuperusersOnly:
    """Let only active superusers see these rows, and delete (clear) them; nobody edits."""

    def _superuser(self, request: HttpRequest) -> bool:
        """Tell whether the request comes from an active superuser."""
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Show the section to superusers only."""
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Let superusers read the rows."""
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Let superusers clear rows."""
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are made by logins and enrolment, never by hand."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are read-only."""
        return False


def _cooloff_start() -> Any:
    """Return the time before which failures no longer count."""
    return timezone.now() - settings.AXES_COOLOFF_TIME


class LockedOutFilter(admin.SimpleListFilter):
    """Filter attempts by whether they lock their account or address out right now."""

    title = "locked out now"
    parameter_name = "locked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer yes and no."""
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the attempts that are (or are not) a lockout in force."""
        locked = {
            "failures_since_start__gte": settings.AXES_FAILURE_LIMIT,
            "attempt_time__gte": _cooloff_start(),
        }
        if self.value() == "yes":
            return queryset.filter(**locked)
        if self.value() == "no":
            return queryset.exclude(**locked)
        return queryset


@admin.register(AccessAttempt)
class LoginFailureAdmin(SuperusersOnly, AccessAttemptAdmin):
    """Failed logins per account, address and browser; delete one to clear its lockout."""

    list_display = [
        "attempt_time",
        "username",
        "ip_address",
        "user_agent",
        "failures_since_start",
        "lockout",
    ]
    list_filter = [LockedOutFilter, "attempt_time"]
    search_fields = ["ip_address", "username"]
    # What was posted is kept out of the page: it is an attacker's input, never useful.
    fieldsets = (
        (None, {"fields": ("username", "ip_address", "failures_since_start", "attempt_time")}),
        ("Client", {"fields": ("user_agent", "http_accept", "path_info")}),
    )
    actions = ["clear_lockouts"]

    @admin.display(description="lockout")
    def lockout(self, obj: AccessAttempt) -> str:
        """Say whether this row locks its account or address out now, and until when."""
        limit = settings.AXES_FAILURE_LIMIT
        if obj.failures_since_start < limit:
            left = limit - obj.failures_since_start
            return f"{left} attempt{'s' if left != 1 else ''} left"
        until = obj.attempt_time + settings.AXES_COOLOFF_TIME
        if until <= timezone.now():
            return "Expired"
        return f"Locked out until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}"

    @admin.action(description="Clear selected lockouts (they can log in again)")
    def clear_lockouts(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Delete the selected failure records, which lifts their lockouts at once."""
        count, _ = queryset.delete()
        self.message_user(request, f"Cleared {count} failure record(s).", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict:
        """Offer only the clear action (a plain delete does the same with a detour)."""
        actions = super().get_actions(request)
        actions.pop("cleanup_expired_attempts", None)
        return actions


@admin.register(AccessLog)
class StaffLoginAdmin(SuperusersOnly, AccessLogAdmin):
    """Successful logins and logouts, for superusers."""

    actions: list = []


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(TOTPDevice)
class TwoFactorDeviceAdmin(SuperusersOnly, admin.ModelAdmin):
    """Staff authenticator apps; deleting one lets its user enrol again (its key never shows)."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    readonly_fields = (
        "user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count"
    )
    fields = readonly_fields
