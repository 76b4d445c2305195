"""`manage.py sync_signalwire` starts without the system checks; `manage.py check` has them."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from rooms.management.commands import sync_signalwire
from rooms.models import Conference

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def _always_fails(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """A system check that always reports an error."""
    return [checks.Error("deliberately broken", id="speed.E001")]


@pytest.fixture
def failing_check() -> Iterator[None]:
    checks.register(_always_fails)
    try:
        yield
    finally:
        checks.registry.registry.registered_checks.discard(_always_fails)


def test_a_sync_runs_although_a_system_check_fails(sandbox, failing_check):
    sandbox.seed(conferences=3, seed=41)

    out = io.StringIO()
    command = sync_signalwire.Command(stdout=out, stderr=io.StringIO())
    # As manage.py runs it (checks not skipped), without closing the test's connection.
    options = command.create_parser("manage.py", "sync_signalwire").parse_args(["--conferences"])
    command.execute(**vars(options))

    assert Conference.objects.count() == 3
    assert "Sync complete." in out.getvalue()


def test_manage_py_check_still_reports_it(failing_check):
    with pytest.raises(SystemCheckError, match="deliberately broken"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
