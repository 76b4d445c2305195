"""Waiting on a condition: the one poll loop the tests use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str | Callable[[], str] | None = None,
) -> T:
    """Call `condition` until it returns something truthy and return that; fail after `timeout`.

    `message` (text, or a callable asked only on failure) says what was awaited; the
    condition's docstring or name stands in without one.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            what = what or condition.__doc__ or getattr(condition, "__name__", repr(condition))
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}", pytrace=False)
        time.sleep(interval)


def run_ended(run: Any, *, timeout: float = 60.0) -> Any:
    """Wait until the worker ended an ActionRun; return it as stored."""

    def ended() -> bool:
        run.refresh_from_db()
        return run.finished_at is not None

    wait_until(
        ended, timeout=timeout, message=lambda: f"run {run.pk} to end: {run.done} of {run.total}"
    )
    return run
