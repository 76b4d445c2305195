"""Client profiles, the shared connection pool, and the guard against calls in transactions.

Over real HTTP to a scripted loopback server (tests.hostile_space), which records every
request and TCP connection it gets.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest
from django.db import connection, transaction

from rooms.signalwire.client import Credentials, build_client
from rooms.signalwire.errors import (
    ConfigurationError,
    RemoteCallInTransactionError,
    SignalWireError,
    UnavailableError,
)
from tests.hostile_space import HostileSpace

TOKEN = "profiles-test-api-token-91d0"


@pytest.fixture
def space(settings):
    """A scripted Space the portal's settings point at (answers one object by default)."""
    server = HostileSpace().start()
    settings.SIGNALWIRE_SPACE_URL = server.url
    settings.SIGNALWIRE_PROJECT_ID = "proj"
    settings.SIGNALWIRE_API_TOKEN = TOKEN
    yield server
    server.stop()


# --- one pool per process and profile -------------------------------------------------


def test_build_client_reuses_one_client_and_connection_across_calls(space):
    with build_client() as first:
        first.get_conference("c1")
    with build_client() as second:  # leaving the with block above closed nothing
        second.get_conference("c2")

    assert second is first
    assert len(space.requests) == 2
    assert len(space.connections) == 1


def test_each_profile_and_each_settings_change_get_their_own_client(space, settings):
    background = build_client()
    interactive = build_client(profile="interactive")
    assert background.profile == "background" and interactive.profile == "interactive"
    assert background is build_client(profile="background")
    assert interactive is not background
    settings.SIGNALWIRE_READ_TIMEOUT = 3
    changed = build_client()
    assert changed is not background and changed.timeout[1] == 3.0


def test_a_space_in_use_keeps_its_client_while_many_other_spaces_come_and_go(space):
    busy = Credentials("https://busy.example.com", "p", "t")
    first = build_client(credentials=busy)
    for number in range(100):
        build_client(credentials=Credentials(f"https://s{number}.example.com", "p", "t"))
        assert build_client(credentials=busy) is first, number


def test_an_unknown_profile_is_a_configuration_error(space):
    with pytest.raises(ConfigurationError):
        build_client(profile="urgent")


def _child_call(parent_id: int, queue) -> None:
    client = build_client()
    client.get_conference("from-child")
    queue.put(id(client) != parent_id)


def test_a_forked_process_gets_its_own_client_and_connections(space):
    parent = build_client()
    parent.get_conference("from-parent")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_call, args=(id(parent), queue))
    child.start()
    child.join(20)
    assert child.exitcode == 0
    assert queue.get(timeout=5) is True
    # The child never used the parent's pooled socket: the Space saw two connections.
    assert len(space.connections) == 2
    parent.get_conference("again")
    assert len(space.connections) == 2


# --- the two budgets ------------------------------------------------------------------


def test_the_interactive_profile_retries_once_at_most(space, settings):
    settings.SIGNALWIRE_RETRIES = 4
    space.answer = lambda h: h.send_json({"error": "busy"}, status=503)
    with pytest.raises(UnavailableError):
        build_client(profile="interactive").get_conference("c1")
    assert len(space.requests) == 2
    with pytest.raises(UnavailableError):
        build_client().get_conference("c1")
    assert len(space.requests) == 2 + 5


def test_the_interactive_profile_gives_up_at_its_deadline(space, settings):
    settings.SIGNALWIRE_READ_TIMEOUT = 30
    settings.SIGNALWIRE_INTERACTIVE_DEADLINE = 1.5
    space.answer = lambda h: h.stall(10)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        build_client(profile="interactive").update_conference("c1", {"display_name": "x"})
    elapsed = time.monotonic() - started
    # A busy machine may answer late, but never anywhere near the 10 s stall.
    assert 1.4 <= elapsed < 1.5 + 3, elapsed
    assert "1.5s deadline" in str(caught.value)


def test_the_background_profile_is_the_default_and_has_the_longer_budget(space, settings):
    settings.SIGNALWIRE_DEADLINE = 90
    settings.SIGNALWIRE_INTERACTIVE_DEADLINE = 4
    assert build_client().deadline == 90.0
    interactive = build_client(profile="interactive")
    assert interactive.deadline == 4.0
    assert interactive.timeout[1] <= 4.0


# --- no call inside a database transaction --------------------------------------------


@pytest.mark.django_db
def test_a_call_inside_an_atomic_block_is_refused_before_anything_is_sent(space, settings):
    settings.SIGNALWIRE_REFUSE_IN_TRANSACTION = True
    client = build_client()
    with transaction.atomic(), pytest.raises(RemoteCallInTransactionError) as caught:
        client.get_conference("c1")
    assert space.requests == []
    assert "'default'" in str(caught.value)
    # A programming error, never mistaken for SignalWire being unavailable.
    assert not isinstance(caught.value, SignalWireError)
    # Outside it (the test case's own transaction does not count) the call goes through.
    assert client.get_conference("c1") == {"id": "witness"}


@pytest.mark.django_db
def test_the_guard_follows_the_setting_at_each_call(space, settings):
    client = build_client()
    settings.SIGNALWIRE_REFUSE_IN_TRANSACTION = False
    with transaction.atomic():
        client.get_conference("allowed")
    settings.SIGNALWIRE_REFUSE_IN_TRANSACTION = True
    with transaction.atomic(), pytest.raises(RemoteCallInTransactionError):
        client.get_conference("refused")
    assert [r["path"] for r in space.requests] == ["/api/video/conferences/allowed"]


@pytest.mark.django_db(transaction=True)
def test_a_hand_opened_transaction_is_refused_too(space, settings):
    settings.SIGNALWIRE_REFUSE_IN_TRANSACTION = True
    client = build_client()
    with transaction.atomic(durable=True), pytest.raises(RemoteCallInTransactionError):
        client.get_conference("durable")
    connection.ensure_connection()
    transaction.set_autocommit(False)
    try:
        with pytest.raises(RemoteCallInTransactionError) as caught:
            client.get_conference("manual")
        assert "autocommit is off" in str(caught.value)
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    client.get_conference("after")
    assert [r["path"] for r in space.requests] == ["/api/video/conferences/after"]
