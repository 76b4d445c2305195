"""Staff accounts' second factor (TOTP, django-otp): the guard middleware, enrol and verify."""

from __future__ import annotations

from base64 import b32encode
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp import verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

ENROL_URL_NAME = "portal_otp_enrol"
VERIFY_URL_NAME = "portal_otp_verify"
DEVICE_NAME = "Authenticator app"


def confirmed_device(user: Any) -> TOTPDevice | None:
    """Return the user's confirmed TOTP device, if they enrolled one."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def _safe_next(request: HttpRequest) -> str:
    """Return the requested next page if it is on this site, else the admin index."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _with_next(url: str, next_url: str) -> str:
    """Append ?next= to url."""
    return f"{url}?{urlencode({'next': next_url})}"


class SecondFactorMiddleware:
    """Send unverified staff to the code page, or to enrolment when a factor is required.

    Goes after django-otp's OTPMiddleware. Staff who enrolled a device always enter a
    code once per session; with PORTAL_REQUIRE_OTP on, staff without one enrol first.
    Only admin pages are guarded; the enrolment, code and logout pages stay reachable.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self._redirect(request) or self.get_response(request)

    @staticmethod
    def _redirect(request: HttpRequest) -> HttpResponse | None:
        """Return the redirect an unverified staff user needs, or None."""
        prefix = "/" + settings.ADMIN_URL.lstrip("/")
        if not request.path_info.startswith(prefix):
            return None
        user = getattr(request, "user", None)
        if user is None or not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        if user.is_verified():
            return None
        try:
            enrol, verify = reverse(ENROL_URL_NAME), reverse(VERIFY_URL_NAME)
            exempt = {enrol, verify, reverse("admin:logout"), reverse("admin:login")}
        except NoReverseMatch:  # an admin mounted without the portal's account pages
            return None
        if request.path in exempt:
            return None
        if confirmed_device(user) is not None:
            return HttpResponseRedirect(_with_next(verify, request.get_full_path()))
        if settings.PORTAL_REQUIRE_OTP:
            return HttpResponseRedirect(_with_next(enrol, request.get_full_path()))
        return None


class CodeForm(forms.Form):
    """The six-digit code an authenticator app shows."""

    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code from your authenticator app",
        error_messages={"invalid": "Enter the six digits your authenticator app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        """Drop the spaces some apps show inside the code."""
        return self.cleaned_data["code"].strip()


def _throttle_error(device: TOTPDevice) -> str | None:
    """Return why the device refuses codes for now, if it does."""
    allowed, _ = device.verify_is_allowed()
    if allowed:
        return None
    return "Too many wrong codes in a row: wait a few seconds, then enter the current code."


def _check_code(form: CodeForm, device: TOTPDevice) -> bool:
    """Verify the form's code against the device (throttled); put any error on the form."""
    if not form.is_valid():
        return False
    error = _throttle_error(device)
    if error is None and verify_token(device.user, device.persistent_id, form.cleaned_data["code"]):
        return True
    form.add_error("code", error or "That code is not right. Check the app and try again.")
    return False


def _qr_svg(uri: str) -> str:
    """Render a provisioning URI as an inline SVG QR code (no inline style or script)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def otp_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol (or replace) the user's authenticator app: show a new key once, then confirm."""
    user: Any = request.user  # django-otp's middleware adds is_verified()
    current = confirmed_device(user)
    if current is not None and not user.is_verified():
        return redirect(_with_next(reverse(VERIFY_URL_NAME), _safe_next(request)))
    pending = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if request.method == "POST" and pending is not None:
        form = CodeForm(request.POST)
        if _check_code(form, pending):
            with transaction.atomic():
                TOTPDevice.objects.filter(user=user).exclude(pk=pending.pk).delete()
                pending.confirmed = True
                pending.save(update_fields=["confirmed"])
            request.session.cycle_key()
            otp_login(request, pending)
            messages.success(
                request, "Two-factor authentication is on: log-ins now ask for a code."
            )
            return redirect(_safe_next(request))
        # A wrong code keeps the same key on the page, so the person can try again.
        return _render_enrol(request, form, pending, current)
    if request.method == "POST":
        messages.error(request, "That enrolment had expired: scan the new code below.")
    # Every visit makes a fresh key: a key shown once is never shown again.
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    pending = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return _render_enrol(request, CodeForm(), pending, current)


def _render_enrol(
    request: HttpRequest, form: CodeForm, pending: TOTPDevice, current: TOTPDevice | None
) -> HttpResponse:
    """Render the enrolment page for one pending device."""
    uri = pending.config_url
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor authentication",
        "form": form,
        "current": current,
        "required": settings.PORTAL_REQUIRE_OTP,
        "provisioning_uri": uri,
        "secret": b32encode(pending.bin_key).decode(),
        "qr_svg": mark_safe(_qr_svg(uri)),  # SVG markup qrcode made from our URI
        "next": _safe_next(request),
    }
    # admin_view marks the page never-cache: the key is not kept by the browser either.
    return render(request, "staff/otp_enrol.html", context)


def otp_verify(request: HttpRequest) -> HttpResponse:
    """Ask a staff user who enrolled a device for its current code."""
    user: Any = request.user  # django-otp's middleware adds is_verified()
    device = confirmed_device(user)
    if device is None:
        return redirect(_with_next(reverse(ENROL_URL_NAME), _safe_next(request)))
    if user.is_verified():
        return redirect(_safe_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and _check_code(form, device):
        request.session.cycle_key()
        otp_login(request, device)
        return redirect(_safe_next(request))
    context = {
        **admin.site.each_context(request),
        "title": "Enter your code",
        "form": form,
        "next": _safe_next(request),
    }
    return render(request, "staff/otp_verify.html", context)
