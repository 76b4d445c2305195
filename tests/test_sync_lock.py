"""The single-flight Redis lock: one holder, renewal, take-over from a holder that is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rooms.connections import redis_client
from rooms.locks import Holder, lock_key, machine_id, single_flight
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def test_a_second_holder_is_refused_at_once_and_the_lock_frees_on_exit():
    with single_flight("test:one", timeout=60) as first:
        assert first.acquired
        started = time.monotonic()
        with single_flight("test:one", timeout=60) as second:
            assert not second.acquired
        # Refused, not queued behind the first: far less than the lock's 60 s life.
        assert time.monotonic() - started < 5
    with single_flight("test:one", timeout=60) as again:
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


def test_a_push_slower_than_the_row_lock_timeout_keeps_the_row(settings):
    from rooms.services import RowBusyError
    from rooms.services.common import row_lock

    settings.SIGNALWIRE_PUSH_LOCK_TIMEOUT = 0.3
    with row_lock("room", 4242, wait=0):
        time.sleep(1.0)  # the push's work, three timeouts long
        with pytest.raises(RowBusyError):
            with row_lock("room", 4242, wait=0):
                pass
    with row_lock("room", 4242, wait=0):
        pass  # freed on the way out


def test_a_killed_holder_blocks_others_only_until_the_timeout():
    # A holder that died: the lock is set with a TTL and nobody renews it.
    crashed = redis_client().lock(lock_key("test:crash"), timeout=0.3, thread_local=False)
    assert crashed.acquire(blocking=False)
    with single_flight("test:crash", timeout=0.3) as blocked:
        assert not blocked.acquired
    wait_until(
        lambda: not redis_client().exists(lock_key("test:crash")), timeout=5, interval=0.02,
        message="the crashed holder's lock to expire",
    )
    with single_flight("test:crash", timeout=0.3) as next_run:
        assert next_run.acquired


def test_a_holder_that_lost_its_lock_notices():
    with single_flight("test:lost", timeout=0.3) as flight:
        # Another holder takes over (as if this one had stalled past the TTL).
        redis_client().set(lock_key("test:lost"), "someone-else")
        wait_until(lambda: flight.lost, timeout=5, interval=0.02, message="the lost lock")
    # Releasing never frees a lock that belongs to someone else.
    assert redis_client().get(lock_key("test:lost")) == b"someone-else"


# --- a holder that is gone is taken over at once ---------------------------------------

HOLD_SCRIPT = """
import sys, time, django
django.setup()
from rooms.locks import single_flight
with single_flight(sys.argv[1], timeout=float(sys.argv[2])) as flight:
    print("held" if flight.acquired else "refused", flush=True)
    time.sleep(120)
"""


def start_holder(name: str, timeout: float = 60) -> subprocess.Popen:
    """Run a real process that takes the lock and keeps it (renewing) until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, name, str(timeout)],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings_test"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_in_another_process_keeps_its_lock():
    proc = start_holder("test:alive")
    try:
        with single_flight("test:alive", timeout=60) as other:
            assert not other.acquired
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_holder_killed_with_sigkill_is_taken_over_at_once():
    proc = start_holder("test:killed", timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert redis_client().pttl(lock_key("test:killed")) > 50_000  # far from expiring

    started = time.monotonic()
    with single_flight("test:killed", timeout=60) as flight:
        assert flight.acquired
        assert flight.took_over is not None and flight.took_over.pid == proc.pid
    assert time.monotonic() - started < 1


def test_a_killed_holder_not_yet_reaped_counts_as_gone():
    proc = start_holder("test:zombie", timeout=60)
    proc.send_signal(signal.SIGKILL)
    try:
        state = Path(f"/proc/{proc.pid}/stat")
        wait_until(
            lambda: state.read_text().rsplit(")", 1)[1].split()[0] == "Z",
            timeout=10, interval=0.02, message="the holder to be a zombie",
        )
        with single_flight("test:zombie", timeout=60) as flight:
            assert flight.acquired and flight.took_over.pid == proc.pid
    finally:
        proc.wait(timeout=10)


def plant(name: str, holder: Holder, ttl_ms: int) -> str:
    """Set a lock as `holder` would have set it, with `ttl_ms` left."""
    token = holder.token()
    redis_client().set(lock_key(name), token, px=ttl_ms)
    return token


def test_a_reused_pid_is_not_mistaken_for_the_holder():
    # The recorded pid runs (it is this very process) but started at another time.
    plant("test:reused", Holder(machine_id(), os.getpid(), "1", 60_000), 60_000)
    with single_flight("test:reused", timeout=60) as flight:
        assert flight.acquired and flight.took_over.pid == os.getpid()


def test_a_holder_on_another_machine_is_trusted_while_it_renews():
    elsewhere = Holder("worker-2/another-boot/4026531836", 4242, "99", 60_000)
    planted = plant("test:remote", elsewhere, 59_000)
    with single_flight("test:remote", timeout=60) as flight:
        assert not flight.acquired
    assert redis_client().get(lock_key("test:remote")).decode() == planted


def test_a_holder_that_stopped_renewing_is_taken_over_before_the_timeout():
    # Two renewals (each a third of the timeout) missed: 15 s of 60 s left.
    elsewhere = Holder("worker-2/another-boot/4026531836", 4242, "99", 60_000)
    plant("test:stalled", elsewhere, 15_000)
    with single_flight("test:stalled", timeout=60) as flight:
        assert flight.acquired and flight.took_over == elsewhere
