"""Helpers the real-browser admin tests share: users, logging in, admin URLs, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from playwright.sync_api import Page, expect

PASSWORD = "pw-for-browser-tests-91"


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


def wait_until(check: Callable[[], Any], *, timeout: float = 20.0, step: float = 0.2) -> Any:
    """Call check until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {check.__doc__ or check}")
        time.sleep(step)


def puts(space: Any, remote_id: str) -> list[dict]:
    """Return the PUT requests the sandbox received for one conference."""
    path = f"/api/video/conferences/{remote_id}"
    return [r for r in space.requests if r["method"] == "PUT" and r["path"] == path]
