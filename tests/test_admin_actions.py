"""Admin actions on many rows: the request records a run and queues it; the worker does it."""

from __future__ import annotations

import time

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from rooms import services, sync
from rooms.models import ActionRun, AuditEntry, Conference, ConferenceToken, SyncState
from tests.fixtures_admin import confirmed
from tests.waiting import run_ended, wait_until

CHANGELIST = reverse("admin:rooms_conference_changelist")
# A page that only records a run answers at once, whatever the selection's size.
ANSWER_BUDGET = 3.0


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _select_all(action: str, **extra) -> dict:
    """POST data of an action applied to every row of the change list, confirmed."""
    first = Conference.objects.order_by("pk").values_list("pk", flat=True).first()
    return {"action": action, "_selected_action": [first], "select_across": "1",
            "index": "0", "confirm": "yes", **extra}


@pytest.fixture
def broker_down():
    """Point Celery at a port where no Redis listens, as when the task queue is down."""
    from portal.celery import app

    before = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None
    app.amqp._producer_pool = None
    yield app
    app.conf.broker_url = before
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_refresh_tokens_action(sandbox, admin_client, admin_user, celery_worker):
    conference = services.conference_create(data={"name": "tokens", "display_name": "T"})
    guest = conference.tokens.get(name="guest")
    rotated = sandbox.reset_conference_token(guest.remote_id)
    selected = {"action": "refresh_tokens", "_selected_action": [conference.pk]}

    assert b"Yes, go ahead" in admin_client.post(CHANGELIST, selected).content
    confirmed(admin_client, CHANGELIST, selected)

    run = run_ended(ActionRun.objects.get())
    assert ConferenceToken.objects.get(pk=guest.pk).token == rotated["token"]
    assert (run.action, run.requested_by, run.counts) == (
        ActionRun.Action.REFRESH_TOKENS, admin_user, {"refreshed": 1}
    )


@pytest.mark.django_db(transaction=True)
def test_a_refresh_run_names_the_staff_member_in_the_audit_trail(
    sandbox, admin_client, admin_user, celery_worker
):
    conference = services.conference_create(data={"name": "again", "display_name": "Again"})
    sandbox.update_conference(conference.remote_id, {"display_name": "Changed remotely"})
    response = confirmed(admin_client, CHANGELIST, _select_all("refresh_from_signalwire"))

    run = run_ended(ActionRun.objects.get())
    assert any("Queued the refresh from SignalWire of 1 conference" in m
               for m in _messages(response))
    entry = AuditEntry.objects.filter(object_pk=str(conference.pk)).latest("timestamp")
    assert entry.actor == admin_user and entry.source == AuditEntry.Source.ADMIN
    assert entry.cid == run.run_id.hex
    page = admin_client.get(reverse("admin:rooms_actionrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert b"1 of 1" in page.content and b"1 refreshed" in page.content


@pytest.mark.django_db(transaction=True)
def test_with_the_task_queue_down_push_selected_says_nothing_was_queued(
    sandbox, admin_client, broker_down
):
    conference = services.conference_create(data={"name": "stuck", "display_name": "Stuck"})

    response = confirmed(admin_client, CHANGELIST, _select_all("push_selected"))

    texts = _messages(response)
    assert not any("Queued" in m for m in texts), texts
    assert texts == [
        "Nothing was queued: the task queue (Redis) cannot be reached. Marked 1 conference "
        "pending push; the periodic push sends them once the queue is back."
    ]
    run = ActionRun.objects.get()
    assert run.state == ActionRun.State.NOT_QUEUED
    # The rows say they wait, so the periodic push lands them once the queue is back.
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.PENDING_PUSH


@pytest.mark.django_db(transaction=True)
def test_with_the_task_queue_down_a_bulk_delete_says_nothing_was_done(
    sandbox, admin_client, broker_down
):
    conference = services.conference_create(data={"name": "kept", "display_name": "Kept"})

    response = admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [conference.pk], "post": "yes"},
    )

    assert _messages(response) == [
        "Nothing was queued: the task queue (Redis) cannot be reached, so the deletion of "
        "1 conference did not start and nothing changed. Try again once it is back."
    ]
    assert Conference.objects.get(pk=conference.pk).sync_state == SyncState.SYNCED
    assert conference.remote_id in sandbox.conferences


@pytest.mark.django_db(transaction=True)
def test_with_the_task_queue_down_a_pending_save_says_so_and_not_success(
    sandbox, admin_client, broker_down, form_post_data
):
    conference = services.conference_create(data={"name": "ops", "display_name": "Ops"})
    url = reverse("admin:rooms_conference_change", args=[conference.pk])
    page = admin_client.get(url)
    sandbox.inject_fault(503)

    response = admin_client.post(url, form_post_data(page, display_name="Ops (new)"))

    assert response.status_code == 302
    texts = _messages(response)
    assert not any("successfully" in m for m in texts), texts
    assert any("could not be queued" in m and "marked pending" in m for m in texts), texts
    assert Conference.objects.get(pk=conference.pk).display_name == "Ops (new)"


@pytest.mark.django_db(transaction=True)
def test_a_pending_save_does_not_also_say_changed_successfully(
    sandbox, admin_client, form_post_data, queued
):
    conference = services.conference_create(data={"name": "ops", "display_name": "Ops"})
    url = reverse("admin:rooms_conference_change", args=[conference.pk])
    page = admin_client.get(url)
    sandbox.inject_fault(503)

    response = admin_client.post(url, form_post_data(page, display_name="Ops (new)"))

    texts = _messages(response)
    assert len(texts) == 1 and "marked pending" in texts[0], texts
    assert "pushed in the background" in texts[0]
    assert queued == [("push", "conference", conference.pk)]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_refresh_of_5000_rows_answers_at_once_and_the_worker_does_it_in_batches(
    sandbox, admin_client, celery_worker
):
    sandbox.seed(conferences=5000, seed=5)
    sync.sync_conferences()
    assert Conference.objects.count() == 5000
    edited = Conference.objects.order_by("pk").last()
    sandbox.update_conference(edited.remote_id, {"display_name": "Edited in SignalWire"})

    started = time.monotonic()
    response = confirmed(admin_client, CHANGELIST, _select_all("refresh_from_signalwire"))
    answered = time.monotonic() - started
    print(f"\n'Refresh selected' on 5,000 rows answered in {answered:.2f} s")

    assert response.status_code == 302 and answered < ANSWER_BUDGET
    assert any("Queued the refresh from SignalWire of 5000 conferences" in m
               for m in _messages(response))
    run = ActionRun.objects.get()
    seen_progress = set()

    def ended() -> bool:
        run.refresh_from_db()
        seen_progress.add(run.done)
        return run.finished_at is not None

    wait_until(ended, timeout=240, interval=0.2, message=lambda: f"{run.done} of 5000 done")
    assert (run.state, run.done, run.counts) == (
        ActionRun.State.SUCCEEDED, 5000, {"refreshed": 1, "unchanged": 4999}
    ), run.error
    # Progress moved in bounded batches, and admin showed it on the way.
    assert any(0 < done < 5000 for done in seen_progress), sorted(seen_progress)
    assert Conference.objects.get(pk=edited.pk).display_name == "Edited in SignalWire"


@pytest.mark.django_db(transaction=True)
def test_a_run_is_carried_out_batch_by_batch_and_counts_each_outcome(
    sandbox, admin_user, celery_worker
):
    from django.conf import settings

    from rooms.services import bulk

    # One row more than two batches hold: the worker queues each next batch itself.
    total = 2 * settings.ROOMS_ACTION_BATCH_SIZE + 1
    sandbox.seed(conferences=total, seed=7)
    sync.sync_conferences()
    rows = list(Conference.objects.order_by("pk"))
    assert len(rows) == total
    sandbox.delete_conference(rows[0].remote_id)
    Conference.objects.filter(pk=rows[-1].pk).update(sync_state=SyncState.PENDING_PUSH)

    run = bulk.action_run_start(
        action=ActionRun.Action.REFRESH, rows=Conference.objects.all(), actor=admin_user
    )

    run_ended(run)
    assert (run.state, run.total, run.done) == (ActionRun.State.SUCCEEDED, total, total)
    assert run.counts == {"deleted_remotely": 1, "skipped": 1, "unchanged": total - 2}
    assert run.started_at <= run.finished_at
    assert Conference.objects.get(pk=rows[0].pk).sync_state == SyncState.DELETED_REMOTELY


@pytest.mark.django_db
def test_a_batch_delivered_twice_is_carried_out_and_counted_once(sandbox, admin_user, settings):
    from rooms.services import bulk

    settings.ROOMS_ACTION_BATCH_SIZE = 2
    rows = [services.conference_create(data={"name": f"twice-{n}"}) for n in range(3)]
    run = ActionRun.objects.create(
        action=ActionRun.Action.DELETE, kind="conference", total=3, pks=[r.pk for r in rows]
    )

    assert bulk.action_run_batch(run_id=run.pk, offset=0) == 2
    deletes = len([r for r in sandbox.requests if r["method"] == "DELETE"])
    # The broker hands the first batch out again (its acknowledgement was lost).
    assert bulk.action_run_batch(run_id=run.pk, offset=0) is None

    run.refresh_from_db()
    assert (run.done, run.counts) == (2, {"deleted": 2})
    assert len([r for r in sandbox.requests if r["method"] == "DELETE"]) == deletes == 2
    assert bulk.action_run_batch(run_id=run.pk, offset=2) is None
    run.refresh_from_db()
    assert (run.state, run.done, run.counts) == (ActionRun.State.SUCCEEDED, 3, {"deleted": 3})


@pytest.mark.django_db
def test_a_run_that_cannot_go_on_is_stopped_with_the_reason(sandbox, admin_user):
    from rooms.services import bulk

    run = ActionRun.objects.create(action=ActionRun.Action.PUSH, kind="conference", total=9)

    bulk.action_run_abort(run_id=run.pk, error="the next batch could not be queued")

    run.refresh_from_db()
    assert run.state == ActionRun.State.FINISHED_WITH_ERRORS and run.finished_at
    assert run.error == "Stopped after 0 of 9: the next batch could not be queued"


@pytest.mark.django_db
def test_refreshing_an_unchanged_row_writes_no_audit_entry(sandbox, admin_user):
    conference = services.conference_create(data={"name": "same", "display_name": "Same"})
    entries = AuditEntry.objects.count()

    assert services.mirror_refresh(row=conference, actor=admin_user) == "unchanged"

    assert AuditEntry.objects.count() == entries
    stored = Conference.objects.get(pk=conference.pk)
    assert stored.last_synced_at > conference.last_synced_at
    assert stored.updated_at == conference.updated_at
