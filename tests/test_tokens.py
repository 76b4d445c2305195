"""Conference tokens (mirror, reveal, reset) and room join tokens (mint), service and admin."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from rooms import services, tokens
from rooms.models import AuditEntry, ConferenceToken, IssuedRoomToken
from rooms.signalwire import schema

pytestmark = pytest.mark.django_db


def claims(token: str) -> dict:
    """Decode the claims part of a JWT-shaped token."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def conference(sandbox):
    return services.conference_create(data={"name": "board", "display_name": "Board"})


@pytest.fixture
def room(sandbox):
    return services.room_create(data={"name": "studio"})


@pytest.fixture
def staff(django_user_model):
    """Make a staff member holding just the named permissions."""

    def make(*codenames: str):
        user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        return user

    return make


def _audit_text() -> str:
    return json.dumps(list(AuditEntry.objects.values()), default=str)


# --- conference tokens: service --------------------------------------------------------


def test_refresh_mirrors_rotations_made_elsewhere(sandbox, conference):
    guest = conference.tokens.get(name="guest")
    rotated = sandbox.reset_conference_token(guest.remote_id)

    tokens.conference_tokens_refresh(conference=conference)

    guest.refresh_from_db()
    assert guest.token == rotated["token"]


def test_reset_rotates_in_signalwire_and_audits_without_the_value(sandbox, conference, admin_user):
    token = conference.tokens.get(name="moderator")
    old = token.token

    tokens.conference_token_reset(token=token, actor=admin_user)

    token.refresh_from_db()
    assert token.token != old
    assert sandbox.conference_tokens[token.remote_id]["token"] == token.token
    assert token.rotated_at is not None
    entry = AuditEntry.objects.filter(object_pk=str(token.pk)).latest("timestamp")
    assert entry.action == AuditEntry.Action.UPDATE and entry.actor == admin_user
    assert "token" in entry.changes
    assert old not in _audit_text() and token.token not in _audit_text()


def test_reveal_returns_the_value_and_records_an_access(conference, admin_user):
    token = conference.tokens.get(name="guest")

    value = tokens.conference_token_reveal(token=token, actor=admin_user)

    assert value == token.token
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCESS)
    assert entry.actor == admin_user and entry.additional_data["access"] == "reveal"
    assert token.token not in _audit_text()


# --- conference tokens: admin ----------------------------------------------------------


def test_without_reveal_permission_the_value_is_not_in_the_page(client, conference, staff):
    user = staff("view_conference", "change_conference", "view_conferencetoken")
    client.force_login(user)

    page = client.get(reverse("admin:rooms_conference_change", args=[conference.pk]))

    html = page.content.decode()
    assert page.status_code == 200 and "moderator" in html
    for token in conference.tokens.all():
        assert token.token not in html
        assert token.masked in html
    assert "sw-reveal" not in html and "sw-embed" not in html and "Reset…" not in html
    guest = conference.tokens.get(name="guest")
    url = reverse("admin:rooms_conference_token_reveal", args=[conference.pk, guest.pk])
    assert client.post(url).status_code == 403
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


def test_with_reveal_permission_the_value_comes_only_from_an_audited_post(
    client, conference, staff
):
    user = staff("view_conference", "view_conferencetoken", "reveal_conferencetoken")
    client.force_login(user)
    guest = conference.tokens.get(name="guest")

    page = client.get(reverse("admin:rooms_conference_change", args=[conference.pk]))
    html = page.content.decode()
    assert "sw-reveal" in html and "sw-embed" in html  # reveal, copy and the embed snippet
    assert guest.token not in html

    url = reverse("admin:rooms_conference_token_reveal", args=[conference.pk, guest.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.json()["token"] == guest.token
    assert "no-store" in response["Cache-Control"]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCESS)
    assert entry.actor == user and entry.object_pk == str(guest.pk)


def test_reset_asks_first_and_needs_its_permission(
    sandbox, client, admin_client, conference, staff
):
    token = conference.tokens.get(name="guest")
    url = reverse("admin:rooms_conference_token_reset", args=[conference.pk, token.pk])
    old = token.token

    client.force_login(staff("view_conference", "change_conference", "view_conferencetoken"))
    assert client.post(url).status_code == 403

    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and b"Yes, reset the token" in confirm.content
    assert ConferenceToken.objects.get(pk=token.pk).token == old
    response = admin_client.post(url)
    assert response.status_code == 302
    assert ConferenceToken.objects.get(pk=token.pk).token != old


def test_refresh_tokens_action(sandbox, admin_client, conference):
    guest = conference.tokens.get(name="guest")
    rotated = sandbox.reset_conference_token(guest.remote_id)
    selected = {"action": "refresh_tokens", "_selected_action": [conference.pk]}
    changelist = reverse("admin:rooms_conference_changelist")

    assert b"Yes, go ahead" in admin_client.post(changelist, selected).content
    admin_client.post(changelist, {**selected, "confirm": "yes"})

    assert ConferenceToken.objects.get(pk=guest.pk).token == rotated["token"]


# --- room join tokens ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [("moderator", schema.MODERATOR_PERMISSIONS), ("guest", schema.GUEST_PERMISSIONS)],
)
def test_mint_with_a_preset(room, admin_user, role, expected):
    token, record = tokens.room_token_mint(
        room=room, role=role, user_name="Ada", actor=admin_user
    )

    assert claims(token)["s"] == list(expected)
    assert claims(token)["r"] == "studio" and claims(token)["u"] == "Ada"
    assert record.fingerprint == hashlib.sha256(token.encode()).hexdigest()
    assert (record.role, record.issued_by, record.scopes) == (role, admin_user, list(expected))
    assert token not in _audit_text()


def test_mint_with_custom_scopes_and_a_window(room, admin_user):
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    scopes = ["room.self.audio_mute", "room.set_layout"]

    token, record = tokens.room_token_mint(
        room=room,
        role="custom",
        permissions=scopes,
        join_from=start,
        join_until=start + timedelta(hours=2),
        remove_after_seconds_elapsed=600,
        join_audio_muted=True,
        actor=admin_user,
    )

    data = claims(token)
    assert data["s"] == scopes and data["rse"] == 600
    assert data["ju"] == int((start + timedelta(hours=2)).timestamp())
    assert record.expires_at == start + timedelta(hours=2)
    assert record.join_audio_muted is True


def test_mint_refuses_unknown_scopes_and_a_backwards_window(room):
    with pytest.raises(ValidationError) as caught:
        tokens.room_token_mint(room=room, role="custom", permissions=["room.fly"])
    assert "permissions" in caught.value.message_dict
    now = timezone.now()
    with pytest.raises(ValidationError):
        tokens.room_token_mint(room=room, join_from=now, join_until=now)
    assert not IssuedRoomToken.objects.exists()


def test_mint_page_shows_the_token_once_and_keeps_only_its_fingerprint(admin_client, room):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    assert admin_client.get(url).status_code == 200

    posted = admin_client.post(url, {"role": "moderator", "user_name": "Grace"})
    # Post/redirect/get: a reload of the shown page cannot mint a second token.
    assert posted.status_code == 302 and posted["Location"] == url
    response = admin_client.get(url)

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = response.context["token"]
    assert token in response.content.decode()
    assert claims(token)["s"] == list(schema.MODERATOR_PERMISSIONS)
    record = IssuedRoomToken.objects.get()
    assert record.user_name == "Grace"
    assert token not in json.dumps(list(IssuedRoomToken.objects.values()), default=str)
    assert token not in _audit_text()
    again = admin_client.get(url)
    assert token not in again.content.decode()
    assert IssuedRoomToken.objects.count() == 1


def test_mint_page_errors_keep_the_input(admin_client, room):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])

    response = admin_client.post(url, {"role": "custom", "user_name": "Kept Name"})

    assert "permissions" in response.context["form"].errors
    assert "Kept Name" in response.content.decode()
    assert not IssuedRoomToken.objects.exists()


def test_mint_page_needs_its_permission(client, room, staff):
    client.force_login(staff("view_room", "change_room"))
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])

    assert client.get(url).status_code == 403
    change = client.get(reverse("admin:rooms_room_change", args=[room.pk]))
    assert b"Mint join token" not in change.content


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reveal_button_in_a_real_browser(sandbox, live_server, page, django_user_model):
    django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-for-tests")
    conference = services.conference_create(data={"name": "live", "display_name": "Live"})
    guest = conference.tokens.get(name="guest")

    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{reverse('admin:rooms_conference_change', args=[conference.pk])}")
    cell = page.locator(f"#sw-token-{guest.pk}")
    assert guest.token not in cell.inner_text()

    page.locator(f"button.sw-reveal[data-target='sw-token-{guest.pk}']").click()

    page.wait_for_function(
        "([id, value]) => document.getElementById(id).textContent === value",
        arg=[f"sw-token-{guest.pk}", guest.token],
    )
    assert AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).count() == 1
