"""Alert drills: a failing sync, a thousand refused pushes and a silent worker, end to end.

The sandbox Space over HTTP, real Redis, the session's real Celery worker delivering the
messages, a real SMTP server and a real webhook receiver on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from rooms import services, sync
from rooms.connections import redis_client
from rooms.models import (
    Alert,
    AlertDelivery,
    AlertKind,
    AlertSubscription,
    Room,
    SyncState,
    WebhookEndpoint,
)
from rooms.services import alerts
from rooms.signalwire.errors import SignalWireError
from tests.conftest import SANDBOX_API_TOKEN, worker_settle
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec-drill-5f1e9a0c7b3d2a44"
# The test settings name the portal so for the test process and the worker alike.
PORTAL_NAME = "Acme meetings portal"

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def listeners(settings, smtp_inbox, webhook_receiver):
    """One subscribed staff member, one webhook endpoint; returns (inbox, receiver)."""
    user = get_user_model().objects.create_user(
        "oncall", email="oncall@example.test", password="x", is_staff=True
    )
    AlertSubscription.objects.create(
        user=user, kinds=[AlertKind.SYNC_FAILING, AlertKind.PUSH_FAILED, AlertKind.WORKER_SILENT]
    )
    # A staff member who chose other kinds hears nothing of these.
    other = get_user_model().objects.create_user(
        "quiet", email="quiet@example.test", password="x", is_staff=True
    )
    AlertSubscription.objects.create(user=other, kinds=[AlertKind.LOCKOUT])
    WebhookEndpoint.objects.create(name="chat", url=webhook_receiver.url, secret=SECRET)
    return smtp_inbox, webhook_receiver


def verified(post: dict) -> dict:
    """The webhook's JSON body, after checking its signature with the secret."""
    expected = "sha256=" + hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(post["headers"]["X-Portal-Signature"], expected)
    return json.loads(post["body"])


def keep_for_the_record(name: str, mails: list, posts: list) -> None:
    """Write what the drill received (secrets masked) under artifacts/ for the closing note."""
    out = ROOT / "artifacts" / "alert-drill"
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for sender, to, message in mails:
        lines += [f"--- email from {sender} to {', '.join(to)}",
                  f"Subject: {message['Subject']}", message.get_content().strip()]
    for post in posts:
        signature = post["headers"]["X-Portal-Signature"]
        lines += [f"--- webhook POST {post['path']} X-Portal-Signature: {signature[:15]}…",
                  post["body"].decode()]
    (out / f"{name}.txt").write_text("\n".join(lines).replace(SECRET, "whsec-***") + "\n")


def no_secret_in(mails: list, posts: list) -> None:
    text = "".join(m.as_string() for _, _, m in mails) + "".join(
        p["body"].decode() + json.dumps(p["headers"]) for p in posts
    )
    for secret in (SANDBOX_API_TOKEN, SECRET):
        assert secret not in text


def test_a_sync_failing_for_three_intervals_sends_one_alert_and_one_resolved(
    sandbox, listeners, celery_worker, settings
):
    inbox, receiver = listeners
    # Short intervals: the drill's three take seconds (the alert reads beat's schedule).
    schedule = {name: dict(entry) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    schedule["sync-rooms"]["schedule"] = 2.0
    settings.CELERY_BEAT_SCHEDULE = schedule
    sandbox.seed(rooms=2, seed=26)
    sync.sync_rooms()
    sandbox.inject_fault(503)  # SignalWire answers 503 to everything

    for interval in range(3):
        with pytest.raises(SignalWireError):
            sync.sync_rooms()
        alerts.check_alerts()  # the periodic check after each interval
        if interval < 2:
            assert not Alert.objects.exists()  # two failures are not yet a failing sync

    wait_until(lambda: len(inbox.received()) == 1 and len(receiver.received()) == 1,
               message="one email and one webhook about the failing sync")
    # A fourth failure and more checks raise the count; nobody is told again.
    with pytest.raises(SignalWireError):
        sync.sync_rooms()
    alerts.check_alerts()
    alerts.check_alerts()
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count, alert.is_open) == (
        AlertKind.SYNC_FAILING, "rooms", 4, True
    )

    sandbox.clear_faults()  # SignalWire recovers
    sync.sync_rooms()
    alerts.check_alerts()
    alerts.check_alerts()

    wait_until(lambda: len(inbox.received()) == 2 and len(receiver.received()) == 2,
               message="one resolved email and one resolved webhook")
    worker_settle(celery_worker)
    mails, posts = inbox.received(), receiver.received()
    keep_for_the_record("sync-failing", mails, posts)
    assert len(mails) == 2 and len(posts) == 2
    assert [to for _, to, _ in mails] == [["oncall@example.test"]] * 2
    opened, resolved = (message for _, _, message in mails)
    assert opened["Subject"].startswith(f"[{PORTAL_NAME}] Sync failing (rooms)")
    assert "failed its last 3 runs" in opened.get_content()
    assert "/admin/rooms/syncrun/?kind__exact=rooms" in opened.get_content()
    assert resolved["Subject"].startswith(f"[{PORTAL_NAME}] Resolved: Sync failing (rooms)")
    first, second = (verified(post) for post in posts)
    assert (first["notice"], second["notice"]) == ("opened", "resolved")
    assert first["text"].startswith(f"[{PORTAL_NAME}] Sync failing (rooms)")
    assert first["alert"]["kind"] == "sync_failing" and first["portal"] == PORTAL_NAME
    assert second["alert"]["resolved_at"] is not None
    no_secret_in(mails, posts)
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert set(alert.deliveries.values_list("status", flat=True)) == {"sent"}


def test_a_thousand_refused_pushes_are_one_alert_that_says_a_thousand(
    sandbox, listeners, celery_worker, settings
):
    inbox, receiver = listeners
    Room.objects.bulk_create(
        Room(name=f"refused-{i:04d}", sync_state=SyncState.PENDING_PUSH) for i in range(1000)
    )
    sandbox.inject_fault(422, methods=["POST"])  # SignalWire refuses every create
    for pk in Room.objects.values_list("pk", flat=True):
        services.room_push(room_id=pk)
        if pk % 250 == 0:
            alerts.check_alerts()  # the periodic check, half-way: refusals still come in
    assert Room.objects.filter(sync_state=SyncState.PUSH_FAILED).count() == 1000

    # Nobody runs the check here: the refusals asked the worker for one, once they stop.
    alert = wait_until(lambda: Alert.objects.first(), message="the push-failed alert")
    alerts.check_alerts()
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == (AlertKind.PUSH_FAILED, "room", 1000)
    wait_until(lambda: len(inbox.received()) == 1 and len(receiver.received()) == 1,
               message="one email and one webhook about the refused pushes")
    worker_settle(celery_worker)
    mails, posts = inbox.received(), receiver.received()
    keep_for_the_record("thousand-refused", mails, posts)
    assert len(mails) == 1 and len(posts) == 1
    assert "refused the push of 1000 rooms" in mails[0][2].get_content()
    assert verified(posts[0])["alert"]["count"] == 1000
    no_secret_in(mails, posts)


def test_a_silent_worker_opens_the_heartbeat_alert_and_health_says_so(
    listeners, celery_worker, settings, client
):
    inbox, receiver = listeners
    settings.ALERT_HEARTBEAT_STALE_SECONDS = 300
    settings.ALERT_WEB_CHECK_SECONDS = 60
    redis_client().delete(alerts.heartbeat_check_key())  # an earlier test's look has passed
    now = timezone.now().timestamp()
    alerts.record_beat_schedule(now)
    alerts.record_worker_heartbeat(now - 360)  # the worker died six minutes ago

    # Nobody runs the check here: the worker that would is the one that died. /health/ sees it.
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["worker"]["ok"] is False and body["beat"]["ok"] is True
    assert body["worker"]["age_seconds"] >= 360
    alert = Alert.objects.get(resolved_at__isnull=True)
    assert (alert.kind, alert.subject) == (AlertKind.WORKER_SILENT, "worker")
    wait_until(lambda: len(inbox.received()) == 1 and len(receiver.received()) == 1,
               message="the worker-silent messages (sent once the worker is back to send them)")

    # The worker comes back: beat's heartbeat runs on it, health recovers, and the web's
    # next look (a minute later) resolves the alert.
    from rooms.tasks.alerts import alert_heartbeat

    alert_heartbeat.delay()
    wait_until(lambda: client.get("/health/").status_code == 200,
               message="/health/ to see the worker's fresh heartbeat")
    redis_client().delete(alerts.heartbeat_check_key())  # the minute has passed
    client.get("/health/")
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    wait_until(lambda: AlertDelivery.objects.filter(status="sent").count() == 4,
               message="the resolved email and webhook")
    assert "Resolved: Worker silent" in inbox.received()[1][2]["Subject"]
    assert len(inbox.received()) == 2 and len(receiver.received()) == 2


def test_beat_sends_the_heartbeat_and_the_worker_runs_it(celery_worker, settings, client,
                                                         tmp_path):
    import os
    import subprocess
    import sys

    settings.ALERT_HEARTBEAT_STALE_SECONDS = 300
    stale = timezone.now().timestamp() - 600
    alerts.record_beat_schedule(stale)
    alerts.record_worker_heartbeat(stale)
    assert client.get("/health/").status_code == 503

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings_test",
           "ALERT_HEARTBEAT_INTERVAL": "1"}
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / "beat-schedule")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def fresh() -> bool:
            assert beat.poll() is None, "celery beat exited"
            return client.get("/health/").status_code == 200

        wait_until(fresh, timeout=60, message="beat's heartbeat, run by the worker")
    finally:
        beat.terminate()
        beat.wait(timeout=15)
    body = client.get("/health/").json()
    assert body["beat"]["age_seconds"] < 60 and body["worker"]["age_seconds"] < 60


def test_a_lockout_asks_for_a_check_that_opens_its_alert(
    listeners, celery_worker, settings, client, django_user_model
):
    inbox, receiver = listeners
    settings.ALERT_CHECK_DELAY = 0.5
    # A check an earlier test asked for was dropped with that test's tasks.
    redis_client().delete(alerts.check_soon_key())
    django_user_model.objects.create_user("clerk", password="right-one-9876", is_staff=True)
    from django.urls import reverse

    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "clerk", "password": "guess-4411"})

    # Nobody runs the check here: the lockout asked the worker for one.
    wait_until(lambda: Alert.objects.filter(kind=AlertKind.LOCKOUT, subject="accounts").exists(),
               message="the lockout alert")
    # "quiet" chose lockouts; "oncall" did not.
    wait_until(lambda: len(inbox.received()) == 1 and len(receiver.received()) == 1,
               message="the lockout email and webhook")
    worker_settle(celery_worker)
    [(_, to, message)] = inbox.received()
    assert to == ["quiet@example.test"] and "1 account is locked out" in message.get_content()
    assert "guess-4411" not in message.get_content()
    assert "guess-4411" not in receiver.received()[0]["body"].decode()
