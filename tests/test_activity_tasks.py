"""The live session refresh on beat, and a real worker running it against the sandbox."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings

from portal.celery import app
from rooms.models import RoomSession, SyncRun
from tests.waiting import wait_until


def by_task() -> dict[str, dict]:
    return {entry["task"]: entry for entry in app.conf.beat_schedule.values()}


def test_live_sessions_refresh_about_every_minute_and_history_with_the_sync():
    import rooms.tasks  # noqa: F401  (what autodiscovery imports in a worker)

    schedule = by_task()
    live = schedule["rooms.tasks.refresh_live_sessions"]["schedule"]
    assert live == settings.SIGNALWIRE_LIVE_SESSIONS_INTERVAL == 60
    history = schedule["rooms.tasks.sync_session_history"]["schedule"]
    assert history == settings.SIGNALWIRE_SYNC_INTERVAL
    assert {"rooms.tasks.refresh_live_sessions", "rooms.tasks.sync_session_history"} <= set(
        app.tasks
    )


def wait_for_run(kind: str, trigger: str) -> SyncRun:
    """Wait for the worker to finish the run of that kind and trigger; return it."""
    runs = SyncRun.objects.filter(kind=kind, trigger=trigger).exclude(
        outcome=SyncRun.Outcome.RUNNING
    )
    return wait_until(runs.first, timeout=30, message=f"a finished {kind} run")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_shows_a_started_session_live_then_ended(
    celery_worker, sandbox, sandbox_server, redis_client
):
    from rooms.tasks.sessions import refresh_live_sessions

    redis_client.flushdb()
    started = requests.post(
        f"{sandbox_server.url}/__sandbox__/sessions",
        json={"room_name": "worker-room", "members": ["ann", "bo"]},
        timeout=5,
    ).json()

    refresh_live_sessions.delay(trigger="test-live")
    run = wait_for_run(SyncRun.Kind.LIVE_SESSIONS, "test-live")
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    session = RoomSession.objects.get(remote_id=started["id"])
    assert session.is_live and session.members_now == 2

    requests.post(f"{sandbox_server.url}/__sandbox__/sessions/{started['id']}/end", timeout=5)
    refresh_live_sessions.delay(trigger="test-ended")
    wait_for_run(SyncRun.Kind.LIVE_SESSIONS, "test-ended")
    session.refresh_from_db()
    assert session.status == "completed" and session.members_now == 0


def test_a_starting_worker_queues_the_session_syncs_only_when_enabled(settings, monkeypatch):
    from rooms.tasks import sessions as activity

    queued = []
    for task in (activity.refresh_live_sessions, activity.sync_session_history):
        monkeypatch.setattr(task, "delay", lambda trigger, name=task.name: queued.append(name))
    settings.SIGNALWIRE_SYNC_ON_START = False
    activity.sessions_on_start()
    assert queued == []
    settings.SIGNALWIRE_SYNC_ON_START = True
    activity.sessions_on_start()
    assert queued == ["rooms.tasks.refresh_live_sessions", "rooms.tasks.sync_session_history"]
