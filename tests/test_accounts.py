"""Staff accounts: login lockout, the TOTP second factor, idle sessions, the user tools."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core.checks import Warning as CheckWarning
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff.checks import check_second_factor_required
from tests.browser_helpers import totp_code

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "a-long-staff-password-42"
LOCKED = "Too many failed log-in attempts"


@pytest.fixture
def staff_user(django_user_model):
    user = django_user_model.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_conference", "view_room"])
    )
    return user


def post_login(client, username: str, password: str, address: str = "127.0.0.1", **extra):
    """Submit admin's login form as a browser at that address would."""
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
        **extra,
    )


def logged_in(client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


# --- lockout ---------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(client, staff_user):
    for _ in range(4):
        response = post_login(client, "clerk", "guess")
        assert response.status_code == 200 and LOCKED not in response.content.decode()
    fifth = post_login(client, "clerk", "guess")
    assert fifth.status_code == 429
    assert LOCKED in fifth.content.decode() and "15 minutes" in fifth.content.decode()
    assert 'id="login-form"' in fifth.content.decode()  # still the login page

    right = post_login(client, "clerk", PASSWORD)
    assert right.status_code == 429 and LOCKED in right.content.decode()
    assert not logged_in(client)


def test_four_failures_then_the_right_password_logs_in(client, staff_user):
    for _ in range(4):
        post_login(client, "clerk", "guess")
    assert post_login(client, "clerk", PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_locked_account_stays_locked_from_another_address(client, staff_user):
    for _ in range(5):
        post_login(client, "clerk", "guess", address="198.51.100.7")
    assert post_login(client, "clerk", PASSWORD, address="203.0.113.5").status_code == 429
    assert not logged_in(client)


def test_an_address_guessing_many_accounts_is_locked_out(client, staff_user):
    for name in ("alice", "bob", "carol", "dave", "erin"):
        post_login(client, name, "guess", address="198.51.100.7")
    assert post_login(client, "clerk", PASSWORD, address="198.51.100.7").status_code == 429
    # The account itself did nothing wrong: from elsewhere it logs in.
    assert post_login(client, "clerk", PASSWORD, address="203.0.113.5").status_code == 302


def test_logging_in_to_ones_own_account_does_not_reset_the_address_count(
    client, staff_user, django_user_model
):
    django_user_model.objects.create_user("boss", password="the-boss-password-9", is_staff=True)
    for _ in range(4):
        post_login(client, "boss", "guess", address="198.51.100.7")
    assert post_login(client, "clerk", PASSWORD, address="198.51.100.7").status_code == 302
    client.logout()
    post_login(client, "boss", "guess", address="198.51.100.7")
    locked = post_login(client, "boss", "the-boss-password-9", address="198.51.100.7")
    assert locked.status_code == 429


def test_the_lockout_ends_after_the_cool_off(client, staff_user, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=30)
    for _ in range(5):
        post_login(client, "clerk", "guess")
    locked = post_login(client, "clerk", PASSWORD)
    assert locked.status_code == 429 and "30 minutes" in locked.content.decode()
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=29))
    assert post_login(client, "clerk", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=31))
    assert post_login(client, "clerk", PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_each_client_address_counts_apart(client, staff_user, settings):
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    for name in ("alice", "bob", "carol", "dave", "erin"):
        # The attacker also sends its own X-Forwarded-For entry, which must not count.
        post_login(client, name, "guess", address=proxy,
                   HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.7")
    locked = post_login(client, "clerk", PASSWORD, address=proxy,
                        HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert locked.status_code == 429
    other = post_login(client, "clerk", PASSWORD, address=proxy,
                       HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.5")
    assert other.status_code == 302
    client.logout()
    # A header the proxy did not write well counts as the proxy's own address.
    for _ in range(5):
        post_login(client, "nobody", "guess", address=proxy, HTTP_X_FORWARDED_FOR="not-an-ip")
    assert AccessAttempt.objects.filter(ip_address=proxy).exists()


def test_superusers_see_lockouts_and_clear_them(client, staff_user, admin_user):
    for _ in range(5):
        post_login(client, "clerk", "guess")
    assert post_login(client, "clerk", PASSWORD).status_code == 429

    boss = type(client)()
    boss.force_login(admin_user)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = boss.get(changelist, {"locked": "yes"}).content.decode()
    assert "clerk" in page and "Locked out until" in page
    assert "guess" not in page  # what was posted stays off the page
    attempt = AccessAttempt.objects.get(username="clerk")
    detail = boss.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk]))
    assert detail.status_code == 200 and "guess" not in detail.content.decode()

    cleared = boss.post(
        changelist, {"action": "clear_lockouts", "_selected_action": [attempt.pk]}, follow=True
    )
    assert "Cleared 1 failure record" in cleared.content.decode()
    assert post_login(client, "clerk", PASSWORD).status_code == 302
    assert logged_in(client)


def test_lockouts_are_for_superusers_only(client, django_user_model):
    AccessAttempt.objects.create(
        username="someone", ip_address="192.0.2.4", user_agent="x", http_accept="*/*",
        path_info="/admin/login/", failures_since_start=5,
    )
    clerk = django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(content_type__app_label="axes"))
    client.force_login(clerk)
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    assert b"Staff log-ins and lockouts" not in client.get(reverse("admin:index")).content


def test_failed_passwords_never_reach_the_log(client, staff_user, caplog):
    caplog.set_level("DEBUG")
    for _ in range(5):
        post_login(client, "clerk", "my-secret-guess-77")
    assert "my-secret-guess-77" not in caplog.text
    assert "my-secret-guess-77" not in AccessAttempt.objects.get().post_data


# --- second factor ----------------------------------------------------------------------


@pytest.fixture
def require_otp(settings):
    settings.PORTAL_REQUIRE_OTP = True
    return settings


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def test_required_second_factor_leads_staff_without_one_to_enrolment(
    client, staff_user, require_otp
):
    response = post_login(client, "clerk", PASSWORD)
    index = client.get(response["Location"])
    enrol = reverse("portal_otp_enrol")
    assert index.status_code == 302 and index["Location"].startswith(enrol)
    # No admin page, and no data, before enrolment.
    conferences = client.get(reverse("admin:rooms_conference_changelist"))
    assert conferences.status_code == 302 and conferences["Location"].startswith(enrol)

    page = client.get(index["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "requires a second factor" in html
    device = TOTPDevice.objects.get(user=staff_user, confirmed=False)
    secret = re.search(r'id="otp-secret">([A-Z2-7]+)<', html).group(1)
    assert "otpauth://totp/" in html and f"secret={secret}" in html
    assert "no-store" in page["Cache-Control"]

    wrong = client.post(index["Location"], {"code": "000000" if totp_code(device) != "000000"
                                            else "111111"})
    assert "That code is not right" in wrong.content.decode()
    assert secret in wrong.content.decode()  # the same key stays on the page to retry
    device.throttling_failure_timestamp = None  # no waiting for the throttle in a test
    device.save()

    done = client.post(index["Location"], {"code": totp_code(device)})
    assert done.status_code == 302 and done["Location"] == reverse("admin:index")
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("admin:rooms_conference_changelist")).status_code == 200


def test_staff_with_a_device_enter_a_code_before_any_admin_page(client, staff_user):
    device = enrolled(staff_user)  # the second factor is optional here, but enrolled
    post_login(client, "clerk", PASSWORD)
    verify = reverse("portal_otp_verify")
    for name in ("admin:index", "admin:rooms_room_changelist", "admin:rooms_conference_add"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(verify), name

    target = reverse("admin:rooms_room_changelist")
    wrong = client.post(f"{verify}?next={target}", {"code": "12345"})
    assert "six digits" in wrong.content.decode()
    done = client.post(f"{verify}?next={target}", {"code": totp_code(device)})
    assert done.status_code == 302 and done["Location"] == target
    assert client.get(target).status_code == 200


def test_the_code_step_refuses_a_replayed_code_and_offsite_next(client, staff_user):
    device = enrolled(staff_user)
    code = totp_code(device)
    client.force_login(staff_user)
    verify = reverse("portal_otp_verify")
    done = client.post(f"{verify}?next=https://evil.example/", {"code": code})
    assert done["Location"] == reverse("admin:index")

    other = type(client)()
    other.force_login(staff_user)
    replay = other.post(verify, {"code": code})
    assert replay.status_code == 200 and "not right" in replay.content.decode()
    assert other.get(reverse("admin:index")).status_code == 302


def test_optional_second_factor_lets_staff_without_one_in(client, staff_user):
    post_login(client, "clerk", PASSWORD)
    assert logged_in(client)
    assert not TOTPDevice.objects.exists()


def test_the_key_is_shown_once_and_kept_out_of_sessions_and_admin_pages(
    client, staff_user, admin_user, require_otp
):
    client.force_login(staff_user)
    enrol = reverse("portal_otp_enrol")
    first = client.get(enrol).content.decode()
    key = re.search(r'id="otp-secret">([A-Z2-7]+)<', first).group(1)
    second = client.get(enrol).content.decode()
    assert key not in second  # reloading made a new key; the first is gone
    device = TOTPDevice.objects.get(user=staff_user, confirmed=False)
    assert client.post(enrol, {"code": totp_code(device)}).status_code == 302
    shown = re.search(r'id="otp-secret">([A-Z2-7]+)<', second).group(1)

    after = client.get(enrol).content.decode()  # a verified user may enrol a new app
    assert shown not in after and "replaces the old one" in after
    sessions = "".join(str(s.get_decoded()) for s in Session.objects.all())
    assert shown not in sessions and device.key not in sessions

    require_otp.PORTAL_REQUIRE_OTP = False  # the superuser has no device of their own
    boss = type(client)()
    boss.force_login(admin_user)
    for url in (
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
    ):
        html = boss.get(url).content.decode()
        assert "clerk" in html and device.key not in html and shown not in html


def test_a_verified_user_moving_to_a_new_app_replaces_the_old_device(client, staff_user):
    old = enrolled(staff_user)
    client.force_login(staff_user)
    enrol = reverse("portal_otp_enrol")
    assert client.get(enrol)["Location"].startswith(reverse("portal_otp_verify"))
    client.post(reverse("portal_otp_verify"), {"code": totp_code(old)})

    assert "replaces the old one" in client.get(enrol).content.decode()
    new = TOTPDevice.objects.get(user=staff_user, confirmed=False)
    assert client.post(enrol, {"code": totp_code(new)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=staff_user)) == [new]
    new.refresh_from_db()
    assert new.confirmed


def test_a_superuser_deleting_a_device_lets_its_user_enrol_again(
    client, staff_user, admin_user, require_otp
):
    device = enrolled(staff_user)
    boss = type(client)()
    boss.force_login(admin_user)
    TOTPDevice.objects.create(user=admin_user, name="boss phone", confirmed=True)
    session = boss.session
    session["otp_device_id"] = TOTPDevice.objects.get(user=admin_user).persistent_id
    session.save()
    delete = reverse("admin:otp_totp_totpdevice_delete", args=[device.pk])
    assert boss.post(delete, {"post": "yes"}).status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()

    client.force_login(staff_user)
    response = client.get(reverse("admin:index"))
    assert response["Location"].startswith(reverse("portal_otp_enrol"))


def test_check_deploy_warns_when_the_second_factor_is_optional(settings):
    settings.PORTAL_REQUIRE_OTP = False
    problems = check_second_factor_required()
    assert [p.id for p in problems] == ["rooms.W001"]
    assert isinstance(problems[0], CheckWarning) and "PORTAL_REQUIRE_OTP" in problems[0].hint
    settings.PORTAL_REQUIRE_OTP = True
    assert check_second_factor_required() == []


SETTINGS_PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.PORTAL_REQUIRE_OTP, s.SESSION_COOKIE_AGE, s.SESSION_SAVE_EVERY_REQUEST, "
    "s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()))"
)


def _settings_with(**env_extra) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_SECRET_KEY="probe-" + "k" * 40,
        PORTAL_ENV_FILE="",
        **env_extra,
    )
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-5:]


def test_settings_defaults_and_their_environment_variables():
    # DEBUG off (the default): a second factor is required; a working day of idle time.
    assert _settings_with() == ["True", "28800", "True", "5", "900"]
    assert _settings_with(DJANGO_DEBUG="true")[0] == "False"
    assert _settings_with(PORTAL_REQUIRE_OTP="false")[0] == "False"
    tuned = _settings_with(
        PORTAL_SESSION_IDLE_SECONDS="3600",
        PORTAL_LOGIN_FAILURE_LIMIT="3",
        PORTAL_LOGIN_COOLOFF_MINUTES="30",
    )
    assert tuned == ["True", "3600", "True", "3", "1800"]


def test_check_deploy_prints_the_warning_for_an_optional_second_factor():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "SIGNALWIRE_", "PORTAL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_SECRET_KEY="x" * 20 + "a-long-production-secret-key-1234567890",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        SIGNALWIRE_SPACE_URL="example.signalwire.com",
        SIGNALWIRE_PROJECT_ID="p-123",
        SIGNALWIRE_API_TOKEN="PT-not-a-real-token",
        PORTAL_ENV_FILE="",
        PORTAL_REQUIRE_OTP="false",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert "rooms.W001" in result.stdout + result.stderr


# --- idle sessions ----------------------------------------------------------------------


def test_a_staff_session_ends_after_a_working_day_without_requests(client, staff_user):
    response = post_login(client, "clerk", PASSWORD)
    assert response.cookies["sessionid"]["max-age"] == 8 * 3600
    session = Session.objects.get()
    assert abs(session.expire_date - (timezone.now() + timedelta(hours=8))) < timedelta(minutes=1)

    # An hour before the end, any request starts a new working day.
    Session.objects.update(expire_date=timezone.now() + timedelta(hours=1))
    assert logged_in(client)
    renewed = Session.objects.get().expire_date
    assert abs(renewed - (timezone.now() + timedelta(hours=8))) < timedelta(minutes=1)

    # Eight idle hours later, the session is gone.
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


# --- the user tools --------------------------------------------------------------------


def test_every_link_in_the_user_tools_leads_somewhere(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    tools = html.split('id="user-tools"', 1)[1].split("</div>", 1)[0]
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', tools)
    assert "View site" not in tools
    assert {text.strip() for _, text in links} >= {"Two-factor authentication",
                                                   "Change password"}
    for href, text in links:
        assert admin_client.get(href).status_code == 200, (text, href)
