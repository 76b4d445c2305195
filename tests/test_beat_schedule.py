"""The beat schedule and the sync tasks: what the settings say is what Celery runs."""

from __future__ import annotations

import pytest
from django.conf import settings

from portal.celery import app
from rooms.models import Conference, SyncRun
from tests.waiting import wait_until

SYNC_TASKS = (
    "rooms.tasks.sync_conferences",
    "rooms.tasks.sync_rooms",
    "rooms.tasks.fetch_missing_tokens",
)


def by_task() -> dict[str, dict]:
    return {entry["task"]: entry for entry in app.conf.beat_schedule.values()}


def test_celery_sees_the_schedule_from_settings():
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE


def test_sync_tasks_run_every_sync_interval():
    schedule = by_task()
    for name in SYNC_TASKS:
        assert schedule[name]["schedule"] == settings.SIGNALWIRE_SYNC_INTERVAL
    assert (
        schedule["rooms.tasks.refresh_all_tokens"]["schedule"]
        == settings.SIGNALWIRE_TOKEN_REFRESH_INTERVAL
    )


def test_every_scheduled_sync_task_is_registered():
    import rooms.tasks  # noqa: F401  (what autodiscovery imports in a worker)

    for name in (*SYNC_TASKS, "rooms.tasks.refresh_all_tokens"):
        assert name in app.tasks


def test_the_worker_start_hook_queues_a_sync_only_when_enabled(settings, monkeypatch):
    from rooms.tasks import sync as sync_tasks

    queued = []
    monkeypatch.setattr(sync_tasks, "queue_full_sync", queued.append)
    settings.SIGNALWIRE_SYNC_ON_START = False
    sync_tasks.sync_on_start()
    assert queued == []
    settings.SIGNALWIRE_SYNC_ON_START = True
    sync_tasks.sync_on_start()
    assert queued == ["startup"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_queued_sync(celery_worker, sandbox, redis_client):
    from rooms.tasks.sync import sync_conferences

    sandbox.seed(conferences=4, seed=21)
    sync_conferences.delay(trigger="test")

    run = wait_until(
        SyncRun.objects.filter(kind=SyncRun.Kind.CONFERENCES, trigger="test")
        .exclude(outcome=SyncRun.Outcome.RUNNING)
        .first,
        timeout=30,
        message="the worker to finish the queued sync",
    )
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert run.created == 4
    assert Conference.objects.count() == 4
