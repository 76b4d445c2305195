"""Conference tokens (mirror, reveal, reset) and room join tokens (mint), service and admin."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from rooms import services
from rooms.models import AuditEntry, ConferenceToken, IssuedRoomToken, Room, SyncState
from rooms.services import tokens
from rooms.signalwire import schema
from rooms.signalwire.errors import AuthenticationError
from tests.concurrent import post_together

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


def test_a_reset_made_while_the_token_sync_lists_is_kept_not_overwritten(
    sandbox, conference, admin_user, monkeypatch
):
    from rooms import sync
    from rooms.signalwire.client import build_client

    client = build_client()
    listed = client.list_conference_tokens
    moderator = conference.tokens.get(name="moderator")
    done: list[tokens.TokenReset] = []

    def list_then_reset(remote_id: str):
        answer = listed(remote_id)  # the sync now holds the old value...
        if not done:  # ...and staff reset the token before the sync writes it
            done.append(tokens.conference_token_reset(token=moderator, actor=admin_user))
        return answer

    monkeypatch.setattr(client, "list_conference_tokens", list_then_reset)
    run = sync.sync_conference_tokens(client=client)

    assert done and run.outcome == "succeeded"
    moderator.refresh_from_db()
    assert moderator.token == done[0].token.token
    assert moderator.token == sandbox.conference_tokens[moderator.remote_id]["token"]


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
    assert entry.actor == admin_user and entry.additional_data["event"] == "reveal"
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


def test_the_moderator_embed_snippet_reveals_the_moderator_token_audited(
    client, conference, staff
):
    moderator = conference.tokens.get(name="moderator")
    url = reverse("admin:rooms_conference_token_reveal", args=[conference.pk, moderator.pk])
    # Without the reveal permission there is no embed snippet at all (test above).
    user = staff("view_conference", "view_conferencetoken", "reveal_conferencetoken")
    client.force_login(user)
    page = client.get(reverse("admin:rooms_conference_change", args=[conference.pk]))
    html = page.content.decode()
    assert f'class="button sw-embed" data-reveal-url="{url}"' in html
    assert "Copy moderator embed snippet" in html and moderator.token not in html
    assert client.post(url).json()["token"] == moderator.token
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCESS)
    assert entry.actor == user and entry.object_pk == str(moderator.pk)


def test_a_missing_object_on_the_token_pages_is_a_404(admin_client, conference, room):
    guest = conference.tokens.get(name="guest")
    missing = Room.objects.order_by("-pk").first().pk + 1000
    mint = reverse("admin:rooms_room_mint_token", args=[missing])
    assert admin_client.get(mint).status_code == 404
    assert admin_client.post(mint, {"role": "guest"}).status_code == 404
    reveal = reverse("admin:rooms_conference_token_reveal", args=[missing, guest.pk])
    assert admin_client.post(reveal).status_code == 404
    assert not IssuedRoomToken.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


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
    response = admin_client.post(url, {"nonce": confirm.context["nonce"]})
    assert response.status_code == 302
    assert ConferenceToken.objects.get(pk=token.pk).token != old


def reset_form(admin_client, conference, token) -> tuple[str, dict]:
    """Open a token's reset confirmation; return its URL and the form it posts."""
    url = reverse("admin:rooms_conference_token_reset", args=[conference.pk, token.pk])
    return url, {"nonce": admin_client.get(url).context["nonce"]}


def reset_page(admin_client, conference, token):
    """POST the reset of one token through admin; return the page it lands on."""
    url, form = reset_form(admin_client, conference, token)
    return admin_client.post(url, form, follow=True)


@pytest.mark.django_db(transaction=True)
def test_a_reset_confirmation_sent_four_times_at_once_rotates_the_token_once(
    sandbox, admin_client, conference
):
    token = conference.tokens.get(name="guest")
    url, form = reset_form(admin_client, conference, token)
    sandbox.clear_requests()

    post_together(admin_client, url, form)

    resets = [r for r in sandbox.requests if r["method"] == "POST" and "reset" in r["path"]]
    assert len(resets) == 1
    token.refresh_from_db()
    assert token.token == sandbox.conference_tokens[token.remote_id]["token"]
    updates = AuditEntry.objects.filter(object_pk=str(token.pk), action=AuditEntry.Action.UPDATE)
    assert updates.count() == 1
    # Without its nonce a reset does nothing either.
    again = admin_client.post(url, follow=True)
    resets = [r for r in sandbox.requests if r["method"] == "POST" and "reset" in r["path"]]
    assert "not reset again" in again.content.decode() and len(resets) == 1


def test_a_refused_reset_never_shows_or_logs_the_token_values_signalwire_echoed(
    sandbox, staff, conference, settings, caplog, client
):
    from tests.hostile_space import HostileSpace

    guest = conference.tokens.get(name="guest")
    moderator = conference.tokens.get(name="moderator")
    client.force_login(staff("view_conference", "reset_conferencetoken"))
    url = reverse("admin:rooms_conference_token_reset", args=[conference.pk, guest.pk])
    form = {"nonce": client.get(url).context["nonce"]}

    def refuse(handler):
        handler.send_json({"errors": [{
            "code": "invalid", "attribute": "token",
            "message": f"token {guest.token} (moderator {moderator.token}) cannot be reset",
        }]}, status=422)

    space = HostileSpace(refuse).start()
    settings.SIGNALWIRE_SPACE_URL = space.url
    try:
        page = client.post(url, form, follow=True)
    finally:
        space.stop()

    assert [r["method"] for r in space.requests] == ["POST"]
    html = page.content.decode()
    assert "The token was not reset" in html and "cannot be reset" in html
    for value in (guest.token, moderator.token):
        assert value not in html and value not in caplog.text
    guest.refresh_from_db()
    assert guest.token == sandbox.conference_tokens[guest.remote_id]["token"]


def test_a_reset_whose_answer_was_lost_stores_the_rotated_value(
    sandbox, admin_client, conference
):
    token = conference.tokens.get(name="guest")
    old = token.token
    # SignalWire rotates the token, then the connection drops before its answer is sent.
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)

    page = reset_page(admin_client, conference, token)

    token.refresh_from_db()
    remote = sandbox.conference_tokens[token.remote_id]["token"]
    assert remote != old and token.token == remote
    assert token.rotated_at is not None
    text = page.content.decode()
    assert "was reset in SignalWire" in text and "answer was lost" in text
    assert "not reset" not in text
    entry = AuditEntry.objects.filter(object_pk=str(token.pk)).latest("timestamp")
    assert "token" in entry.changes and remote not in _audit_text() and old not in _audit_text()


def test_a_reset_lost_before_signalwire_acted_says_not_reset(sandbox, admin_client, conference):
    token = conference.tokens.get(name="guest")
    old = token.token
    # The same lost answer, but SignalWire never processed the request.
    sandbox.inject_fault("drop", count=1, methods=["POST"])

    page = reset_page(admin_client, conference, token)

    token.refresh_from_db()
    assert token.token == old == sandbox.conference_tokens[token.remote_id]["token"]
    assert token.rotated_at is None
    assert "was not reset" in page.content.decode()
    assert "old value" in page.content.decode()


def test_a_reset_that_cannot_be_read_back_says_it_is_unknown(
    sandbox, admin_client, conference, settings
):
    settings.SIGNALWIRE_RETRIES = 0
    token = conference.tokens.get(name="guest")
    old = token.token
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    sandbox.inject_fault(500, methods=["GET"], path_prefix="/api/video/conference_tokens/")

    page = reset_page(admin_client, conference, token)

    token.refresh_from_db()
    assert token.token == old  # nothing is known, so nothing is overwritten
    text = page.content.decode()
    assert "not known whether" in text and "Refresh tokens from SignalWire" in text


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


def sessions_text() -> str:
    """Everything the session table holds, raw and decoded, as one text to search."""
    rows = list(Session.objects.all())
    assert rows, "the flow should have a session to look at"
    return json.dumps([[row.session_data, row.get_decoded()] for row in rows], default=str)


def mint_form(client, url: str):
    """GET the mint page; return its response and the one-time nonce of its form."""
    page = client.get(url)
    assert page.status_code == 200
    return page, page.context["form"]["nonce"].value()


def test_mint_answers_the_post_with_the_token_and_keeps_it_out_of_the_session(
    sandbox, admin_client, room
):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)
    data = {"nonce": nonce, "role": "moderator", "user_name": "Grace", "media_allowed": "all"}

    response = admin_client.post(url, data)

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = response.context["token"]
    assert token and token in response.content.decode()
    assert claims(token)["s"] == list(schema.MODERATOR_PERMISSIONS)
    # The page that shows the token has been sent: no session row holds it.
    assert token not in sessions_text()
    record = IssuedRoomToken.objects.get()
    assert record.user_name == "Grace"
    assert token not in json.dumps(list(IssuedRoomToken.objects.values()), default=str)
    assert token not in _audit_text()

    # A reload re-sends the same POST: nothing is minted and the token is not shown again.
    again = admin_client.post(url, data, follow=True)
    assert again.redirect_chain == [(url, 302)]
    assert token not in again.content.decode()
    assert "already sent" in again.content.decode()
    assert IssuedRoomToken.objects.count() == 1
    assert len(room_token_requests(sandbox, room)) == 1
    assert token not in sessions_text()


def room_token_requests(space, room) -> list[dict]:
    """The room-token requests the sandbox received for one room."""
    return [
        r
        for r in space.requests
        if r["path"] == "/api/video/room_tokens" and (r["body"] or {}).get("room_name") == room.name
    ]


@pytest.mark.django_db(transaction=True)
def test_the_same_mint_form_sent_four_times_at_once_mints_one_token(
    sandbox, admin_client, room
):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)
    data = {"nonce": nonce, "role": "guest", "user_name": "Ada", "media_allowed": "all"}

    answers = post_together(admin_client, url, data)

    assert sorted(a.status_code for a in answers) == [200, 302, 302, 302]
    assert IssuedRoomToken.objects.count() == 1
    assert len(room_token_requests(sandbox, room)) == 1


def test_another_users_nonce_mints_nothing(sandbox, client, admin_client, room, staff):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)
    client.force_login(staff("view_room", "mint_room_token"))

    answer = client.post(url, {"nonce": nonce, "role": "guest", "media_allowed": "all"})

    assert answer.status_code == 302
    assert not IssuedRoomToken.objects.exists() and room_token_requests(sandbox, room) == []
    # The nonce still works for the user it was issued to.
    mine = admin_client.post(url, {"nonce": nonce, "role": "guest", "media_allowed": "all"})
    assert mine.status_code == 200 and IssuedRoomToken.objects.count() == 1


def test_with_redis_down_the_mint_form_says_so_and_mints_nothing(
    sandbox, admin_client, room, settings
):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"

    page = admin_client.get(url).content.decode()
    answer = admin_client.post(
        url, {"nonce": nonce, "role": "guest", "media_allowed": "all"}, follow=True
    )

    assert "cannot be sent now" in page and "Redis cannot be reached" in page
    assert "Nothing was done" in answer.content.decode()
    assert not IssuedRoomToken.objects.exists() and room_token_requests(sandbox, room) == []


def test_a_post_without_a_nonce_mints_nothing(sandbox, admin_client, room):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])

    response = admin_client.post(url, {"role": "guest", "media_allowed": "all"})

    assert response.status_code == 302 and response["Location"] == url
    assert not IssuedRoomToken.objects.exists()
    assert room_token_requests(sandbox, room) == []


def test_mint_page_errors_keep_the_input(admin_client, room):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)

    response = admin_client.post(
        url, {"nonce": nonce, "role": "custom", "user_name": "Kept Name", "media_allowed": "all"}
    )

    assert "permissions" in response.context["form"].errors
    assert "Kept Name" in response.content.decode()
    assert not IssuedRoomToken.objects.exists()
    # The re-shown form carries a fresh nonce, so correcting it mints once.
    fresh = response.context["form"]["nonce"].value()
    assert fresh and fresh != nonce
    fixed = admin_client.post(
        url, {"nonce": fresh, "role": "guest", "user_name": "Kept Name", "media_allowed": "all"}
    )
    assert fixed.context["token"] and IssuedRoomToken.objects.count() == 1


@pytest.mark.parametrize("meta", ["[]", "[1, 2]", '"text"', "3"])
def test_mint_form_refuses_meta_that_is_not_an_object(sandbox, admin_client, room, meta):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)

    response = admin_client.post(
        url, {"nonce": nonce, "role": "guest", "media_allowed": "all", "meta": meta}
    )

    assert "JSON object" in str(response.context["form"].errors["meta"])
    assert not IssuedRoomToken.objects.exists() and room_token_requests(sandbox, room) == []


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("[" * 5000, "nested more than 32 levels"),
        ('{"seat": NaN}', "Only finite numbers"),
        ('{"seat": 1e999}', "Only finite numbers"),
    ],
)
def test_mint_form_refuses_meta_that_is_not_strict_json(
    sandbox, admin_client, room, meta, message
):
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)

    response = admin_client.post(
        url, {"nonce": nonce, "role": "guest", "media_allowed": "all", "meta": meta}
    )

    assert response.status_code == 200
    assert message in str(response.context["form"].errors["meta"])
    assert not IssuedRoomToken.objects.exists() and room_token_requests(sandbox, room) == []


def test_mint_sends_auto_create_room_false_and_the_session_options(sandbox, room, admin_user):
    token, record = tokens.room_token_mint(
        room=room,
        role="guest",
        user_name="Ada",
        media_allowed="audio-only",
        end_room_session_on_leave=True,
        room_display_name="Studio A",
        meta={"seat": 12},
        actor=admin_user,
    )

    body = room_token_requests(sandbox, room)[-1]["body"]
    assert body["auto_create_room"] is False
    assert body["join_as"] == "member" and body["media_allowed"] == "audio-only"
    assert body["end_room_session_on_leave"] is True
    assert body["room_display_name"] == "Studio A" and body["meta"] == {"seat": 12}
    data = sandbox.verify_room_token(token)
    assert (data["acr"], data["ja"], data["ma"]) == (False, "member", "audio-only")
    issued = AuditEntry.objects.filter(
        content_type__model="issuedroomtoken", object_pk=str(record.pk)
    )
    event = next(e for e in issued if (e.additional_data or {}).get("event") == "issue")
    assert event.additional_data["details"]["media_allowed"] == "audio-only"
    assert event.additional_data["details"]["auto_create_room"] is False
    assert token not in _audit_text()


def test_mint_options_are_kept_on_the_issued_token_and_shown_on_its_page(
    sandbox, room, admin_user, admin_client
):
    token, record = tokens.room_token_mint(
        room=room,
        role="audience",
        media_allowed="video-only",
        end_room_session_on_leave=True,
        room_display_name="Hall B",
        meta={"topic": "keynote"},
        actor=admin_user,
    )

    record.refresh_from_db()
    assert record.options == {
        "join_as": "audience",
        "media_allowed": "video-only",
        "end_room_session_on_leave": True,
        "room_display_name": "Hall B",
        "meta": {"topic": "keynote"},
    }
    page = admin_client.get(reverse("admin:rooms_issuedroomtoken_change", args=[record.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Media allowed" in html and "video-only" in html and "Hall B" in html
    assert "keynote" in html and "Join as" in html
    assert token not in html and token not in _audit_text()


def test_the_audience_preset_joins_as_audience_without_scopes(sandbox, room):
    token, record = tokens.room_token_mint(room=room, role="audience", user_name="Viewer")

    body = room_token_requests(sandbox, room)[-1]["body"]
    assert body["join_as"] == "audience" and body["permissions"] == []
    assert claims(token)["ja"] == "audience" and claims(token)["s"] == []
    assert (record.role, record.scopes) == ("audience", [])


def test_a_token_without_a_window_expires_after_the_default_validity(sandbox, room):
    before = timezone.now()

    token, record = tokens.room_token_mint(room=room, role="guest")

    sent = room_token_requests(sandbox, room)[-1]["body"]["join_until"]
    until = datetime.fromisoformat(sent.replace("Z", "+00:00"))
    assert before + tokens.DEFAULT_VALIDITY <= until <= timezone.now() + tokens.DEFAULT_VALIDITY
    assert record.expires_at == until
    assert claims(token)["ju"] == int(until.timestamp())
    # A window that starts later is given the same validity from its start.
    start = timezone.now() + timedelta(days=3)
    _, later = tokens.room_token_mint(room=room, role="guest", join_from=start)
    assert later.join_until == start + tokens.DEFAULT_VALIDITY


def test_no_token_for_a_room_deleted_in_signalwire_since_the_last_sync(
    sandbox, admin_client, room
):
    sandbox.delete_room(room.remote_id)  # the mirror still says "synced"
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)

    response = admin_client.post(url, {"nonce": nonce, "role": "guest", "media_allowed": "all"})

    assert response.context["token"] is None
    assert "no longer has" in str(response.context["form"].non_field_errors())
    assert not IssuedRoomToken.objects.exists()
    assert room_token_requests(sandbox, room) == []


def test_a_join_until_in_the_past_is_refused(sandbox, room):
    with pytest.raises(ValidationError) as caught:
        tokens.room_token_mint(room=room, join_until=timezone.now() - timedelta(minutes=1))

    assert "join_until" in caught.value.message_dict
    assert room_token_requests(sandbox, room) == []


@pytest.mark.parametrize("state", ["deleted_remotely", "pending_create", "pending_delete"])
def test_no_token_for_a_room_signalwire_does_not_have(sandbox, admin_client, room, state):
    if state == "pending_create":
        Room.objects.filter(pk=room.pk).update(remote_id=None, sync_state=SyncState.PENDING_PUSH)
    else:
        Room.objects.filter(pk=room.pk).update(sync_state=state)
    room.refresh_from_db()
    url = reverse("admin:rooms_room_mint_token", args=[room.pk])

    with pytest.raises(ValidationError):
        tokens.room_token_mint(room=room, role="guest")
    page = admin_client.get(url)
    posted = admin_client.post(url, {"role": "guest", "media_allowed": "all", "nonce": "x"})

    assert page.context["refusal"] and b"Mint token" not in page.content
    assert posted.context["refusal"] and posted.context["token"] is None
    assert not IssuedRoomToken.objects.exists()
    assert room_token_requests(sandbox, room) == []


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


# --- each token is made in its conference's or room's own Space ---------------------------


def test_mint_and_reset_from_admin_use_the_rooms_own_space(
    sandbox, admin_client, other_space, sandbox_b
):
    other = sandbox_b
    room = services.room_create(data={"name": "studio", "space": other_space})
    conference = services.conference_create(
        data={"name": "board", "display_name": "Board", "space": other_space}
    )
    token = conference.tokens.get(name="guest")
    assert token.space == other_space
    old = token.token

    url = reverse("admin:rooms_room_mint_token", args=[room.pk])
    _, nonce = mint_form(admin_client, url)
    minted = admin_client.post(url, {"nonce": nonce, "role": "guest", "media_allowed": "all"})
    assert minted.context["token"]
    assert len(room_token_requests(other, room)) == 1
    assert IssuedRoomToken.objects.get().space == other_space

    reset_page(admin_client, conference, token)
    token.refresh_from_db()
    assert token.token != old
    assert other.conference_tokens[token.remote_id]["token"] == token.token
    # None of it reached the environment's Space.
    assert sandbox.requests == []


def test_mint_reset_and_refresh_in_a_space_that_refuses_its_token_fail_with_the_401(
    sandbox, refusing_space, room, conference
):
    # Rows of the Space whose stored token the sandbox refuses (moved there quietly).
    Room.objects.filter(pk=room.pk).update(space=refusing_space)
    type(conference).objects.filter(pk=conference.pk).update(space=refusing_space)
    room.refresh_from_db()
    conference.refresh_from_db()
    token = conference.tokens.get(name="guest")
    old = token.token
    before = len(sandbox.requests)

    with pytest.raises(AuthenticationError):
        tokens.room_token_mint(room=room)
    with pytest.raises(AuthenticationError):
        tokens.conference_token_reset(token=token)
    with pytest.raises(AuthenticationError):
        tokens.conference_tokens_refresh(conference=conference)

    assert [r["status"] for r in sandbox.requests[before:]] == [401, 401, 401]
    assert not IssuedRoomToken.objects.exists()
    assert ConferenceToken.objects.get(pk=token.pk).token == old
