"""Admin pages of alerts: the alerts (read-only), webhook endpoints, email subscriptions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from rooms.admin.records import RecordAdminMixin
from rooms.admin.scoping import SpaceScopedMixin
from rooms.models import Alert, AlertDelivery, AlertKind, AlertSubscription, WebhookEndpoint
from rooms.services.alert_delivery import WebhookURLError, check_webhook_url


class OpenFilter(admin.SimpleListFilter):
    """Open or resolved alerts."""

    title = "state"
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Offer open and resolved."""
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """Keep the open (or resolved) alerts."""
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


class DeliveryInline(RecordAdminMixin, admin.TabularInline):
    """Each message about the alert: to whom, how, whether it arrived."""

    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("created_at", "notice", "channel", "recipient", "status", "attempts",
              "last_error", "sent_at")
    readonly_fields = fields


@admin.register(Alert)
class AlertAdmin(SpaceScopedMixin, RecordAdminMixin, admin.ModelAdmin):
    """Alerts, newest first, each linked to the page that shows its problem."""

    list_display = ("opened_at", "kind", "subject", "count", "state", "problem", "resolved_at")
    # An alert of no Space (a silent worker, lockouts) concerns every member of staff.
    portal_wide_rows = True
    list_filter = (OpenFilter, "kind")
    search_fields = ("subject", "summary")
    fields = ("kind", "subject", "summary", "count", "problem", "opened_at", "last_seen_at",
              "notified_at", "resolved_at")
    readonly_fields = fields
    inlines = (DeliveryInline,)

    @admin.display(description="state")
    def state(self, obj: Alert) -> str:
        """Open or resolved."""
        return "Open" if obj.is_open else "Resolved"

    @admin.display(description="where to look")
    def problem(self, obj: Alert) -> str:
        """A link to the admin page that shows the problem."""
        return format_html('<a href="{}">see the problem</a>', obj.link) if obj.link else "—"


class SuperusersOnly:
    """Only superusers see or change these pages."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Superusers only."""
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Superusers only."""
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_view_permission
    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission


KIND_CHOICES = AlertKind.choices


class WebhookEndpointForm(forms.ModelForm):
    """The secret is written, never shown: left blank on a change, the saved one stays."""

    url = forms.URLField(
        max_length=500, assume_scheme="https",
        help_text="https:// (plain http:// only to this machine).",
    )
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False, max_length=200,
        help_text="Signs each body (HMAC-SHA256, header X-Portal-Signature). Never shown again;"
        " leave blank to keep the saved one.",
    )
    kinds = forms.MultipleChoiceField(
        choices=KIND_CHOICES, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked: every kind.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "active", "kinds", "secret")

    def clean_url(self) -> str:
        """https://, or plain http:// to this machine only."""
        try:
            return check_webhook_url(self.cleaned_data["url"])
        except WebhookURLError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_secret(self) -> str:
        """Required when the endpoint is new; blank keeps the saved one."""
        secret = self.cleaned_data.get("secret", "")
        if not secret and not self.instance.pk:
            raise forms.ValidationError("Give the endpoint a secret.")
        if secret and len(secret) < 16:
            raise forms.ValidationError("Use a secret of at least 16 characters.")
        return secret

    def save(self, commit: bool = True) -> WebhookEndpoint:
        """Keep the saved secret when none was typed."""
        endpoint = super().save(commit=False)
        if not self.cleaned_data.get("secret"):
            endpoint.secret = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
        if commit:
            endpoint.save()
        return endpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SuperusersOnly, admin.ModelAdmin):
    """Where alerts are posted, managed by superusers; secrets are never displayed."""

    form = WebhookEndpointForm
    list_display = ("name", "url", "active", "kind_list", "created_at")

    @admin.display(description="kinds")
    def kind_list(self, obj: WebhookEndpoint) -> str:
        """The kinds posted there."""
        return ", ".join(obj.kinds) if obj.kinds else "all"


class SubscriptionForm(forms.ModelForm):
    """The kinds to receive by email, as boxes to tick."""

    kinds = forms.MultipleChoiceField(
        choices=KIND_CHOICES, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="Emails go to the address on your account.",
    )

    class Meta:
        model = AlertSubscription
        fields = ("kinds",)


@admin.register(AlertSubscription)
class AlertSubscriptionAdmin(admin.ModelAdmin):
    """Staff who may view alerts pick the kinds they get by email (their own only)."""

    form = SubscriptionForm
    list_display = ("user", "kind_list")

    @admin.display(description="kinds")
    def kind_list(self, obj: AlertSubscription) -> str:
        """The kinds emailed."""
        return ", ".join(obj.kinds) or "none"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Superusers see everyone's; other staff their own (others are refused, not hidden)."""
        rows = super().get_queryset(request).select_related("user")
        if request.user.is_superuser or not self.has_module_permission(request):
            return rows
        return rows.filter(user_id=request.user.pk)

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Staff who may view alerts (the alert kinds are theirs to choose)."""
        return request.user.is_active and request.user.is_staff and request.user.has_perm(
            "rooms.view_alert"
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Their own subscription (superusers: all)."""
        return self.has_module_permission(request) and (
            obj is None or request.user.is_superuser or obj.user_id == request.user.pk
        )

    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission

    def has_add_permission(self, request: HttpRequest) -> bool:
        """One subscription each: add it when there is none yet."""
        return self.has_module_permission(request) and not AlertSubscription.objects.filter(
            user_id=request.user.pk or 0
        ).exists()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """A new subscription is the staff member's own."""
        if not change:
            obj.user = request.user
        super().save_model(request, obj, form, change)
