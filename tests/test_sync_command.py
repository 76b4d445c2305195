"""`manage.py sync_signalwire`: progress, summary and exit codes."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from rooms.locks import single_flight
from rooms.models import Conference, ConferenceToken, Room, SyncRun, environment_space
from rooms.sync.runs import lock_name

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("sync_signalwire", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_no_option_syncs_everything_and_prints_a_summary(sandbox):
    sandbox.seed(conferences=3, rooms=2, seed=31)

    output = run_command("--page-size", "2")

    assert Conference.objects.count() == 3
    assert Room.objects.count() == 2
    assert ConferenceToken.objects.count() == 6
    assert "page 2: 3 seen, 3 created" in output
    assert "Succeeded" in output and "Sync complete." in output
    assert set(SyncRun.objects.values_list("trigger", flat=True)) == {"command"}


def test_options_choose_what_to_sync(sandbox):
    sandbox.seed(conferences=2, rooms=2, seed=32)

    run_command("--rooms")

    assert Room.objects.count() == 2
    assert Conference.objects.count() == 0


def test_a_failed_sync_exits_non_zero(sandbox, settings):
    settings.SIGNALWIRE_RETRIES = 0
    sandbox.seed(conferences=2, seed=33)
    sandbox.inject_fault(500, path_prefix="/api/video/conferences")

    with pytest.raises(CommandError, match="conferences"):
        run_command("--conferences")

    assert SyncRun.objects.get().outcome == SyncRun.Outcome.FAILED


def test_a_sync_already_running_exits_non_zero(sandbox):
    busy = single_flight(lock_name("rooms", environment_space()))
    with busy, pytest.raises(CommandError, match="running"):
        run_command("--rooms")


def test_exit_status_from_the_shell(sandbox, settings):
    from django.core.management import execute_from_command_line

    settings.SIGNALWIRE_RETRIES = 0
    sandbox.inject_fault(503, path_prefix="/api/video/rooms")
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "sync_signalwire", "--rooms"])
    assert exit_info.value.code == 1
