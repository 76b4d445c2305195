"""Conference token reveal/copy and room join-token minting in headless Chromium."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from playwright.sync_api import expect

from rooms import services
from rooms.models import AuditEntry, IssuedRoomToken
from rooms.signalwire import schema
from tests.browser_helpers import admin_url, login, make_staff, make_superuser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def remote_token(space, conference, name: str) -> str:
    """Return the value the sandbox holds for one of a conference's tokens."""
    return next(
        t["token"]
        for t in space.conference_tokens.values()
        if t["conference_id"] == conference.remote_id and t["name"] == name
    )


def sessions_text() -> str:
    """Everything the session table holds, raw and decoded, as one text to search."""
    rows = list(Session.objects.all())
    assert rows, "the browser should have a session"
    return json.dumps([[row.session_data, row.get_decoded()] for row in rows], default=str)


def jwt_claims(token: str) -> dict:
    """Decode the claims (middle segment) of a JWT-shaped token."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def test_reveal_and_copy_need_the_reveal_permission(sandbox, live_server, page, screenshot):
    conference = services.conference_create(data={"name": "board", "display_name": "Board"})
    guest = conference.tokens.get(name="guest")
    value = remote_token(sandbox, conference, "guest")
    moderator_value = remote_token(sandbox, conference, "moderator")
    # The token rows need view_conferencetoken too (the inline is hidden without it).
    make_staff(
        "revealer",
        "rooms.change_conference",
        "rooms.view_conferencetoken",
        "rooms.reveal_conferencetoken",
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server.url, "revealer")
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))

    cell = page.locator(f"#sw-token-{guest.pk}")
    expect(cell).not_to_have_text(value)
    assert value not in page.content() and moderator_value not in page.content()
    screenshot("masked")

    page.locator(f"button.sw-reveal[data-target='sw-token-{guest.pk}']").click()
    expect(cell).to_have_text(value)
    screenshot("revealed")

    reveal_url = cell.locator("xpath=ancestor::tr").locator("button.sw-reveal")
    copy = page.locator(
        f"button.sw-copy[data-reveal-url='{reveal_url.get_attribute('data-reveal-url')}']"
    )
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == value
    accesses = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS)
    assert accesses.count() == 2
    assert all(value not in json.dumps(e.changes or {}) for e in accesses)

    # A staff member without the permission gets neither the value nor the buttons.
    page.context.clear_cookies()
    make_staff("viewer", "rooms.change_conference", "rooms.view_conferencetoken")
    login(page, live_server.url, "viewer")
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))
    expect(page.locator(f"#sw-token-{guest.pk}")).to_be_visible()
    expect(page.locator("button.sw-reveal")).to_have_count(0)
    expect(page.locator("button.sw-copy")).to_have_count(0)
    html = page.content()
    assert value not in html and moderator_value not in html
    screenshot("no-permission")


def test_the_moderator_embed_snippet_copies_the_moderator_token(
    sandbox, live_server, page, screenshot
):
    conference = services.conference_create(data={"name": "town", "display_name": "Town"})
    moderator = conference.tokens.get(name="moderator")
    value = remote_token(sandbox, conference, "moderator")
    make_staff(
        "embedder",
        "rooms.change_conference",
        "rooms.view_conferencetoken",
        "rooms.reveal_conferencetoken",
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server.url, "embedder")
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))
    assert value not in page.content()

    reveal_url = reverse("admin:rooms_conference_token_reveal", args=[conference.pk, moderator.pk])
    button = page.locator(f"button.sw-embed[data-reveal-url='{reveal_url}']")
    expect(button).to_have_text("Copy moderator embed snippet")
    button.click()
    expect(button).to_have_text("Copied")
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert f"token: {json.dumps(value)}" in snippet
    expect(button.locator("xpath=..").locator(".sw-embed-preview")).to_contain_text(value)
    screenshot("moderator-embed")
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCESS)
    assert entry.object_pk == str(moderator.pk) and value not in json.dumps(entry.changes or {})


def test_mint_a_guest_join_token_shown_once(sandbox, live_server, page, screenshot):
    room = services.room_create(data={"name": "clinic", "display_name": "Clinic"})
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_room_change", room.pk))
    page.get_by_role("link", name="Mint join token").click()
    expect(page.locator("input[name=role][value=guest]")).to_be_checked()
    for scope in schema.GUEST_PERMISSIONS:
        expect(page.locator(f"input[name=permissions][value='{scope}']")).to_be_checked()
    page.locator("#id_user_name").fill("Ada")
    screenshot("mint-form")

    page.get_by_role("button", name="Mint token").click()

    shown = page.locator("#sw-minted-token")
    expect(shown).to_be_visible()
    token = shown.input_value()
    screenshot("minted")
    claims = jwt_claims(token)
    assert sorted(claims["s"]) == sorted(schema.GUEST_PERMISSIONS)
    assert all(scope.startswith("room.self.") for scope in claims["s"])
    assert (claims["r"], claims["u"]) == ("clinic", "Ada")
    record = IssuedRoomToken.objects.get()
    assert record.fingerprint and token not in record.fingerprint
    assert (record.role, record.user_name, record.room_name) == ("guest", "Ada", "clinic")

    # The page that shows the token has been sent: no session row holds it.
    assert token not in sessions_text()

    # A reload re-sends the POST: the used nonce mints nothing and shows nothing.
    page.reload()
    expect(page.get_by_role("button", name="Mint token")).to_be_visible()
    expect(page.locator("#sw-minted-token")).to_have_count(0)
    expect(page.locator(".messagelist")).to_contain_text("already sent")
    assert token not in page.content()
    assert IssuedRoomToken.objects.count() == 1
    assert len([r for r in sandbox.requests if r["path"] == "/api/video/room_tokens"]) == 1
    assert token not in sessions_text()


def test_mint_an_audience_token_with_media_options(sandbox, live_server, page, screenshot):
    room = services.room_create(data={"name": "stage", "display_name": "Stage"})
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_room_mint_token", room.pk))

    page.locator("input[name=role][value=audience]").check()
    # The preset clears every scope box: SignalWire gives audience tokens none.
    expect(page.locator("input[name=permissions]:checked")).to_have_count(0)
    page.locator("#id_user_name").fill("Viewer")
    page.locator("#id_media_allowed").select_option("video-only")
    page.locator("#id_end_room_session_on_leave").check()
    screenshot("audience-form")
    page.get_by_role("button", name="Mint token").click()

    token = page.locator("#sw-minted-token").input_value()
    claims = sandbox.verify_room_token(token)
    assert (claims["ja"], claims["ma"], claims["s"]) == ("audience", "video-only", [])
    assert claims["acr"] is False
    body = next(r["body"] for r in sandbox.requests if r["path"] == "/api/video/room_tokens")
    assert body["end_room_session_on_leave"] is True and body["auto_create_room"] is False
    record = IssuedRoomToken.objects.get()
    assert (record.role, record.scopes, record.user_name) == ("audience", [], "Viewer")
    assert record.expires_at is not None
    expect(page.locator(".sw-expires")).to_be_visible()
