"""Alerts for staff: what needs a person, who hears of it, and each message's delivery."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AlertKind(models.TextChoices):
    """The conditions the portal watches."""

    PUSH_FAILED = "push_failed", "Push refused by SignalWire"
    PENDING_TOO_LONG = "pending_too_long", "Changes pending too long"
    SYNC_FAILING = "sync_failing", "Sync failing"
    WORKER_SILENT = "worker_silent", "Worker silent"
    BEAT_SILENT = "beat_silent", "Beat not scheduling"
    RUN_FAILURES = "run_failures", "Run finished with failures"
    LOCKOUT = "lockout", "Account locked out"


class Alert(models.Model):
    """One condition that needs staff, open until it clears by itself."""

    # The Space it is about; none for the portal's own (worker, beat, lockouts).
    space = models.ForeignKey(
        "rooms.Space", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    # What it is about: a resource kind, a sync kind, a run kind or an account name.
    subject = models.CharField(max_length=150)
    summary = models.CharField(max_length=500)
    # The admin page (a path) that shows the problem.
    link = models.CharField(max_length=500, blank=True)
    count = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    # When staff were last told (the opening message or a reminder).
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One open alert per kind and subject; a resolved one may open again later.
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_alert_per_kind_and_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"

    @property
    def is_open(self) -> bool:
        """Tell whether the condition still holds."""
        return self.resolved_at is None


class AlertDelivery(models.Model):
    """One message about an alert to one recipient, with its attempts and outcome."""

    class Notice(models.TextChoices):
        OPENED = "opened", "Opened"
        REMINDER = "reminder", "Reminder"
        RESOLVED = "resolved", "Resolved"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    notice = models.CharField(max_length=10, choices=Notice.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # An email address, or the endpoint's name (the URL stays on the endpoint).
    recipient = models.CharField(max_length=254)
    endpoint = models.ForeignKey(
        "WebhookEndpoint", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The message as decided when the alert changed: its text and structured fields.
    message = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When an attempt claimed it (pending -> sending): only one sender sends it at a time.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.get_notice_display()} by {self.channel} to {self.recipient}"


class WebhookEndpoint(models.Model):
    """Where alerts are posted as signed JSON (superusers manage these)."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(
        max_length=500, help_text="https:// (plain http:// only to this machine)."
    )
    # Signs each body (HMAC-SHA256); written once, never shown again.
    secret = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    # Alert kinds posted here; empty means every kind.
    kinds = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str) -> bool:
        """Tell whether this endpoint takes alerts of a kind."""
        return self.active and (not self.kinds or kind in self.kinds)


class AlertSubscription(models.Model):
    """The alert kinds one staff member receives by email."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscription"
    )
    kinds = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "alert email subscription"

    def __str__(self) -> str:
        return f"Alert emails for {self.user}"
