"""Wall-clock deadlines for SignalWire calls: the pooled adapter, its timeouts and a watchdog.

A socket timeout bounds each wait for bytes, never a whole call: a Space that drips one
byte every few seconds, or retries that add up, could hold a call for minutes. Here every
call gets a deadline. Connect and read timeouts shrink to what is left of it, the retry
policy stops when the next attempt could not finish in time (see `current_call`), and a
watchdog thread shuts the socket of any attempt still running at the deadline, which wakes
the read that is blocked on it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.timeout import Timeout

logger = logging.getLogger("rooms.signalwire")

# urllib3 refuses a zero timeout; an attempt started this close to the deadline fails fast.
MIN_TIMEOUT = 0.001


class Call:
    """One client call's deadline and the connections its attempts are using."""

    __slots__ = ("seconds", "deadline", "expired", "gave_up", "done", "_connections", "_lock")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False  # the watchdog fired
        self.gave_up = False  # the retry policy stopped because time ran out
        self.done = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    @property
    def out_of_time(self) -> bool:
        """Tell whether the deadline, not the Space, ended the call."""
        return self.expired or self.gave_up or self.remaining() <= 0

    def attach(self, conn: HTTPConnection) -> None:
        """Watch a connection an attempt of this call is about to use."""
        with self._lock:
            if not self.done and conn not in self._connections:
                self._connections.append(conn)

    def detach_all(self) -> None:
        """Stop watching the previous attempt's connections (they may go back to the pool)."""
        with self._lock:
            self._connections.clear()

    def expire(self) -> None:
        """Shut the sockets of the attempt still running, so its blocked read returns."""
        with self._lock:
            if self.done:
                return
            self.expired = True
            connections, self._connections = self._connections, []
        for conn in connections:
            _shut(conn)

    def finish(self) -> None:
        """Mark the call over: the watchdog leaves it alone from now on."""
        with self._lock:
            self.done = True
            self._connections.clear()


def _shut(conn: HTTPConnection) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        # The plain socket's shutdown, also for TLS sockets: it only wakes the reader.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass


class _Watchdog:
    """One daemon thread per process that expires calls whose deadline has passed."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # After a fork the child has no watchdog thread and maybe a lock held by a thread
        # that did not survive: start afresh.
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Call]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, call: Call) -> None:
        """Expire `call` at its deadline unless it finishes first."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="signalwire-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._heap[0][2] is call:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2].done:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        call = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            try:
                call.expire()
            except Exception:  # this thread must outlive any one call's trouble
                logger.exception("could not expire a SignalWire call at its deadline")


_WATCHDOG = _Watchdog()
_CURRENT: ContextVar[Call | None] = ContextVar("signalwire_call", default=None)


def current_call() -> Call | None:
    """Return the call running in this thread (or task), if any."""
    return _CURRENT.get()


@contextmanager
def call_budget(seconds: float) -> Iterator[Call]:
    """Run the block as one call with a deadline; a nested block shares the outer deadline."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    call = Call(seconds)
    token = _CURRENT.set(call)
    _WATCHDOG.watch(call)
    try:
        yield call
    finally:
        call.finish()
        _CURRENT.reset(token)


class DeadlineTimeout(Timeout):
    """urllib3 Timeout whose every attempt gets at most what is left of the call's deadline."""

    def __init__(self, *, connect: float, read: float, deadline: float) -> None:
        left = max(deadline - time.monotonic(), MIN_TIMEOUT)
        super().__init__(connect=min(connect, left), read=min(read, left), total=left)
        self.deadline = deadline
        self.connect_limit = connect
        self.read_limit = read

    def clone(self) -> DeadlineTimeout:
        """Give the next attempt (urllib3 clones per attempt) the time left at its start."""
        return DeadlineTimeout(
            connect=self.connect_limit, read=self.read_limit, deadline=self.deadline
        )


class _Watched:
    """Connection mixin: put the connection under the running call's watch when it is used.

    Connecting (and a TLS handshake) happens before the socket is reachable here; its
    timeout is the connect timeout, which DeadlineTimeout caps at the time left.
    """

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _watch(conn: Any) -> None:
    call = _CURRENT.get()
    if call is not None:
        call.attach(conn)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """requests adapter whose connections the deadline watchdog can shut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Make the pool manager build watched connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Watch connections made through a proxy too."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager
