"""Helpers the real-browser admin tests share: users, logging in, admin URLs, waiting."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_otp.oath import TOTP
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect

PASSWORD = "pw-for-browser-tests-91"

# Added to every page before its own scripts: hands each CSP violation to Python.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__portalCspViolation({
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
    page: document.location.href,
  });
}, true);
"""


class CspWatch:
    """Collect the Content-Security-Policy violations of every page of a browser context.

    Two witnesses: the page's securitypolicyviolation events and Chromium's console
    messages about a refused resource (which also cover violations no event reports).
    """

    def __init__(self, context: BrowserContext) -> None:
        self.violations: list[dict] = []
        context.expose_function("__portalCspViolation", self._event)
        context.add_init_script(_CSP_LISTENER)
        context.on("console", self._console)

    def _event(self, violation: dict) -> None:
        """Keep a violation a page reported."""
        self.violations.append(violation)

    def _console(self, message: ConsoleMessage) -> None:
        """Keep console messages in which Chromium reports a CSP refusal."""
        if "Content Security Policy" in message.text:
            self.violations.append({"console": message.text, "page": message.location})

    def flush(self, page: Page) -> None:
        """Let the page deliver violation events still queued."""
        if not page.is_closed():
            page.evaluate("() => new Promise((done) => setTimeout(done, 0))")

    def take(self, page: Page) -> list[dict]:
        """Return the violations recorded so far and forget them."""
        self.flush(page)
        taken, self.violations[:] = list(self.violations), []
        return taken

    def assert_none(self, page: Page) -> None:
        """Fail if any page broke the policy."""
        violations = self.take(page)
        assert not violations, f"Content-Security-Policy violations: {violations}"


def totp_code(device: Any) -> str:
    """Return a code the TOTP device accepts now, computed from its key like an app would."""
    device.refresh_from_db()
    now = TOTP(device.bin_key, device.step, device.t0, device.digits).t()
    # A device accepts each time step once: after a code of this step, use the next one.
    step = max(now, device.last_t + 1)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, drift=step - now)
    return f"{totp.token():0{device.digits}d}"


def make_superuser(username: str = "boss") -> Any:
    """Create a staff superuser with the known test password."""
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)


def make_staff(username: str, *perms: str) -> Any:
    """Create a staff user holding only the given "app.codename" permissions."""
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def login(page: Page, base_url: str, username: str) -> None:
    """Log in through admin's login form and land on the admin index."""
    page.goto(f"{base_url}{reverse('admin:login')}")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(username)


def admin_url(base_url: str, name: str, *args: Any) -> str:
    """Return the absolute URL of a named admin view on the live server."""
    return f"{base_url}{reverse(f'admin:{name}', args=args)}"


def puts(space: Any, remote_id: str) -> list[dict]:
    """Return the PUT requests the sandbox received for one conference."""
    path = f"/api/video/conferences/{remote_id}"
    return [r for r in space.requests if r["method"] == "PUT" and r["path"] == path]
