"""Content-Security-Policy: sent on every page, strict, and passed by every admin page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib import admin
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from rooms import services, sync
from rooms.models import AuditEntry
from rooms.services import tokens
from tests.browser_helpers import admin_url, login, make_staff, make_superuser

ROOT = Path(__file__).resolve().parents[1]


def policy(response) -> dict[str, list[str]]:
    """Parse a response's Content-Security-Policy header into directives."""
    header = response["Content-Security-Policy"]
    parts = (p.split() for p in header.split(";") if p.strip())
    return {name: values for name, *values in parts}


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_strict_policy(client, admin_client):
    responses = {
        "login page": client.get(reverse("admin:login")),
        "admin index": admin_client.get(reverse("admin:index")),
        "change list": admin_client.get(reverse("admin:rooms_conference_changelist")),
        "add form": admin_client.get(reverse("admin:rooms_room_add")),
        "not found": admin_client.get("/no-such-page/"),
        "health": client.get(reverse("health")),
    }
    for what, response in responses.items():
        directives = policy(response)
        assert directives["default-src"] == ["'self'"], what
        assert directives["script-src"] == ["'self'"], what
        assert directives["style-src"] == ["'self'"], what
        assert directives["object-src"] == ["'none'"], what
        assert directives["frame-ancestors"] == ["'none'"], what
        assert directives["form-action"] == ["'self'"], what
        header = response["Content-Security-Policy"]
        assert "unsafe-inline" not in header and "unsafe-eval" not in header, what


REPORT_URI_PROBE = (
    "import django; django.setup(); from django.test import Client; "
    "print(Client().get('/no-such-page/')['Content-Security-Policy'])"
)


def test_a_report_uri_can_be_configured():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_SECRET_KEY="probe-" + "k" * 40,
        DJANGO_SECURE_SSL_REDIRECT="false",
        PORTAL_ENV_FILE="",
        PORTAL_CSP_REPORT_URI="https://reports.example.com/csp",
    )
    result = subprocess.run(
        [sys.executable, "-c", REPORT_URI_PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "report-uri https://reports.example.com/csp" in result.stdout


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "on*= handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_or_admin_html_holds_inline_script_or_style():
    sources = [*ROOT.glob("templates/**/*.html"), *ROOT.glob("rooms/**/*.py")]
    found = []
    for path in sources:
        text = path.read_text()
        if path.suffix == ".py":
            # Only the HTML the admin builds: strings passed to format_html and friends.
            text = "\n".join(re.findall(r"format_html\w*\((.*?)\)", text, re.S))
        found += [(str(path.relative_to(ROOT)), what) for rx, what in INLINE if rx.search(text)]
    assert found == []


# --- in a real browser -------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_browser_blocks_inline_code_and_the_tests_see_it(live_server, page):
    page.goto(admin_url(live_server.url, "login"))
    assert page.csp.take(page) == []
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.head.appendChild(script);
            document.body.setAttribute("style", "background: red");
            const style = document.createElement("style");
            style.textContent = "body { color: red }";
            document.head.appendChild(style);
        }"""
    )
    assert page.evaluate("() => window.inlineRan === true") is False
    seen = page.csp.take(page)
    directives = {v.get("directive") for v in seen if "directive" in v}
    assert {"script-src-elem", "style-src-elem"} <= directives, seen


def _one_of_everything(sandbox) -> list[str]:
    """Make one of each thing admin shows; return the URLs of the custom admin pages."""
    boss = make_superuser("boss")
    conference = services.conference_create(
        data={"name": "csp-board", "display_name": "Board"}, actor=boss
    )
    services.conference_update(conference=conference, data={"display_name": "Board 2"}, actor=boss)
    room = services.room_create(data={"name": "csp-room", "max_members": 5})
    services.room_update(room=room, data={"max_members": 6}, actor=boss)
    tokens.room_token_mint(room=room, role="guest", actor=boss)
    sync.sync_rooms()
    sync.sync_conferences()
    AccessAttempt.objects.create(
        username="someone", ip_address="192.0.2.9", user_agent="x", http_accept="*/*",
        path_info="/admin/login/", failures_since_start=5,
    )
    AccessLog.objects.create(
        username="boss", ip_address="127.0.0.1", user_agent="x", http_accept="*/*",
        path_info="/admin/login/",
    )
    TOTPDevice.objects.create(user=make_staff("enrolled"), name="phone", confirmed=True)
    token = conference.tokens.get(name="guest")
    urls = [
        reverse("admin:rooms_room_mint_token", args=[room.pk]),
        reverse("admin:rooms_conference_token_reset", args=[conference.pk, token.pk]),
    ]
    for kind, obj in (("conference", conference), ("room", room)):
        change = AuditEntry.objects.filter(
            action=AuditEntry.Action.UPDATE, object_pk=str(obj.pk), content_type__model=kind
        ).latest("pk")
        urls.append(reverse(f"admin:rooms_{kind}_audit_restore", args=[obj.pk, change.pk]))
    return urls


def _admin_pages() -> list[str]:
    """Every admin page about the portal's data: index, app lists, lists, forms, history."""
    pages = [reverse("admin:index"), reverse("admin:password_change"),
             reverse("portal_otp_enrol")]
    for model in admin.site._registry:
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        pages.append(reverse("admin:app_list", args=[model._meta.app_label]))
        pages.append(reverse(f"admin:{info}_changelist"))
        pages.append(reverse(f"admin:{info}_add"))
        obj = model.objects.order_by("pk").first()
        if obj is not None:
            for view in ("change", "history", "delete"):
                pages.append(reverse(f"admin:{info}_{view}", args=[obj.pk]))
    return list(dict.fromkeys(pages))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_admin_page_passes_the_policy(sandbox, live_server, page):
    custom = _one_of_everything(sandbox)
    login(page, live_server.url, "boss")
    visited = 0
    for path in [*_admin_pages(), *custom]:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status in (200, 403), (path, response.status)
        assert response.headers.get("content-security-policy"), path
        assert page.csp.take(page) == [], path
        visited += 1
    assert visited >= 40
