"""Recording deletes carried out by a real Celery worker: bulk runs and outages that heal."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from rooms.models import ActionRun, AuditEntry, Recording, RecordingState
from rooms.selectors import recordings
from rooms.services import recordings as recording_services
from tests.test_recordings import RECORDINGS_PATH, mirror, record_session
from tests.waiting import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def three(sandbox, sandbox_server, redis_client) -> list[Recording]:
    """Three completed recordings of one room, mirrored."""
    redis_client.flushdb()
    sandbox.create_room({"name": "webinar"})
    for _ in range(3):
        record_session(sandbox_server)
    mirror()
    return list(Recording.objects.order_by("pk"))


def test_bulk_delete_runs_in_the_worker_and_its_page_says_what_was_freed(
    three, sandbox, admin_client, celery_worker
):
    stuck = three[0]
    sandbox.inject_fault(
        503, methods=["DELETE"], path_prefix=f"{RECORDINGS_PATH}/{stuck.remote_id}"
    )
    url = reverse("admin:rooms_recording_changelist")
    post = {
        "action": "delete_selected_recordings",
        helpers.ACTION_CHECKBOX_NAME: [str(r.pk) for r in three],
    }
    confirm = admin_client.post(url, post)
    html = confirm.content.decode()
    assert "Yes, delete them in SignalWire" in html
    assert Recording.objects.count() == 3  # asking deleted nothing
    nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)
    answer = admin_client.post(url, {**post, "confirm": "yes", "nonce": nonce})
    run = ActionRun.objects.get(kind="recording")
    assert answer["Location"] == reverse("admin:rooms_actionrun_change", args=[run.pk])

    def finished() -> ActionRun | None:
        """The run once the worker finished it."""
        run.refresh_from_db()
        return run if run.finished_at else None

    wait_until(finished, timeout=60)
    assert run.counts == {"deleted": 2, "pending_delete": 1}
    stuck.refresh_from_db()
    assert stuck.sync_state == RecordingState.PENDING_DELETE
    page = admin_client.get(answer["Location"]).content.decode()
    freed = recordings.size_text(sum(r.size_in_bytes for r in three[1:]))
    cost = sum(r.cost_in_dollars for r in three[1:])
    assert f"Freed <strong>{freed}</strong> and <strong>${cost}</strong>" in page
    assert "<strong>2</strong> deleted" in page and "<strong>1</strong> pending delete" in page

    # SignalWire comes back: the worker's retry lands the pending delete.
    sandbox.clear_faults()

    def landed() -> bool:
        """The stuck recording is gone here and in SignalWire."""
        return not Recording.objects.filter(pk=stuck.pk).exists()

    wait_until(landed, timeout=60)
    assert sandbox.room_recordings == {}
    entry = AuditEntry.objects.get(
        object_remote_id=stuck.remote_id, action=AuditEntry.Action.DELETE
    )
    assert entry.source == "push" and entry.actor is not None


def test_the_periodic_push_finishes_a_pending_recording_delete(
    three, sandbox, celery_worker
):
    from rooms.tasks.push import push_pending

    target = three[0]
    Recording.objects.filter(pk=target.pk).update(sync_state=RecordingState.PENDING_DELETE)
    assert recording_services.recordings_pending_delete() == [target.pk]
    push_pending.delay()

    def landed() -> bool:
        """The pending recording is gone here and in SignalWire."""
        return not Recording.objects.filter(pk=target.pk).exists()

    wait_until(landed, timeout=60)
    assert target.remote_id not in sandbox.room_recordings
