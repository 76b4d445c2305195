"""The single-flight Redis lock: one holder, renewal for long runs, expiry after a crash."""

from __future__ import annotations

import time

import pytest

from rooms.locks import lock_key, redis_client, single_flight


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def test_a_second_holder_is_refused_at_once_and_the_lock_frees_on_exit():
    with single_flight("test:one", timeout=5) as first:
        assert first.acquired
        started = time.monotonic()
        with single_flight("test:one", timeout=5) as second:
            assert not second.acquired
        assert time.monotonic() - started < 0.5
    with single_flight("test:one", timeout=5) as again:
        assert again.acquired


def test_different_names_do_not_block_each_other():
    with single_flight("test:a", timeout=5) as a, single_flight("test:b", timeout=5) as b:
        assert a.acquired and b.acquired


def test_a_long_run_keeps_its_lock_past_the_timeout():
    with single_flight("test:long", timeout=0.3) as flight:
        time.sleep(1.0)
        assert not flight.lost
        assert redis_client().exists(lock_key("test:long"))
        with single_flight("test:long", timeout=0.3) as other:
            assert not other.acquired
    assert not redis_client().exists(lock_key("test:long"))


def test_a_killed_holder_blocks_others_only_until_the_timeout():
    # A holder that died: the lock is set with a TTL and nobody renews it.
    crashed = redis_client().lock(lock_key("test:crash"), timeout=0.3, thread_local=False)
    assert crashed.acquire(blocking=False)
    with single_flight("test:crash", timeout=0.3) as blocked:
        assert not blocked.acquired
    time.sleep(0.5)
    with single_flight("test:crash", timeout=0.3) as next_run:
        assert next_run.acquired


def test_a_holder_that_lost_its_lock_notices():
    with single_flight("test:lost", timeout=0.3) as flight:
        # Another holder takes over (as if this one had stalled past the TTL).
        redis_client().set(lock_key("test:lost"), "someone-else")
        deadline = time.monotonic() + 2
        while not flight.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flight.lost
    # Releasing never frees a lock that belongs to someone else.
    assert redis_client().get(lock_key("test:lost")) == b"someone-else"
