"""Syncs run per Space: their own lock, run record, client and rows; one failing stops no other."""

import io

import pytest
from django.core.management import CommandError, call_command

from rooms import sync
from rooms.locks import single_flight
from rooms.models import Room, Space, SyncRun, environment_space
from rooms.signalwire.errors import SignalWireError
from rooms.sync.runs import lock_name
from rooms.tasks import sync as sync_tasks
from tests.waiting import wait_until

REVOKED = "revoked-token-3c1e9a"


@pytest.fixture
def revoked(sandbox_server):
    """A second Space on the sandbox whose API token SignalWire no longer accepts."""
    space = Space(name="Revoked", space_url=sandbox_server.url, project_id="sandbox-project")
    space.set_token(REVOKED)
    space.save()
    return space


@pytest.mark.django_db
def test_a_space_whose_token_was_revoked_fails_its_own_sync_and_no_other(sandbox, revoked):
    sandbox.seed(rooms=3, seed=5)
    with pytest.raises(SignalWireError):
        sync.sync_rooms(space=revoked)
    failed = SyncRun.objects.get(space=revoked)
    assert failed.outcome == SyncRun.Outcome.FAILED
    assert REVOKED not in failed.error

    ok = sync.sync_rooms()
    assert ok.outcome == SyncRun.Outcome.SUCCEEDED and ok.space == environment_space()
    assert Room.objects.filter(space=environment_space()).count() == 3
    assert not Room.objects.filter(space=revoked).exists()


@pytest.mark.django_db
def test_a_sync_running_in_one_space_does_not_hold_back_another(sandbox, revoked):
    sandbox.seed(rooms=2, seed=6)
    with single_flight(lock_name("rooms", revoked)) as held:
        assert held.acquired
        run = sync.sync_rooms()
    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    with single_flight(lock_name("rooms", environment_space())):
        skipped = sync.sync_rooms()
    assert skipped.outcome == SyncRun.Outcome.SKIPPED


@pytest.mark.django_db
def test_the_command_syncs_the_spaces_named_and_refuses_an_unknown_name(sandbox, revoked):
    sandbox.seed(rooms=2, seed=7)
    out = io.StringIO()
    call_command("sync_signalwire", "--rooms", "--space", environment_space().name, stdout=out)
    assert Room.objects.count() == 2
    assert not SyncRun.objects.filter(space=revoked).exists()

    with pytest.raises(CommandError, match="No Space named Nowhere; the Spaces: "):
        call_command("sync_signalwire", "--rooms", "--space", "Nowhere", stdout=io.StringIO())

    with pytest.raises(CommandError, match="rooms of Revoked"):
        call_command("sync_signalwire", "--rooms", stdout=io.StringIO(), stderr=io.StringIO())
    assert SyncRun.objects.filter(space=revoked, outcome=SyncRun.Outcome.FAILED).count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_scheduled_sync_runs_once_per_space_in_the_worker(celery_worker, sandbox, revoked):
    sandbox.seed(rooms=4, seed=8)
    sync_tasks.sync_rooms.delay(trigger="per-space")

    def finished():
        runs = SyncRun.objects.filter(trigger="per-space").exclude(
            outcome=SyncRun.Outcome.RUNNING
        )
        return list(runs) if runs.count() == 2 else None

    runs = {run.space_id: run for run in wait_until(finished, timeout=60, message="two runs")}
    assert runs[environment_space().pk].outcome == SyncRun.Outcome.SUCCEEDED
    assert runs[revoked.pk].outcome == SyncRun.Outcome.FAILED
    assert Room.objects.filter(space=environment_space()).count() == 4
    assert not Room.objects.filter(space=revoked).exists()


@pytest.mark.django_db
def test_a_failing_space_opens_its_own_sync_alert_naming_it(sandbox, revoked, settings):
    from rooms.models import Alert, AlertKind
    from rooms.services import alerts

    settings.SIGNALWIRE_SYNC_INTERVAL = 300
    sandbox.seed(rooms=1, seed=9)
    for _ in range(alerts.SYNC_FAILED_RUNS):
        with pytest.raises(SignalWireError):
            sync.sync_rooms(space=revoked)
        sync.sync_rooms()
    alerts.check_alerts()
    opened = Alert.objects.filter(kind=AlertKind.SYNC_FAILING, resolved_at__isnull=True)
    assert [(a.subject, a.space_id) for a in opened] == [("rooms in Revoked", revoked.pk)]
    assert 'in the Space "Revoked"' in opened[0].summary
    assert REVOKED not in opened[0].summary


@pytest.mark.django_db
def test_two_spaces_mirror_rooms_of_one_name_each_with_its_own_settings(
    sandbox, sandbox_b, other_space
):
    sandbox.create_room({"name": "lobby", "max_members": 5})
    sandbox_b.create_room({"name": "lobby", "max_members": 9})
    sandbox_b.create_room({"name": "only-in-b"})

    for space in (environment_space(), other_space):
        assert sync.sync_rooms(space=space).outcome == SyncRun.Outcome.SUCCEEDED

    mirrored = {(r.space_id, r.name): r.max_members for r in Room.objects.all()}
    assert mirrored == {
        (environment_space().pk, "lobby"): 5,
        (other_space.pk, "lobby"): 9,
        (other_space.pk, "only-in-b"): Room.objects.get(name="only-in-b").max_members,
    }
    # A room gone from one Space is marked deleted there only.
    sandbox_b.delete_room(next(iter(sandbox_b.rooms)))
    sync.sync_rooms(space=other_space)
    gone = Room.objects.filter(sync_state="deleted_remotely")
    assert [r.space_id for r in gone] == [other_space.pk]
    assert Room.objects.get(space=environment_space(), name="lobby").sync_state == "synced"


@pytest.mark.django_db
def test_a_spaces_alert_is_emailed_only_to_staff_who_may_see_that_space(
    sandbox, revoked, settings, django_user_model
):
    from rooms.models import AlertDelivery, AlertKind, AlertSubscription
    from rooms.services import alerts

    settings.SIGNALWIRE_SYNC_INTERVAL = 300
    people = {
        name: django_user_model.objects.create_user(
            name, email=f"{name}@example.com", is_staff=True, is_superuser=name == "boss"
        )
        for name in ("boss", "first", "second")
    }
    environment_space().staff.add(people["first"])
    revoked.staff.add(people["second"])
    for user in people.values():
        AlertSubscription.objects.create(user=user, kinds=[AlertKind.SYNC_FAILING])
    for _ in range(alerts.SYNC_FAILED_RUNS):
        with pytest.raises(SignalWireError):
            sync.sync_rooms(space=revoked)

    alerts.check_alerts()

    told = AlertDelivery.objects.filter(channel=AlertDelivery.Channel.EMAIL)
    assert sorted(told.values_list("recipient", flat=True)) == [
        "boss@example.com", "second@example.com"
    ]


def queued_space_ids(redis_client, settings) -> list[int | None]:
    """The Space of each task waiting in the test session's queue (read from the broker)."""
    import base64
    import json

    found = []
    for raw in redis_client.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1):
        message = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        found.append(kwargs.get("space_id"))
    return found


@pytest.mark.django_db
def test_sync_now_queues_only_the_spaces_the_staff_member_works_in(
    sandbox, revoked, client, django_user_model, redis_client, settings
):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(
        Permission.objects.get(codename="run_sync"), Permission.objects.get(codename="view_syncrun")
    )
    revoked.staff.add(clerk)
    client.force_login(clerk)
    redis_client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)

    client.post(reverse("admin:rooms_syncrun_sync_now"))

    queued = queued_space_ids(redis_client, settings)
    redis_client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    assert queued and set(queued) == {revoked.pk}


@pytest.mark.django_db
def test_the_syncs_read_the_space_once_per_run_not_once_per_row(sandbox, sandbox_server):
    import requests
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sandbox.seed(conferences=6, seed=3)
    room = sandbox.create_room({"name": "webinar", "enable_room_previews": False})
    for _ in range(3):
        started = requests.post(
            f"{sandbox_server.url}/__sandbox__/sessions",
            json={"room_name": room["name"], "members": ["ann"], "record": True}, timeout=5,
        ).json()
        requests.post(f"{sandbox_server.url}/__sandbox__/sessions/{started['id']}/end", timeout=5)
    sync.sync_conferences()
    sync.sessions_sync_history()
    environment_space()  # made already; what follows only reads it

    for run_sync in (sync.sync_conference_tokens, sync.recordings_sync):
        with CaptureQueriesContext(connection) as queries:
            run = run_sync()
        assert run.outcome == SyncRun.Outcome.SUCCEEDED and run.created, run_sync
        space_reads = [q for q in queries.captured_queries if '"rooms_space"' in q["sql"]]
        assert len(space_reads) <= 2, (run_sync.__name__, len(space_reads))
