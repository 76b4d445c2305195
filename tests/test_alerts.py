"""Alerts: conditions, reminders, delivery retries, the admin pages and the dashboard card."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from rooms.models import (
    ActionRun,
    Alert,
    AlertDelivery,
    AlertKind,
    AlertSubscription,
    Room,
    SyncRun,
    SyncState,
    WebhookEndpoint,
)
from rooms.services import alerts
from rooms.services.alert_delivery import WebhookURLError, check_webhook_url
from tests.waiting import wait_until

SECRET = "whsec-tests-0123456789abcdef"


@pytest.fixture
def subscriber(django_user_model):
    user = django_user_model.objects.create_user(
        "oncall", email="oncall@example.test", password="x", is_staff=True
    )
    AlertSubscription.objects.create(user=user, kinds=list(AlertKind.values))
    return user


def refused_room(name: str = "refused") -> Room:
    """A room whose push SignalWire refused (the save hook would mark a new row pending)."""
    room = Room.objects.create(name=name)
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.PUSH_FAILED)
    return room


def unqueued_webhook_delivery(url: str) -> int:
    """A pending webhook delivery that no worker task was queued for: the test sends it."""
    endpoint = WebhookEndpoint.objects.create(name="chat", url=url, secret=SECRET)
    alert = Alert.objects.create(kind=AlertKind.PUSH_FAILED, subject="room", summary="x")
    return AlertDelivery.objects.create(
        alert=alert, notice="opened", channel=AlertDelivery.Channel.WEBHOOK,
        recipient=endpoint.name, endpoint=endpoint, message={"text": "x"},
    ).pk


def deliveries(notice: str | None = None) -> list[AlertDelivery]:
    rows = AlertDelivery.objects.order_by("pk")
    return list(rows.filter(notice=notice) if notice else rows)


# --- conditions ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_open_alert_reminds_at_most_once_a_day(subscriber, settings):
    refused_room()
    alerts.check_alerts()
    alerts.check_alerts()
    assert [d.notice for d in deliveries()] == ["opened"]

    Alert.objects.update(notified_at=timezone.now() - timedelta(hours=23))
    alerts.check_alerts()
    assert [d.notice for d in deliveries()] == ["opened"]
    Alert.objects.update(notified_at=timezone.now() - timedelta(hours=25))
    alerts.check_alerts()
    alerts.check_alerts()
    assert [d.notice for d in deliveries()] == ["opened", "reminder"]
    assert deliveries("reminder")[0].message["text"].startswith(
        f"[{settings.PORTAL_NAME}] Reminder: Push refused by SignalWire (room)"
    )


@pytest.mark.django_db
def test_changes_pending_longer_than_the_limit_open_an_alert(subscriber, settings):
    settings.ALERT_PENDING_MINUTES = 15
    old = Room.objects.create(name="stuck")
    Room.objects.create(name="fresh")
    Room.objects.update(sync_state=SyncState.PENDING_PUSH)
    Room.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(minutes=16))

    alerts.check_alerts()

    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == (AlertKind.PENDING_TOO_LONG, "room", 1)
    assert "more than 15 minutes" in alert.summary
    Room.objects.filter(pk=old.pk).update(sync_state=SyncState.SYNCED)
    alerts.check_alerts()
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert [d.notice for d in deliveries()] == ["opened", "resolved"]


def test_every_sync_kind_beat_schedules_has_an_interval_from_beats_schedule(settings):
    intervals = alerts.sync_intervals()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for kind, task in alerts.SYNC_KIND_TASKS.items():
        assert task in scheduled, f"beat does not schedule {task} ({kind})"
    assert set(intervals) == set(SyncRun.Kind.values)
    assert set(alerts.SYNC_KIND_TASKS) == set(SyncRun.Kind.values)
    # The frequent logs sync sets the interval, not the daily full one.
    assert intervals[SyncRun.Kind.LOGS] == settings.CELERY_BEAT_SCHEDULE["sync-logs"]["schedule"]


@pytest.mark.django_db
def test_three_failed_video_logs_syncs_open_a_sync_failing_alert(subscriber):
    start = timezone.now() - timedelta(minutes=20)
    for i in range(3):
        run = SyncRun.objects.create(kind=SyncRun.Kind.LOGS)
        SyncRun.objects.filter(pk=run.pk).update(
            outcome=SyncRun.Outcome.FAILED, started_at=start + timedelta(minutes=5 * i)
        )

    alerts.check_alerts()

    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == (AlertKind.SYNC_FAILING, "logs", 3)
    assert "Video logs sync failed its last 3 runs" in deliveries()[0].message["text"]


@pytest.mark.django_db
def test_a_bulk_edit_with_failures_opens_an_alert_linked_to_its_run_until_one_succeeds(
    subscriber,
):
    now = timezone.now()
    failed = ActionRun.objects.create(
        action=ActionRun.Action.BULK_EDIT, kind="room", total=40, errors=3, finished_at=now,
        state=ActionRun.State.FINISHED_WITH_ERRORS,
    )
    alerts.check_alerts()
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == (
        AlertKind.RUN_FAILURES, "bulk_edit:room", 3
    )
    assert alert.link == reverse("admin:rooms_actionrun_change", args=[failed.pk])

    ActionRun.objects.create(
        action=ActionRun.Action.BULK_EDIT, kind="room", total=2,
        finished_at=now + timedelta(seconds=5), state=ActionRun.State.SUCCEEDED,
    )
    alerts.check_alerts()
    alert.refresh_from_db()
    assert alert.resolved_at is not None


@pytest.mark.django_db
def test_a_locked_out_account_opens_an_alert_naming_it_without_the_password(
    client, django_user_model, subscriber, settings
):
    django_user_model.objects.create_user("clerk", password="right-one-9876", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "clerk", "password": "guess-4411"})

    alerts.check_alerts()

    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == (AlertKind.LOCKOUT, "accounts", 1)
    text = deliveries()[0].message["text"]
    assert "1 account is locked out" in text and "clerk" in text and "guess-4411" not in text


def locked_out(username: str, settings) -> None:
    """An account name axes has locked out (as its login view records it)."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.create(
        username=username, ip_address="203.0.113.9", user_agent="test", http_accept="*/*",
        path_info="/admin/login/", attempt_time=timezone.now(), get_data="", post_data="",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
    )


@pytest.mark.django_db
def test_a_hostile_account_name_is_one_deliverable_email_and_an_escaped_webhook_text(
    subscriber, settings, smtp_inbox, webhook_receiver
):
    from rooms.services.alert_delivery import deliver

    WebhookEndpoint.objects.create(name="chat", url=webhook_receiver.url, secret=SECRET)
    locked_out("mallory\nBcc: x@example.test <!channel> <https://evil.test|go>", settings)

    alerts.check_alerts()
    for delivery in deliveries():
        deliver(delivery.pk, final=True)

    assert [d.status for d in deliveries()] == ["sent", "sent"]
    [(_, to, mail)] = smtp_inbox.received()
    assert to == ["oncall@example.test"] and mail["Bcc"] is None
    assert "\n" not in mail["Subject"] and "mallory Bcc" in mail.get_content()
    text = json.loads(webhook_receiver.received()[0]["body"])["text"]
    assert "<!channel>" not in text and "<https://evil.test" not in text
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.test|" in text


@pytest.mark.django_db
def test_fifty_locked_out_names_are_one_alert_counting_fifty_and_one_message(
    subscriber, settings
):
    for i in range(50):
        locked_out(f"guess-{i:02d}", settings)
        if i in (0, 24):
            alerts.check_alerts()  # the checks in between raise the count, send nothing new
    alerts.check_alerts()

    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.count) == (AlertKind.LOCKOUT, "accounts", 50)
    assert "50 accounts are locked out" in alert.summary and "47 more" in alert.summary
    assert [d.notice for d in deliveries()] == ["opened"]


@pytest.mark.django_db
def test_the_command_checks_and_lists_open_alerts(subscriber):
    import io

    refused_room()
    out = io.StringIO()
    call_command("check_alerts", stdout=out)
    assert "opened: push_failed room" in out.getvalue()
    assert "1 open alert(s)" in out.getvalue()


@pytest.mark.django_db
def test_only_subscribed_active_staff_with_an_address_get_emails(django_user_model):
    def staff(name, kinds, **extra):
        user = django_user_model.objects.create_user(
            name, email=extra.pop("email", f"{name}@example.test"), is_staff=True, **extra
        )
        AlertSubscription.objects.create(user=user, kinds=kinds)

    staff("ada", [AlertKind.SYNC_FAILING])
    staff("bob", [AlertKind.LOCKOUT])
    staff("gone", [AlertKind.SYNC_FAILING], is_active=False)
    staff("nomail", [AlertKind.SYNC_FAILING], email="")
    assert alerts.email_recipients(AlertKind.SYNC_FAILING) == ["ada@example.test"]


def test_webhooks_go_over_https_or_plain_http_only_to_this_machine():
    assert check_webhook_url("https://hooks.example.test/x") == "https://hooks.example.test/x"
    assert check_webhook_url("http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"
    for bad in ("http://hooks.example.test/x", "ftp://127.0.0.1/", "https://u:p@h.test/"):
        with pytest.raises(WebhookURLError):
            check_webhook_url(bad)


# --- delivery on the worker ---------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_retried_with_backoff_and_its_attempts_logged(
    webhook_receiver, celery_worker
):
    webhook_receiver.statuses = [500, 503]  # the receiver fails twice, then takes it
    WebhookEndpoint.objects.create(name="chat", url=webhook_receiver.url, secret=SECRET)
    refused_room()

    alerts.check_alerts()

    delivery = AlertDelivery.objects.get()
    wait_until(lambda: AlertDelivery.objects.get().status == "sent",
               message="the webhook delivery to succeed on its third attempt")
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.last_error == ""
    posts = webhook_receiver.received()
    assert len(posts) == 3 and len({p["body"] for p in posts}) == 1
    signature = "sha256=" + hmac.new(SECRET.encode(), posts[0]["body"], hashlib.sha256).hexdigest()
    assert posts[-1]["headers"]["X-Portal-Signature"] == signature


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_keeps_failing_is_logged_as_failed_after_its_retries(
    webhook_receiver, celery_worker
):
    webhook_receiver.statuses = [500] * 10
    WebhookEndpoint.objects.create(name="chat", url=webhook_receiver.url, secret=SECRET)
    refused_room()

    alerts.check_alerts()

    wait_until(lambda: AlertDelivery.objects.get().status == "failed",
               message="the delivery to give up")
    delivery = AlertDelivery.objects.get()
    # ALERT_DELIVERY_RETRIES is 3 in the test worker: the first attempt and three more.
    assert delivery.attempts == 4 == len(webhook_receiver.received())
    assert delivery.last_error == "webhook answered 500"


@pytest.fixture
def dripping_receiver():
    """A webhook receiver that answers 200 at once, then drips its body one byte a second."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.flush()
            while not stop.wait(1.0):
                self.wfile.write(b".")
                self.wfile.flush()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    stop.set()  # lets a sender still reading go
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_drips_its_answer_fails_the_attempt_within_the_deadline(
    dripping_receiver, settings
):
    import threading
    import time

    from django.db import connection

    from rooms.services.alert_delivery import DeliveryError, deliver

    settings.ALERT_WEBHOOK_TIMEOUT = 2.0
    settings.ALERT_WEBHOOK_DEADLINE = 3.0
    pk = unqueued_webhook_delivery(dripping_receiver)
    outcome: list = []

    def attempt() -> None:
        started = time.monotonic()
        try:
            deliver(pk, final=False)
            outcome.append(("returned", time.monotonic() - started))
        except DeliveryError as exc:
            outcome.append((str(exc), time.monotonic() - started))
        finally:
            connection.close()  # this thread's own database connection

    sender = threading.Thread(target=attempt, daemon=True)
    sender.start()
    sender.join(timeout=2 * settings.ALERT_WEBHOOK_DEADLINE)
    assert not sender.is_alive(), "the receiver held the delivery past twice its deadline"
    [(error, _)] = outcome
    assert "deadline" in error
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)  # the task retries it
    assert "deadline" in delivery.last_error


@pytest.mark.django_db(transaction=True)
def test_a_delivery_sent_twice_at_once_reaches_the_receiver_once(settings):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from django.db import connection

    from rooms.services.alert_delivery import deliver

    first_arrived, release = threading.Event(), threading.Event()
    posts: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(self.path)
            if len(posts) == 1:  # hold the first sender mid-send while the second tries
                first_arrived.set()
                release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
        pk = unqueued_webhook_delivery(url)

        def first() -> None:
            try:
                deliver(pk, final=False)
            finally:
                connection.close()

        sender = threading.Thread(target=first, daemon=True)
        sender.start()
        assert first_arrived.wait(10), "the first sender never posted"
        assert deliver(pk, final=False) is True  # the second, while the first is sending
        release.set()
        sender.join(10)
    finally:
        release.set()
        server.shutdown()
        server.server_close()

    assert len(posts) == 1
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


@pytest.mark.django_db
def test_publishing_the_heartbeat_records_beats_schedule_and_the_worker_runs_it(
    settings, celery_worker
):
    settings.ALERT_HEARTBEAT_STALE_SECONDS = 300
    from rooms.tasks.alerts import alert_heartbeat

    before = alerts.heartbeat_state()
    alert_heartbeat.apply_async()  # what beat does every ALERT_HEARTBEAT_INTERVAL seconds

    state = alerts.heartbeat_state()
    assert state["beat"]["last"] is not None and state["beat"]["last"] != before["beat"]["last"]
    assert state["beat"]["age_seconds"] < 5 and state["beat"]["ok"] is True
    # The session's worker takes the task (nothing is left in the shared queue).
    wait_until(lambda: alerts.heartbeat_state()["worker"]["last"] not in (
        None, before["worker"]["last"]), message="the worker to run the heartbeat")


@pytest.mark.django_db
def test_beat_silent_for_five_minutes_opens_its_alert_from_health_and_fails_it(
    settings, client
):
    from rooms.connections import redis_client

    settings.ALERT_HEARTBEAT_STALE_SECONDS = 300
    redis_client().delete(alerts.heartbeat_check_key())
    now = timezone.now().timestamp()
    alerts.record_beat_schedule(now - 400)
    alerts.record_worker_heartbeat(now - 400)

    body = client.get("/health/").json()
    assert body["ok"] is False and body["beat"]["ok"] is False
    assert list(Alert.objects.values_list("kind", flat=True)) == [AlertKind.BEAT_SILENT]


@pytest.mark.django_db
def test_the_dashboard_opens_the_worker_alert_and_the_web_looks_at_most_once_a_minute(
    settings, admin_client
):
    from rooms.connections import redis_client

    settings.ALERT_HEARTBEAT_STALE_SECONDS = 300
    settings.ALERT_WEB_CHECK_SECONDS = 60
    redis_client().delete(alerts.heartbeat_check_key())
    now = timezone.now().timestamp()
    alerts.record_beat_schedule(now)
    alerts.record_worker_heartbeat(now - 400)

    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "Worker silent" in page.split('id="needs-attention"')[1]
    alerts.record_worker_heartbeat(now)
    assert alerts.check_heartbeats() is None  # looked less than a minute ago
    assert Alert.objects.get().resolved_at is None
    redis_client().delete(alerts.heartbeat_check_key())  # the minute has passed
    result = alerts.check_heartbeats()
    assert result is not None and result.resolved == [(AlertKind.WORKER_SILENT, "worker")]


# --- admin ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_secrets_are_written_once_and_never_shown_again(admin_client):
    add = reverse("admin:rooms_webhookendpoint_add")
    response = admin_client.post(add, {
        "name": "chat", "url": "https://hooks.example.test/alerts", "active": "on",
        "secret": SECRET, "kinds": [AlertKind.SYNC_FAILING],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == SECRET and endpoint.kinds == [AlertKind.SYNC_FAILING]
    change = reverse("admin:rooms_webhookendpoint_change", args=[endpoint.pk])
    for url in (change, reverse("admin:rooms_webhookendpoint_changelist")):
        assert SECRET not in admin_client.get(url).content.decode()
    # Saved again with the secret left blank: the saved one stays.
    admin_client.post(change, {"name": "chat", "url": "https://hooks.example.test/v2",
                               "active": "on", "secret": ""})
    endpoint.refresh_from_db()
    assert endpoint.secret == SECRET and endpoint.url.endswith("/v2")
    refused = admin_client.post(add, {"name": "plain", "url": "http://hooks.example.test/",
                                      "secret": SECRET})
    assert "would send alerts unencrypted" in refused.content.decode()


@pytest.mark.django_db
def test_only_superusers_manage_webhooks_and_alert_viewers_choose_their_own_email_kinds(
    client, django_user_model
):
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True,
                                                  email="clerk@example.test")
    other = django_user_model.objects.create_user("other", is_staff=True)
    AlertSubscription.objects.create(user=other, kinds=[AlertKind.LOCKOUT])
    clerk.user_permissions.set(Permission.objects.filter(codename="view_alert"))
    client.force_login(clerk)

    assert client.get(reverse("admin:rooms_webhookendpoint_changelist")).status_code == 403
    response = client.post(reverse("admin:rooms_alertsubscription_add"),
                           {"kinds": [AlertKind.SYNC_FAILING, AlertKind.WORKER_SILENT]})
    assert response.status_code == 302
    mine = AlertSubscription.objects.get(user=clerk)
    assert mine.kinds == [AlertKind.SYNC_FAILING, AlertKind.WORKER_SILENT]
    listing = client.get(reverse("admin:rooms_alertsubscription_changelist")).content.decode()
    assert "clerk" in listing and "other" not in listing
    theirs = reverse("admin:rooms_alertsubscription_change", args=[other.alert_subscription.pk])
    assert client.get(theirs).status_code in (302, 403, 404)


@pytest.mark.django_db
def test_the_dashboard_lists_open_alerts_newest_first_with_links(admin_client, client,
                                                                 django_user_model):
    refused_room()
    alerts.check_alerts()
    ActionRun.objects.create(
        action=ActionRun.Action.DELETE, kind="conference", total=3, errors=1,
        finished_at=timezone.now(), state=ActionRun.State.FINISHED_WITH_ERRORS,
    )
    alerts.check_alerts()

    page = admin_client.get(reverse("admin:index")).content.decode()

    card = page.split('id="needs-attention"')[1].split("All alerts")[0]
    assert card.index("Run finished with failures") < card.index("Push refused by SignalWire")
    assert 'href="/admin/rooms/room/?sync_state__exact=push_failed"' in card
    # Staff without the permission to view alerts see no card.
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename="view_room"))
    client.force_login(clerk)
    assert "needs-attention" not in client.get(reverse("admin:index")).content.decode()
