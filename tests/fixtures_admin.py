"""Fixtures shared by the service, hook, token and admin tests (import the ones you use)."""

from __future__ import annotations

import pytest

from rooms import services


@pytest.fixture
def eager_tasks():
    """Run queued Celery tasks in this process, so a test sees their effect at once."""
    from portal.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = False
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def queued(monkeypatch):
    """Record what services and hooks queue instead of sending it to the broker."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        services,
        "push_enqueue",
        lambda kind, pk, delete=False: calls.append(("delete" if delete else "push", kind, pk)),
    )
    monkeypatch.setattr(
        services,
        "remote_delete_enqueue",
        lambda kind, remote_id: calls.append(("remote_delete", kind, remote_id)),
    )
    return calls


@pytest.fixture
def fast_push(settings):
    """Keep the push tasks' retry budget small so giving up takes no time in tests."""
    settings.SIGNALWIRE_PUSH_MAX_ATTEMPTS = 1
    settings.SIGNALWIRE_RETRIES = 0
    return settings


def room_data(name: str = "standup", **extra) -> dict:
    """Form-like data for a new room."""
    return {"name": name, "display_name": name.title(), "max_members": 12, **extra}


def conference_data(name: str = "allhands", **extra) -> dict:
    """Form-like data for a new conference."""
    return {"name": name, "display_name": name.title(), "layout": "2x2", **extra}


def run_queued(calls: list[tuple]) -> list:
    """Run the tasks a `queued` fixture recorded, in order, as a worker would."""
    from rooms.tasks import push

    tasks = {
        ("push", "conference"): push.push_conference,
        ("push", "room"): push.push_room,
        ("delete", "conference"): push.delete_conference,
        ("delete", "room"): push.delete_room,
        ("remote_delete", "conference"): push.delete_remote,
        ("remote_delete", "room"): push.delete_remote,
    }
    results = []
    while calls:
        what, kind, ref = calls.pop(0)
        args = [kind, ref] if what == "remote_delete" else [ref]
        results.append(tasks[(what, kind)].apply(args=args))
    return results
