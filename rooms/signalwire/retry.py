"""urllib3 retries for one Space: the time slept capped, Retry-After honoured, writes safe."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator
from typing import Any

import requests
from urllib3.exceptions import (
    MaxRetryError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import RequestHistory, Retry

from rooms.signalwire import transport

logger = logging.getLogger("rooms.signalwire")

# Answers that mean the server did not act on the request, so even a POST may be repeated.
NOT_ACTED_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def attach_history(exc: BaseException, history: tuple[RequestHistory, ...]) -> None:
    """Remember on an exception which attempts preceded it, for logging and error mapping."""
    try:
        exc.signalwire_history = history  # type: ignore[attr-defined]
    except AttributeError:  # exceptions with __slots__ cannot carry it; the facts are optional
        pass


class SpaceRetry(Retry):
    """urllib3 Retry that repeats a POST only when the server surely did not act on it.

    Connect errors are retried for every method (urllib3's `connect` counter); read errors
    and 5xx only for idempotent methods (`allowed_methods`); a POST is repeated on 429 and
    503 because those mean the server did nothing. The total time slept across retries
    (backoff with jitter, or Retry-After when longer) never exceeds `max_wait`: a
    Retry-After beyond what is left stops the retries and the last answer is returned.
    """

    def __init__(
        self, *args: Any, max_wait: float = 30.0, waited: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        self.waited = waited
        self.next_delay = 0.0

    def new(self, **kw: Any) -> SpaceRetry:
        """Carry the cap and the time already slept into the next Retry object."""
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Retry listed statuses for idempotent methods, and only 429/503 for the others."""
        if self._is_method_retryable(method):
            return status_code in self.status_forcelist
        return status_code in NOT_ACTED_STATUSES

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> SpaceRetry:
        """Count one more attempt, plan the pause before the next one and enforce the cap."""
        status = getattr(response, "status", None)
        history = (*self.history, RequestHistory(method, url, error, status, None))
        try:
            new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except Exception as exc:
            attach_history(exc, history)
            raise
        delay = new_retry.get_backoff_time()
        header_delay = None
        if response is not None and self.respect_retry_after_header:
            header_delay = retry_after_seconds(response.headers.get("Retry-After"))
        if header_delay is not None:
            delay = max(delay, header_delay)
        elif status in NOT_ACTED_STATUSES:
            # The server asked for less traffic without saying how long: never hammer it.
            delay = max(delay, self.backoff_factor)
        remaining = self.max_wait - self.waited
        if delay > remaining:
            if (header_delay is not None and header_delay > remaining) or remaining <= 0:
                reason = error or ResponseError(f"retry wait cap of {self.max_wait:g}s reached")
                capped = MaxRetryError(_pool, url or "", reason)
                attach_history(capped, history)
                raise capped
            delay = remaining
        call = transport.current_call()
        if call is not None:
            call.detach_all()  # the attempt is over; its connection may serve someone else
            if delay >= call.remaining():
                call.gave_up = True
                reason = error or ResponseError(f"the call's {call.seconds:g}s deadline passed")
                capped = MaxRetryError(_pool, url or "", reason)
                attach_history(capped, history)
                raise capped
        new_retry.waited = self.waited + delay
        new_retry.next_delay = delay
        return new_retry

    def sleep(self, response: Any = None) -> None:
        """Pause for the delay planned by `increment`, Retry-After included."""
        if self.next_delay > 0:
            time.sleep(self.next_delay)


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """Walk an exception, its causes and the urllib3 errors requests wraps in args[0]."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend((item.__cause__, item.__context__, getattr(item, "reason", None)))
        todo.extend(arg for arg in item.args[:1] if isinstance(arg, BaseException))


def transport_facts(exc: BaseException) -> tuple[int, bool]:
    """Tell from a transport failure how many attempts were made and whether one was sent."""
    history: tuple[RequestHistory, ...] = ()
    sent = isinstance(exc, (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError))
    for item in error_chain(exc):
        history = getattr(item, "signalwire_history", None) or history
        if isinstance(item, (ReadTimeoutError, ProtocolError)):
            sent = True
    for entry in history:
        if isinstance(entry.error, (ReadTimeoutError, ProtocolError)):
            sent = True
    return max(len(history), 1), sent

