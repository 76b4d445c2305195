"""Single-flight locks in Redis: one holder at a time across every worker and machine.

A holder keeps its lock alive with a renewal thread, so a long run never loses it to the
timeout. The lock's value names its holder (machine, process id and start time, and its
timeout), so a holder that died need not block others until the timeout: a starter that
finds the lock held by a process that no longer runs on this machine, or by a holder that
stopped renewing it, takes it over at once (compare-and-delete, then acquire).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from rooms.connections import redis_client

logger = logging.getLogger("rooms.locks")

SEPARATOR = "|"
PROC = Path("/proc")


def lock_key(name: str) -> str:
    """The Redis key of a named single-flight lock (under settings.REDIS_KEY_PREFIX)."""
    return f"{settings.REDIS_KEY_PREFIX}lock:{name}"


# --- who holds a lock -------------------------------------------------------------------


@functools.cache
def machine_id() -> str:
    """Name the process-id space this process lives in: host, boot and pid namespace.

    Two processes see each other's pids only when all three match; on systems without
    /proc the boot and namespace parts are empty and liveness is left to the timeout.
    """
    host = socket.gethostname().replace(SEPARATOR, "_").replace("/", "_")
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = str(os.stat(PROC / "self/ns/pid").st_ino)
    except OSError:
        boot = namespace = ""
    return f"{host}/{boot}/{namespace}"


def _process_facts(pid: int) -> tuple[str, str] | None:
    """Return a process's state letter and start time (clock ticks after boot), or None."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # Fields after the command name, which may itself hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], fields[19]


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its value says: machine, process, start time and timeout."""

    machine: str
    pid: int
    started: str
    timeout_ms: int

    @classmethod
    def me(cls, timeout: float) -> Holder:
        """Describe this process as a holder of a lock with this timeout."""
        facts = _process_facts(os.getpid())
        return cls(machine_id(), os.getpid(), facts[1] if facts else "", int(timeout * 1000))

    def token(self) -> str:
        """The lock value: the holder's facts and a random part unique to this holding."""
        return SEPARATOR.join(
            (self.machine, str(self.pid), self.started, str(self.timeout_ms), uuid.uuid4().hex)
        )

    @classmethod
    def from_token(cls, token: bytes | str | None) -> Holder | None:
        """Read a lock value; None when it was not written by `Holder.token`."""
        if isinstance(token, bytes):
            token = token.decode("utf-8", "replace")
        parts = (token or "").split(SEPARATOR)
        if len(parts) != 5:
            return None
        machine, pid, started, timeout_ms, _ = parts
        try:
            return cls(machine, int(pid), started, int(timeout_ms))
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"process {self.pid} on {self.machine.split('/')[0]}"

    def is_gone(self) -> bool:
        """Tell whether this holder's process surely no longer runs (False when unsure)."""
        if self.machine != machine_id() or self.machine.endswith("//"):
            return False
        facts = _process_facts(self.pid)
        if facts is None:
            # /proc may hide other users' processes (hidepid): ask the kernel as well.
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False
        state, started = facts
        # A zombie has exited; another start time means the pid was reused.
        return state in ("Z", "X") or (bool(self.started) and started != self.started)

    def stopped_renewing(self, ttl_ms: int) -> bool:
        """Tell whether the lock's remaining time shows two renewals missed in a row.

        A holder renews every third of its timeout, so the time left never drops below
        two thirds of it while the holder lives, nor below one third after one miss.
        """
        return 0 <= ttl_ms < self.timeout_ms / 3


# --- the flight -------------------------------------------------------------------------


class Flight:
    """What a caller learns from `single_flight`: whether it holds the lock, and still does."""

    def __init__(self, lock: redis.lock.Lock | None, took_over: Holder | None = None) -> None:
        self._lock = lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        # The dead (or stalled) holder this flight took the lock from, if any.
        self.took_over = took_over

    @property
    def acquired(self) -> bool:
        """Tell whether this caller got the lock."""
        return self._lock is not None

    def _renew_every(self, interval: float) -> None:
        assert self._lock is not None
        while not self._stop.wait(interval):
            try:
                # reacquire resets the TTL to the full timeout and fails if another holder
                # took the lock after it expired.
                self._lock.reacquire()
            except LockError:
                logger.error("lost the lock %s; the run will stop", self._lock.name)
                self.lost = True
                return
            except RedisError as exc:
                # Redis may come back before the TTL runs out; try again next tick.
                logger.warning("could not renew the lock %s: %s", self._lock.name, exc)

    def start_renewal(self, interval: float) -> None:
        """Renew the lock in a daemon thread every `interval` seconds until released."""
        self._thread = threading.Thread(
            target=self._renew_every, args=(interval,), name="lock-renewal", daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and free the lock if this caller still holds it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._lock is None:
            return
        try:
            self._lock.release()
        except LockError:
            pass  # it expired or was taken over: nothing of ours to free
        except RedisError as exc:
            logger.warning("could not release the lock %s: %s", self._lock.name, exc)


def _take_over(lock: redis.lock.Lock, token: str) -> Holder | None:
    """Take the lock from a holder that is gone; return that holder, or None if it lives."""
    current = lock.redis.get(lock.name)
    holder = Holder.from_token(current)
    if holder is None:
        return None  # free by now, or held by code that does not name itself: wait it out
    if not (holder.is_gone() or holder.stopped_renewing(lock.redis.pttl(lock.name))):
        return None
    try:
        # Deletes the key only if it still holds that very value (a Lua compare-and-delete).
        lock.do_release(current)
    except LockNotOwnedError:
        return None  # someone else took it over first
    if not lock.acquire(blocking=False, token=token):
        return None
    logger.warning("took the lock %s over from %s, which is gone", lock.name, holder)
    return holder


@contextmanager
def single_flight(name: str, *, timeout: float | None = None) -> Iterator[Flight]:
    """Hold the named lock for the block, or yield a Flight with acquired False at once.

    The lock expires `timeout` seconds (default SIGNALWIRE_SYNC_LOCK_TIMEOUT) after the
    last renewal; a holder whose process is gone, or whose renewals stopped, is taken
    over at once (Flight.took_over says from whom).
    """
    ttl = float(timeout if timeout is not None else settings.SIGNALWIRE_SYNC_LOCK_TIMEOUT)
    # thread_local=False: the renewal thread must see the token the acquiring thread set.
    lock = redis_client().lock(lock_key(name), timeout=ttl, blocking=False, thread_local=False)
    token = Holder.me(ttl).token()
    took_over = None
    if not lock.acquire(blocking=False, token=token):
        took_over = _take_over(lock, token)
        if took_over is None:
            yield Flight(None)
            return
    flight = Flight(lock, took_over)
    flight.start_renewal(max(ttl / 3, 0.05))
    try:
        yield flight
    finally:
        flight.release()
