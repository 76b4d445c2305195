"""A slow SignalWire never holds a web request for long: admin keeps the edit as pending."""

from __future__ import annotations

import time

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from rooms import services
from rooms.models import AuditEntry, Conference, SyncState
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Longer than the interactive budget, well inside the background one.
LATENCY = 9.0


class SlowSpace:
    """The sandbox, made to answer after LATENCY seconds when a test says so."""

    def __init__(self, space) -> None:
        self.space = space
        self.logged: int | None = None

    def slow(self) -> None:
        """From now on, every request sleeps LATENCY seconds in the sandbox first."""
        self.logged = len(self.space.requests)
        self.space.set_latency(LATENCY)

    def settle(self) -> None:
        """Let the request the portal gave up on finish, so no later test logs it."""
        self.space.set_latency(0)
        if self.logged is not None:
            logged = self.logged
            wait_until(
                lambda: len(self.space.requests) > logged,
                timeout=LATENCY + 10,
                message="the slow request to finish in the sandbox",
            )


@pytest.fixture
def slow_signalwire(sandbox, settings):
    """SignalWire answers slowly on demand; the background budget would wait for it."""
    settings.SIGNALWIRE_READ_TIMEOUT = 30.0
    settings.SIGNALWIRE_RETRIES = 4
    settings.SIGNALWIRE_RETRY_MAX_WAIT = 30.0
    slow = SlowSpace(sandbox)
    yield slow
    slow.settle()


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _timed_post(client, url, data=None):
    started = time.monotonic()
    response = client.post(url, data or {})
    return response, time.monotonic() - started


def test_a_save_waits_a_few_seconds_at_most_then_is_kept_pending(
    slow_signalwire, admin_client, form_post_data, settings, queued
):
    conference = services.conference_create(data={"name": "slow", "display_name": "Slow"})
    url = reverse("admin:rooms_conference_change", args=[conference.pk])
    page = admin_client.get(url)
    slow_signalwire.slow()

    response, took = _timed_post(admin_client, url, form_post_data(page, display_name="New"))

    assert response.status_code == 302
    assert took < settings.SIGNALWIRE_INTERACTIVE_DEADLINE + 2.0, took
    texts = _messages(response)
    assert len(texts) == 1 and "marked pending" in texts[0], texts
    stored = Conference.objects.get(pk=conference.pk)
    assert (stored.display_name, stored.sync_state) == ("New", SyncState.PENDING_PUSH)
    assert queued == [("push", "conference", conference.pk)]


def test_a_restore_waits_a_few_seconds_at_most_then_is_kept_pending(
    slow_signalwire, admin_client, admin_user, settings, queued
):
    conference = services.conference_create(data={"name": "undo", "display_name": "Before"})
    services.conference_update(
        conference=conference, data={"display_name": "After"}, actor=admin_user
    )
    entry = AuditEntry.objects.filter(
        object_pk=str(conference.pk), action=AuditEntry.Action.UPDATE
    ).latest("pk")
    url = reverse("admin:rooms_conference_audit_restore", args=[conference.pk, entry.pk])
    slow_signalwire.slow()

    response, took = _timed_post(admin_client, url)

    assert response.status_code == 302
    assert took < settings.SIGNALWIRE_INTERACTIVE_DEADLINE + 2.0, took
    assert any("pending" in m for m in _messages(response))
    stored = Conference.objects.get(pk=conference.pk)
    assert (stored.display_name, stored.sync_state) == ("Before", SyncState.PENDING_PUSH)


def test_a_delete_waits_a_few_seconds_at_most_then_is_kept_pending_delete(
    slow_signalwire, admin_client, settings, queued
):
    conference = services.conference_create(data={"name": "gone", "display_name": "Gone"})
    url = reverse("admin:rooms_conference_delete", args=[conference.pk])
    slow_signalwire.slow()

    response, took = _timed_post(admin_client, url, {"post": "yes"})

    assert response.status_code == 302
    assert took < settings.SIGNALWIRE_INTERACTIVE_DEADLINE + 2.0, took
    assert any("pending delete" in m for m in _messages(response))
    stored = Conference.objects.get(pk=conference.pk)
    assert stored.sync_state == SyncState.PENDING_DELETE
    assert queued == [("delete", "conference", conference.pk)]


def test_the_suite_refuses_any_call_to_signalwire_inside_a_transaction(
    sandbox, admin_client, form_post_data, settings
):
    from django.db import transaction

    from rooms.signalwire.errors import RemoteCallInTransactionError

    assert settings.SIGNALWIRE_REFUSE_IN_TRANSACTION
    with pytest.raises(RemoteCallInTransactionError), transaction.atomic():
        services.conference_create(data={"name": "inside"})
    assert sandbox.requests == [] and not Conference.objects.exists()

    # The admin's add view calls SignalWire from the form's validation: no transaction
    # is open around it, so the same guard lets it through.
    add = reverse("admin:rooms_conference_add")
    response = admin_client.post(add, form_post_data(admin_client.get(add), name="outside"))
    assert response.status_code == 302
    assert Conference.objects.get(name="outside").sync_state == SyncState.SYNCED
