"""Staff log-in lockout (django-axes): the client's address and the lockout page."""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rooms.services import alerts


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address: REMOTE_ADDR, or the one the trusted proxies saw."""
    proxies = settings.PORTAL_TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        # Each trusted proxy appends the address it received from: read from the right,
        # so a client cannot choose its address by sending the header itself.
        if len(hops) >= proxies and _is_address(hops[-proxies]):
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def _is_address(text: str) -> bool:
    """Tell whether text is a plain IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def lockout_message() -> str:
    """Tell a locked-out person what happened and what they can do."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        "Too many failed log-in attempts: this account, or this address, is locked out "
        f"for {minutes} minute{'s' if minutes != 1 else ''} after the last attempt. "
        "Try again later, or ask a superuser to clear the lockout."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """Answer a locked-out login with the login page and the lockout message (429)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "form": AdminAuthenticationForm(request),
        "next": next_url,
        "username": request.user.get_username() if request.user.is_authenticated else "",
        "lockout_message": lockout_message(),
    }
    return render(request, "admin/login.html", context, status=429)


@receiver(user_locked_out, dispatch_uid="staff.lockout.alert_staff")
def alert_staff(sender: Any = None, **kwargs: Any) -> None:
    """A lockout is an alert: ask for the check that opens it."""
    alerts.soon()
