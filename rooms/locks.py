"""Single-flight locks in Redis: one holder at a time across every worker and machine.

A holder keeps its lock alive with a renewal thread, so a long run never loses it to the
timeout; a holder that dies stops renewing and the lock frees itself after the timeout.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from redis.exceptions import LockError, RedisError

logger = logging.getLogger("rooms.locks")



@functools.lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    """Share one connection pool per Redis URL within a process."""
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


def lock_key(name: str) -> str:
    """The Redis key of a named single-flight lock (under settings.REDIS_KEY_PREFIX)."""
    return f"{settings.REDIS_KEY_PREFIX}lock:{name}"


def redis_client() -> redis.Redis:
    """Return a Redis client for settings.REDIS_URL as it is now (never at import time)."""
    return _redis_for(settings.REDIS_URL)


class Flight:
    """What a caller learns from `single_flight`: whether it holds the lock, and still does."""

    def __init__(self, lock: redis.lock.Lock | None) -> None:
        self._lock = lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

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


@contextmanager
def single_flight(name: str, *, timeout: float | None = None) -> Iterator[Flight]:
    """Hold the named lock for the block, or yield a Flight with acquired False at once.

    The lock expires `timeout` seconds (default SIGNALWIRE_SYNC_LOCK_TIMEOUT) after the
    last renewal, so a killed holder blocks others for at most that long.
    """
    ttl = float(timeout if timeout is not None else settings.SIGNALWIRE_SYNC_LOCK_TIMEOUT)
    # thread_local=False: the renewal thread must see the token the acquiring thread set.
    lock = redis_client().lock(
        lock_key(name), timeout=ttl, blocking=False, thread_local=False
    )
    if not lock.acquire(blocking=False):
        yield Flight(None)
        return
    flight = Flight(lock)
    flight.start_renewal(max(ttl / 3, 0.05))
    try:
        yield flight
    finally:
        flight.release()
