"""Conference admin over the sandbox: remote-first forms, pending saves, deletes, actions."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rooms import services
from rooms.models import ActionRun, Conference, SyncState
from rooms.signalwire import schema
from tests.fixtures_admin import confirmed
from tests.waiting import run_ended

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rooms_conference_changelist")
ADD = reverse("admin:rooms_conference_add")


def change_url(obj) -> str:
    return reverse("admin:rooms_conference_change", args=[obj.pk])


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_add_creates_in_signalwire_first(sandbox, admin_client, form_post_data):
    page = admin_client.get(ADD)
    data = form_post_data(page, name="weekly", display_name="Weekly sync", layout="3x3")

    response = admin_client.post(ADD, data)

    assert response.status_code == 302
    conference = Conference.objects.get(name="weekly")
    assert sandbox.conferences[conference.remote_id]["layout"] == "3x3"
    assert conference.sync_state == SyncState.SYNCED
    assert conference.tokens.count() == 2


def test_signalwire_422_shows_on_the_field_and_keeps_the_input(
    sandbox, admin_client, form_post_data
):
    sandbox.create_conference({"name": "taken", "display_name": "Someone else's"})
    page = admin_client.get(ADD)
    data = form_post_data(page, name="taken", display_name="My careful wording")

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "Name has already been taken" in form.errors["name"][0]
    assert "My careful wording" in response.content.decode()
    assert not Conference.objects.exists()
    assert len(sandbox.conferences) == 1


def test_bad_input_gets_a_clear_error_and_nothing_leaves(sandbox, admin_client, form_post_data):
    page = admin_client.get(ADD)
    data = form_post_data(page, name="has spaces", display_name="Kept", dark_primary="blue")

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "name" in errors and "dark_primary" in errors
    assert "Kept" in response.content.decode()
    assert sandbox.requests == []


def test_change_while_signalwire_is_down_is_kept_and_says_so(
    sandbox, admin_client, form_post_data, queued, run_queued, django_capture_on_commit_callbacks
):
    conference = services.conference_create(data={"name": "ops", "display_name": "Ops"})
    page = admin_client.get(change_url(conference))
    sandbox.inject_fault(503)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            change_url(conference), form_post_data(page, display_name="Ops (new)")
        )

    assert response.status_code == 302
    assert any("could not be reached" in m for m in _messages(response))
    conference.refresh_from_db()
    assert (conference.display_name, conference.sync_state) == (
        "Ops (new)",
        SyncState.PENDING_PUSH,
    )
    sandbox.clear_faults()
    run_queued()
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Ops (new)"


def test_change_sends_one_put_with_the_new_values(sandbox, admin_client, form_post_data):
    conference = services.conference_create(data={"name": "ops", "display_name": "Ops"})
    page = admin_client.get(change_url(conference))
    sandbox.clear_requests()

    data = form_post_data(page, size="large", light_primary="#123456", dark_primary="#044ef4")
    response = admin_client.post(change_url(conference), data)

    assert response.status_code == 302
    puts = [r for r in sandbox.requests if r["method"] == "PUT"]
    assert len(puts) == 1
    remote = sandbox.conferences[conference.remote_id]
    assert (remote["size"], remote["light_primary"]) == ("large", "#123456")
    # The colour picker's lower case does not count as a change of the other colours.
    assert remote["dark_primary"] == "#044EF4"


def test_delete_goes_to_signalwire_first(sandbox, admin_client):
    conference = services.conference_create(data={"name": "gone", "display_name": "Gone"})
    url = reverse("admin:rooms_conference_delete", args=[conference.pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert sandbox.conferences == {} and not Conference.objects.exists()


def test_delete_while_down_is_marked_pending(
    sandbox, admin_client, queued, django_capture_on_commit_callbacks
):
    conference = services.conference_create(data={"name": "later", "display_name": "Later"})
    sandbox.inject_fault(503)
    url = reverse("admin:rooms_conference_delete", args=[conference.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"post": "yes"})

    assert any("pending delete" in m for m in _messages(response))
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.PENDING_DELETE
    assert queued == [("delete", "conference", conference.pk)]


@pytest.mark.django_db(transaction=True)
def test_bulk_delete_reports_each_outcome(sandbox, admin_client, celery_worker):
    first = services.conference_create(data={"name": "one", "display_name": "One"})
    second = services.conference_create(data={"name": "two", "display_name": "Two"})
    sandbox.delete_conference(second.remote_id)  # already gone remotely: counts as done
    selected = {"action": "delete_selected", "_selected_action": [first.pk, second.pk]}

    confirm = admin_client.post(CHANGELIST, selected)
    assert confirm.status_code == 200 and b"Are you sure" in confirm.content
    response = admin_client.post(CHANGELIST, {**selected, "post": "yes"})

    assert response.status_code == 302
    assert any("Queued the deletion of 2 conferences" in m for m in _messages(response))
    run = run_ended(ActionRun.objects.get())
    assert (run.state, run.counts, run.done) == (ActionRun.State.SUCCEEDED, {"deleted": 2}, 2)
    assert not Conference.objects.exists() and sandbox.conferences == {}


def test_push_selected_asks_first_then_queues(sandbox, admin_client, queued):
    conference = services.conference_create(data={"name": "again", "display_name": "Again"})
    selected = {"action": "push_selected", "_selected_action": [conference.pk]}

    page = admin_client.post(CHANGELIST, selected)
    assert page.status_code == 200 and b"Yes, go ahead" in page.content
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.SYNCED

    with_confirm = confirmed(admin_client, CHANGELIST, selected)
    assert with_confirm.status_code == 302
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.PENDING_PUSH


@pytest.mark.django_db(transaction=True)
def test_an_action_confirmation_sent_twice_or_four_times_at_once_starts_one_run(
    sandbox, admin_client, celery_worker
):
    from tests.concurrent import post_together

    conference = services.conference_create(data={"name": "once", "display_name": "Once"})
    sandbox.update_conference(conference.remote_id, {"display_name": "Edited in SignalWire"})
    selected = {"action": "refresh_from_signalwire", "_selected_action": [conference.pk]}
    nonce = admin_client.post(CHANGELIST, selected).context["nonce"]
    form = {**selected, "confirm": "yes", "nonce": nonce}

    post_together(admin_client, CHANGELIST, form)
    again = admin_client.post(CHANGELIST, form, follow=True)

    assert "confirmed already" in again.content.decode()
    assert run_ended(ActionRun.objects.get()).counts == {"refreshed": 1}
    forged = admin_client.post(CHANGELIST, {**form, "nonce": "made-up"}, follow=True)
    assert "confirmed already" in forged.content.decode()
    assert ActionRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_refresh_from_signalwire_takes_remote_edits(sandbox, admin_client, celery_worker):
    conference = services.conference_create(data={"name": "edited", "display_name": "Old"})
    sandbox.update_conference(conference.remote_id, {"display_name": "Edited in SignalWire"})
    selected = {"action": "refresh_from_signalwire", "_selected_action": [conference.pk]}

    response = confirmed(admin_client, CHANGELIST, selected)

    assert response.status_code == 302
    assert run_ended(ActionRun.objects.get()).counts == {"refreshed": 1}
    assert Conference.objects.get(pk=conference.pk).display_name == "Edited in SignalWire"


def test_unknown_remote_layout_does_not_break_the_pages(sandbox, admin_client, form_post_data):
    conference = services.conference_create(data={"name": "future", "display_name": "F"})
    Conference.objects.filter(pk=conference.pk).update(layout="future-layout-99")

    assert admin_client.get(CHANGELIST).status_code == 200
    page = admin_client.get(change_url(conference))
    assert page.status_code == 200
    assert b"future-layout-99 (unknown to the portal)" in page.content
    # Saving another field keeps the unknown value without a local validation error.
    form = page.context["adminform"].form
    assert form.fields["layout"].choices[-1][0] == "future-layout-99"


def _changelist_queries(admin_client, count: int) -> int:
    Conference.objects.all().delete()
    Conference.objects.bulk_create(
        Conference(name=f"c-{i:05d}", display_name=f"C {i}", remote_id=f"r-{i}")
        for i in range(count)
    )
    admin_client.get(CHANGELIST)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"sync_state": "synced", "q": "c-"})
    assert response.status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_rows(admin_client):
    assert _changelist_queries(admin_client, 10) == _changelist_queries(admin_client, 1000)


@pytest.mark.parametrize(
    "name",
    ["admin:rooms_conference_changelist", "admin:rooms_conference_add"],
)
def test_pages_render(admin_client, name):
    assert admin_client.get(reverse(name)).status_code == 200


def test_change_and_history_pages_render(sandbox, admin_client):
    conference = services.conference_create(data={"name": "page", "display_name": "P"})
    assert admin_client.get(change_url(conference)).status_code == 200
    history = reverse("admin:rooms_conference_history", args=[conference.pk])
    assert admin_client.get(history).status_code == 200


def test_colour_pickers_lower_case_is_not_a_change(sandbox, admin_client, form_post_data):
    conference = services.conference_create(data={"name": "hues", "display_name": "Hues"})
    page = admin_client.get(change_url(conference))
    lowered = {f: getattr(conference, f).lower() for f in schema.COLOUR_FIELDS}
    data = form_post_data(page, display_name="Hues 2", **lowered)

    response = admin_client.post(change_url(conference), data)

    assert response.status_code == 302
    # Admin's own history names only the field staff really changed.
    message = LogEntry.objects.latest("action_time").get_change_message()
    assert message == "Changed Display name."
