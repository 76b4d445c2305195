"""Hardening: who reaches which admin page, where secrets never appear, production settings."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import URLPattern, URLResolver, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from rooms import services, sync
from rooms.models import (
    ActionRun,
    Alert,
    AlertKind,
    AlertSubscription,
    AuditEntry,
    Conference,
    ConferenceToken,
    IssuedRoomToken,
    Recording,
    Room,
    RoomSession,
    Space,
    Stream,
    SyncRun,
    VideoLog,
    WebhookEndpoint,
)
from rooms.services import streams, tokens
from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_PROJECT_ID

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
BASIC_AUTH = base64.b64encode(f"{SANDBOX_PROJECT_ID}:{SANDBOX_API_TOKEN}".encode()).decode()
# Admin routes that are public by design or are not pages about the portal's data.
NOT_CRAWLED = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "jsi18n",
    "autocomplete",
    "view_on_site",
}
# Custom views that take only POST (GET answers 405 to those allowed in).
POST_ONLY = {
    "rooms_conference_token_reveal",
    "rooms_syncrun_sync_now",
    "rooms_recording_download",
    "rooms_conference_promote",
    "rooms_room_promote",
}


@pytest.fixture
def world(sandbox, admin_user):
    """One of everything the admin shows: a conference with tokens, a room, runs, audits."""
    conference = services.conference_create(
        data={"name": "secret-board", "display_name": "Board"}, actor=admin_user
    )
    services.conference_update(
        conference=conference, data={"display_name": "Board v2"}, actor=admin_user
    )
    room = services.room_create(data={"name": "secret-room", "max_members": 5})
    services.room_update(room=room, data={"max_members": 6}, actor=admin_user)
    _, issued = tokens.room_token_mint(room=room, role="guest", actor=admin_user)
    run = sync.sync_rooms()
    stream = streams.stream_create(
        owner=room, url="rtmps://live.example-cdn.net/app/crawl-stream-key-3f1e", actor=admin_user
    )
    token = conference.tokens.get(name="guest")
    Group.objects.create(name="room-staff")
    accounts = {  # a login failure, a log-in and a TOTP device, for the account pages
        AccessAttempt: AccessAttempt.objects.create(
            username="someone", ip_address="127.0.0.9", user_agent="x", http_accept="*/*",
            path_info="/admin/login/", failures_since_start=2,
        ),
        AccessLog: AccessLog.objects.create(
            username=admin_user.username, ip_address="127.0.0.1", user_agent="x",
            http_accept="*/*", path_info="/admin/login/",
        ),
        TOTPDevice: TOTPDevice.objects.create(
            user=get_user_model().objects.create_user("enrolled", is_staff=True), name="phone"
        ),
    }
    audit = {
        kind: AuditEntry.objects.filter(
            object_pk=str(obj.pk), action=AuditEntry.Action.UPDATE,
            content_type__model=kind,
        ).latest("pk")
        for kind, obj in (("conference", conference), ("room", room))
    }
    session = RoomSession.objects.create(
        remote_id="crawl-session", room=room, room_name=room.name, status="completed"
    )
    recording = Recording.objects.create(
        remote_id="crawl-recording", session=session, remote_session_id=session.remote_id,
        room_name=room.name, status="completed", size_in_bytes=4096,
    )
    log = VideoLog.objects.create(remote_id="crawl-log", room_name=room.name, status="completed")
    alerts = {  # an alert, a webhook endpoint and an email subscription, for their pages
        Alert: Alert.objects.create(
            kind=AlertKind.PUSH_FAILED, subject="room", summary="refused", link="/admin/"
        ),
        WebhookEndpoint: WebhookEndpoint.objects.create(
            name="chat", url="https://hooks.example.test/a", secret="whsec-crawl-71c0d2e9a4"
        ),
        AlertSubscription: AlertSubscription.objects.create(
            user=admin_user, kinds=[AlertKind.PUSH_FAILED]
        ),
    }
    return {
        "log": log,
        "alerts": alerts,
        "stream": stream,
        "recording": recording,
        "conference": conference,
        "room": room,
        "token": token,
        "issued": issued,
        "run": run,
        "audit": audit,
        "sandbox": sandbox,
        "accounts": accounts,
        "session": session,
    }


def token_values(sandbox) -> list[str]:
    """Every conference token value and stream URL (with its key) SignalWire holds now."""
    return [
        *(t["token"] for t in sandbox.conference_tokens.values()),
        *(s["url"] for s in sandbox.streams.values()),
    ]


def admin_names() -> set[str]:
    """Every named route of the admin site."""
    found: set[str] = set()

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.add(pattern.name)

    walk(admin.site.get_urls())
    return found


def admin_urls(world) -> dict[str, str]:
    """The URL of every admin page, by route name, filled in with the world's objects."""
    objects = {
        Conference: world["conference"],
        Room: world["room"],
        ConferenceToken: world["token"],
        IssuedRoomToken: world["issued"],
        SyncRun: world["run"],
        ActionRun: ActionRun.objects.get_or_create(action="refresh", kind="conference")[0],
        AuditEntry: world["audit"]["room"],
        RoomSession: world["session"],
        Recording: world["recording"],
        Stream: world["stream"],
        VideoLog: world["log"],
        Space: Space.objects.get(from_settings=True),
        **world["accounts"],
        **world["alerts"],
    }
    urls = {"index": reverse("admin:index")}
    for app in {m._meta.app_label for m in admin.site._registry}:
        urls["app_list"] = urls.get("app_list", reverse("admin:app_list", args=[app]))
        urls[f"app_list:{app}"] = reverse("admin:app_list", args=[app])
    for model in admin.site._registry:
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        urls[f"{info}_changelist"] = reverse(f"admin:{info}_changelist")
        urls[f"{info}_add"] = reverse(f"admin:{info}_add")
        obj = objects.get(model)
        if obj is None and model._meta.app_label == "auth":
            obj = model.objects.order_by("pk").first()
        if obj is not None:
            for view in ("change", "history", "delete"):
                urls[f"{info}_{view}"] = reverse(f"admin:{info}_{view}", args=[obj.pk])
    first_user = get_user_model().objects.order_by("pk").first()
    urls["auth_user_password_change"] = reverse(
        "admin:auth_user_password_change", args=[first_user.pk]
    )
    conference, room, token = world["conference"], world["room"], world["token"]
    urls["rooms_room_mint_token"] = reverse("admin:rooms_room_mint_token", args=[room.pk])
    for view in ("reveal", "reset"):
        urls[f"rooms_conference_token_{view}"] = reverse(
            f"admin:rooms_conference_token_{view}", args=[conference.pk, token.pk]
        )
    urls["rooms_syncrun_sync_now"] = reverse("admin:rooms_syncrun_sync_now")
    action_run = objects[ActionRun]
    for view in ("progress", "restore"):
        urls[f"rooms_actionrun_{view}"] = reverse(
            f"admin:rooms_actionrun_{view}", args=[action_run.pk]
        )
    urls["rooms_roomsession_events"] = reverse(
        "admin:rooms_roomsession_events", args=[world["session"].pk]
    )
    urls["rooms_recording_download"] = reverse(
        "admin:rooms_recording_download", args=[world["recording"].pk]
    )
    urls["rooms_stream_reveal"] = reverse("admin:rooms_stream_reveal", args=[world["stream"].pk])
    urls["rooms_usage"] = reverse("admin:rooms_usage")
    urls["rooms_usage_csv"] = reverse("admin:rooms_usage_csv")
    urls["rooms_usage_chart"] = reverse("admin:rooms_usage_chart", args=["minutes"])
    for kind, obj in (("conference", conference), ("room", room)):
        urls[f"rooms_{kind}_audit_restore"] = reverse(
            f"admin:rooms_{kind}_audit_restore", args=[obj.pk, world["audit"][kind].pk]
        )
        for view in ("compare", "promote"):
            urls[f"rooms_{kind}_{view}"] = reverse(f"admin:rooms_{kind}_{view}", args=[obj.pk])
    return urls


def test_the_crawl_covers_every_admin_route(world):
    crawled = {name.split(":")[0] for name in admin_urls(world)}
    missing = admin_names() - NOT_CRAWLED - crawled
    assert not missing, f"admin routes the hardening crawl does not visit: {sorted(missing)}"


# --- who gets in -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "non-staff user"])
def test_outsiders_get_the_login_page_for_every_admin_url(world, client, django_user_model, who):
    if who == "non-staff user":
        client.force_login(django_user_model.objects.create_user("visitor", password="pw"))
    login = reverse("admin:login")
    secrets = [*token_values(world["sandbox"]), SANDBOX_API_TOKEN]

    for name, url in admin_urls(world).items():
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, (name, method, response.status_code)
            assert response["Location"].startswith(login), (name, method)
            assert not any(s in response.content.decode() for s in secrets)
    # Nothing any of those requests could have done happened.
    sandbox = world["sandbox"]
    assert not [r for r in sandbox.requests if r["path"].endswith("/reset")]
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()
    assert SyncRun.objects.count() == 1


def staff_with(django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_staff_without_permissions_get_neither_pages_nor_data(world, client, django_user_model):
    client.force_login(staff_with(django_user_model))
    secrets = [*token_values(world["sandbox"]), SANDBOX_API_TOKEN]
    names = ("secret-board", "secret-room")
    for name, url in admin_urls(world).items():
        if name == "index":
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            html = response.content.decode()
            assert response.status_code in (403, 404, 405), (name, method, response.status_code)
            assert not any(s in html for s in secrets), (name, method)
            assert not any(n in html for n in names), (name, method)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200 and "secret-room" not in index.content.decode()
    sandbox = world["sandbox"]
    assert not [r for r in sandbox.requests if r["path"].endswith("/reset")]
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()
    assert IssuedRoomToken.objects.count() == 1


def test_viewers_see_masked_tokens_and_cannot_reveal_reset_mint_or_sync(
    world, client, django_user_model
):
    client.force_login(
        staff_with(django_user_model, "view_conference", "view_conferencetoken", "view_room",
                   "view_syncrun")
    )
    urls = admin_urls(world)
    page = client.get(urls["rooms_conference_change"])
    html = page.content.decode()
    assert page.status_code == 200
    assert world["token"].masked in html
    assert not any(value in html for value in token_values(world["sandbox"]))
    assert "data-reveal-url" not in html  # no reveal or copy controls, no embed snippet

    assert client.post(urls["rooms_conference_token_reveal"]).status_code == 403
    for name in ("rooms_conference_token_reset", "rooms_room_mint_token",
                 "rooms_conference_audit_restore"):
        assert client.get(urls[name]).status_code == 403, name
        assert client.post(urls[name]).status_code == 403, name
    assert client.post(urls["rooms_syncrun_sync_now"]).status_code == 403
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).exists()


# --- crafted query strings ---------------------------------------------------------------

# A few of each kind; tests/test_querystrings.py walks every changelist with many more.
CRAFTED_QUERIES = (
    "name__regex=(((",
    "content_type=abc",
    "o=garbage&p=abc",
    "p=999999999999999999999",
    "_to_field=password",
    "e=1",
    "id__gt=99999999999999999999999",
    "timestamp__year=abcd",
    "join_from=not-a-date",
    "q=%00",
)


def test_crafted_query_strings_on_any_admin_page_never_answer_5xx(world, admin_client):
    failures = []
    for name, url in admin_urls(world).items():
        for query in CRAFTED_QUERIES:
            status = admin_client.get(f"{url}?{query}").status_code
            if status >= 500:
                failures.append((name, query, status))
    assert failures == []


# --- secrets on pages, in logs and in audit rows ----------------------------------------


def crawl(client, urls: dict[str, str]) -> dict[str, str]:
    """GET every admin URL as a superuser; return the HTML by route name."""
    pages = {}
    for name, url in urls.items():
        response = client.get(url)
        # Read-only records refuse add, change and delete even to superusers (403); the
        # POST-only endpoints answer GET with 405.
        expected = 405 if name in POST_ONLY else (200, 403)
        assert response.status_code in (expected if isinstance(expected, tuple)
                                         else (expected,)), (name, response.status_code)
        pages[name] = response.content.decode()
    return pages


def test_no_page_carries_the_api_token_or_a_token_value(world, admin_client):
    sandbox = world["sandbox"]
    # Leave errors behind too: a failed sync run and a row whose push waits.
    sandbox.inject_fault(503)
    services.room_update(room=world["room"], data={"max_members": 9})
    with pytest.raises(Exception):  # noqa: B017 - any SignalWire error will do
        sync.sync_conferences()
    sandbox.clear_faults()

    pages = crawl(admin_client, admin_urls(world))
    for extra in ("?sync_state=pending_push", "?q=secret", "?deleted_remotely=yes"):
        pages[f"rooms_room_changelist{extra}"] = admin_client.get(
            reverse("admin:rooms_room_changelist") + extra
        ).content.decode()

    secrets = {"API token": SANDBOX_API_TOKEN, "basic auth": BASIC_AUTH}
    secrets.update({f"token {i}": v for i, v in enumerate(token_values(sandbox))})
    leaks = [(page, what) for page, html in pages.items() for what, s in secrets.items()
             if s in html]
    assert leaks == []
    assert len(pages) >= 30
    assert sum(1 for html in pages.values() if "secret-" in html) >= 10


def test_the_api_token_is_in_no_log_and_no_audit_row(
    world, admin_client, caplog, settings, queued, run_queued
):
    sandbox = world["sandbox"]
    conference, room, token = world["conference"], world["room"], world["token"]
    before_reset = token.token
    settings.SIGNALWIRE_RETRIES = 1
    caplog.set_level(logging.DEBUG)

    # A run of operations, with faults: outages, rate limits, dropped connections.
    sandbox.inject_fault(503)
    services.room_update(room=room, data={"display_name": "During outage"})
    sandbox.clear_faults()
    sandbox.inject_fault(429, retry_after=0)
    services.conference_update(conference=conference, data={"description": "Rate limited"})
    sandbox.clear_faults()
    sandbox.inject_fault("drop", count=2)
    run_queued()
    sandbox.clear_faults()
    run_queued()
    services.push_enqueue("room", room.pk)
    services.push_enqueue("conference", conference.pk)
    run_queued()
    assert Room.objects.get(pk=room.pk).display_name == "During outage"
    tokens.conference_token_reset(token=token)
    tokens.conference_token_reveal(token=ConferenceToken.objects.get(pk=token.pk))
    reveal = reverse("admin:rooms_conference_token_reveal", args=[conference.pk, token.pk])
    assert admin_client.post(reveal).status_code == 200
    tokens.room_token_mint(room=room, role="moderator")
    sync.sync_conferences()
    sync.sync_conference_tokens()
    settings.SIGNALWIRE_API_TOKEN = "wrong-" + SANDBOX_API_TOKEN  # a 401 is logged too
    with pytest.raises(Exception):  # noqa: B017 - the authentication error
        sync.sync_rooms()
    settings.SIGNALWIRE_API_TOKEN = SANDBOX_API_TOKEN
    assert len(caplog.records) > 10

    secrets = [SANDBOX_API_TOKEN, BASIC_AUTH, before_reset, *token_values(sandbox)]
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert not [s for s in secrets if s in logged]
    audit = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert AuditEntry.objects.count() > 10
    assert not [s for s in secrets if s in audit]
    recorded = json.dumps(
        [list(SyncRun.objects.values("error")),
         list(Room.objects.values("last_error", "raw")),
         list(Conference.objects.values("last_error", "raw"))],
        default=str,
    )
    assert SANDBOX_API_TOKEN not in recorded and BASIC_AUTH not in recorded


@pytest.mark.django_db(transaction=True)
def test_the_workers_log_holds_no_api_token(celery_worker, sandbox):
    from rooms.tasks import sync as sync_tasks
    from tests.waiting import wait_until

    sandbox.seed(conferences=3, rooms=2, seed=5)
    sync_tasks.sync_conferences.delay(trigger="hardening")
    sync_tasks.fetch_missing_tokens.delay(trigger="hardening")
    wait_until(
        SyncRun.objects.filter(
            kind=SyncRun.Kind.TOKENS, outcome=SyncRun.Outcome.SUCCEEDED
        ).exists,
        timeout=30,
        message="the worker to finish the sync and token fetch",
    )
    assert ConferenceToken.objects.count() == 6

    text = (ROOT / ".run" / "test-worker.log").read_bytes()
    assert b"GET /api/video/conferences" in text  # the worker did log its requests
    for secret in (SANDBOX_API_TOKEN, BASIC_AUTH, *token_values(sandbox)):
        assert secret.encode() not in text


# --- production settings ---------------------------------------------------------------

PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.urls import reverse
print(json.dumps({name: getattr(settings, name) for name in %r} | {
    "admin_index": reverse("admin:index")}, default=str))
"""
PRODUCTION_VALUES = [
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SECURE",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_PROXY_SSL_HEADER",
    "X_FRAME_OPTIONS",
    "ADMIN_URL",
]


def settings_in_subprocess(module: str, **env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SIGNALWIRE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE=module,
        DJANGO_SECRET_KEY="p" * 30 + "-production-like-secret-key-123456789",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://portal.example.com",
        SIGNALWIRE_SPACE_URL="example.signalwire.com",
        SIGNALWIRE_PROJECT_ID="p-123",
        SIGNALWIRE_API_TOKEN="PT-not-a-real-token",
    )
    env.update({"DJANGO_DEBUG": "false", **env_extra})
    result = subprocess.run(
        [sys.executable, "-c", PROBE % PRODUCTION_VALUES],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_are_secure_when_debug_is_off():
    values = settings_in_subprocess("portal.settings")

    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://portal.example.com"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["admin_index"] == "/admin/"


def test_debug_relaxes_only_what_local_http_needs():
    values = settings_in_subprocess("portal.settings", DJANGO_DEBUG="true")

    assert values["DEBUG"] is True
    assert values["SESSION_COOKIE_SECURE"] is False and values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"


ADMIN_URL_PROBE = """
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse
setup_test_environment()
client = Client()
moved = client.get("/ops-desk-7f3a/")
old = client.get("/admin/")
print(reverse("admin:index"), moved.status_code, moved["Location"], old.status_code)
"""


def test_the_admin_lives_at_the_configured_url():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings_test", DJANGO_ADMIN_URL="ops-desk-7f3a/")
    result = subprocess.run(
        [sys.executable, "-c", ADMIN_URL_PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    index, status, location, old_status = result.stdout.split()[-4:]
    assert index == "/ops-desk-7f3a/"
    assert (status, old_status) == ("302", "404")
    assert location.startswith("/ops-desk-7f3a/login/")


# --- health ----------------------------------------------------------------------------


def test_health_reports_database_redis_and_last_sync_without_secrets(
    sandbox, client, settings, redis_client
):
    sandbox.seed(rooms=2, seed=81)
    run = sync.sync_rooms()

    response = client.get("/health/")  # no login needed

    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["database"], body["redis"]) == (True, "ok", "ok")
    assert body["last_sync"]["kind"] == "rooms"
    assert body["last_sync"]["outcome"] == run.outcome == "succeeded"
    text = response.content.decode()
    for secret in (SANDBOX_API_TOKEN, BASIC_AUTH, settings.SECRET_KEY, SANDBOX_PROJECT_ID,
                   settings.SIGNALWIRE_SPACE_URL, str(settings.DATABASES["default"]["NAME"])):
        assert secret not in text


def test_health_never_echoes_a_connection_secret(client, settings):
    settings.REDIS_URL = "redis://:redis-pass-9f2c@127.0.0.1:1/0"

    response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")
    assert "redis-pass-9f2c" not in response.content.decode()
