"""Sending alert messages: email through Django's backend, signed JSON to webhooks.

Called by the worker's delivery task, never inside a web request or a transaction. The
message is composed when the alert changes (in the check) and kept on the delivery row; it
carries the alert's kind, subject, count, times and admin link, and names the
portal; it never carries a token, stream URL or recording link (alerts hold none).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from rooms.models import Alert, AlertDelivery
from rooms.signalwire.urls import is_loopback

logger = logging.getLogger("rooms.alerts")

SIGNATURE_HEADER = "X-Portal-Signature"
# Of a receiver's answer only this much is read: its status says whether it took the message.
ANSWER_LIMIT = 4096
Notice = AlertDelivery.Notice


class DeliveryError(Exception):
    """A message could not be delivered this time (the task retries it)."""


class WebhookURLError(ValueError):
    """A webhook URL that would send alerts in the clear, or is malformed."""


def check_webhook_url(url: str) -> str:
    """Return the URL if alerts may be posted to it: https, or plain http only on loopback."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookURLError("Give an https:// URL.")
    if parts.username or parts.password:
        raise WebhookURLError("Credentials do not belong in the URL; the secret signs each body.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise WebhookURLError(
            f"Plain http:// to {parts.hostname} would send alerts unencrypted; use https://."
        )
    return url.strip()


def clean(text: str, limit: int = 500) -> str:
    """Text from outside (an account name) made safe for a message: one line, no control
    characters, at most `limit` characters."""
    kept = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text or ""
    )
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def slack_escape(text: str) -> str:
    """Escape the characters Slack-style chat reads as mentions and links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescape(text: str) -> str:
    """The plain text back from a Slack-escaped one (for email)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def absolute_link(path: str) -> str:
    """The admin link as a full URL when PORTAL_URL is set, else the path."""
    base = settings.PORTAL_URL.rstrip("/")
    return f"{base}{path}" if base and path else path


def message_text(alert: Alert, notice: str) -> str:
    """One line for people: the portal, what happened, how often, where to look (plain text)."""
    label = alert.get_kind_display()
    subject = clean(alert.subject, 80)
    if notice == Notice.RESOLVED:
        head = f"Resolved: {label} ({subject})"
        body = "The condition has cleared."
    else:
        head = f"{'Reminder: ' if notice == Notice.REMINDER else ''}{label} ({subject})"
        body = clean(alert.summary)
        if alert.count > 1:
            body = f"{body} Seen {alert.count} times."
    link = absolute_link(alert.link)
    return f"[{settings.PORTAL_NAME}] {head}. {body}" + (f" {link}" if link else "")


def payload(alert: Alert, notice: str) -> dict[str, Any]:
    """The webhook body: a Slack-compatible `text` (escaped) and the structured fields."""
    return {
        "text": slack_escape(message_text(alert, notice)),
        "portal": settings.PORTAL_NAME,
        "notice": notice,
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "kind_label": alert.get_kind_display(),
            "subject": clean(alert.subject, 150),
            "count": alert.count,
            "summary": clean(alert.summary),
            "link": absolute_link(alert.link),
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
    }


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 of the body under the secret>."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send_email(delivery: AlertDelivery) -> None:
    """Send one alert email through Django's email backend."""
    # Cleaned again: a header with a line break would make Django refuse the whole email.
    text = clean(slack_unescape(delivery.message["text"]), 2000)
    subject = clean(text.split(". ", 1)[0], 200)
    try:
        send_mail(
            subject, text + "\n", settings.DEFAULT_FROM_EMAIL, [delivery.recipient],
            fail_silently=False,
        )
    except Exception as exc:  # noqa: BLE001 - SMTP, DNS, TLS: all retried the same way
        raise DeliveryError(f"email: {type(exc).__name__}: {exc}") from exc


def send_webhook(delivery: AlertDelivery) -> None:
    """POST the signed JSON body to the delivery's endpoint; a non-2xx answer fails it."""
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.active:
        raise DeliveryError("the webhook endpoint was deleted or turned off")
    try:
        url = check_webhook_url(endpoint.url)
    except WebhookURLError as exc:
        raise DeliveryError(str(exc)) from exc
    body = json.dumps(delivery.message, sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(endpoint.secret, body),
        "User-Agent": "room-portal-alerts",
    }
    deadline = time.monotonic() + settings.ALERT_WEBHOOK_DEADLINE
    try:
        # No redirects: one could lead off to plain http or another host. Streamed, so the
        # answer is read a little at a time against the deadline (the timeout bounds each
        # socket read, not the whole call).
        with requests.post(
            url, data=body, headers=headers, timeout=settings.ALERT_WEBHOOK_TIMEOUT,
            allow_redirects=False, stream=True,
        ) as answer:
            status = answer.status_code
            _read_answer(answer, deadline)
    except requests.RequestException as exc:
        raise DeliveryError(f"webhook: {type(exc).__name__}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered {status}")


def _read_answer(answer: requests.Response, deadline: float) -> None:
    """Read at most ANSWER_LIMIT bytes of the answer before the deadline, or fail."""
    if time.monotonic() > deadline:
        raise DeliveryError("webhook: no answer within the deadline")
    read = 0
    # One byte at a time: a larger read waits for all its bytes from a receiver that drips.
    for chunk in answer.iter_content(chunk_size=1):
        read += len(chunk)
        if read >= ANSWER_LIMIT:
            return
        if time.monotonic() > deadline:
            raise DeliveryError("webhook: the answer took longer than the deadline")


def deliver(delivery_pk: int, *, final: bool) -> bool:
    """Send one delivery unless it was sent or is being sent; record the attempt.

    Returns True when there is nothing more to do. Raises DeliveryError when this attempt
    failed and another may follow (`final` False).
    """
    delivery = (
        AlertDelivery.objects.select_related("alert", "endpoint").filter(pk=delivery_pk).first()
    )
    if delivery is None or delivery.status != AlertDelivery.Status.PENDING:
        return True
    # Claim it first: of two deliveries of the same row (a task queued twice, a resend), only
    # the one whose conditional update wins sends.
    attempts = delivery.attempts + 1
    claimed = AlertDelivery.objects.filter(
        pk=delivery.pk, status=AlertDelivery.Status.PENDING, attempts=delivery.attempts
    ).update(status=AlertDelivery.Status.SENDING, attempts=attempts, claimed_at=timezone.now())
    if not claimed:
        return True
    sender = send_email if delivery.channel == AlertDelivery.Channel.EMAIL else send_webhook
    try:
        sender(delivery)
    except DeliveryError as exc:
        status = AlertDelivery.Status.FAILED if final else AlertDelivery.Status.PENDING
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            last_error=str(exc)[:500], status=status
        )
        logger.warning(
            "alert delivery %s (%s to %s) failed: %s", delivery.pk, delivery.channel,
            delivery.recipient, exc,
        )
        if final:
            return True
        raise
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=AlertDelivery.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return True
