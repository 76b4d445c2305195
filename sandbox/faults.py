"""Injected misbehaviour of the sandbox Space: 5xx, 429, 403, 422, dropped connections."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

FAULT_STATUSES = (500, 502, 503, 429, 403, 422, "drop")


@dataclass
class Fault:
    """One injected misbehaviour and the requests it applies to."""

    status: int | str
    remaining: int | None = None
    fraction: float | None = None
    retry_after: float | None = None
    methods: frozenset[str] | None = None
    path_prefix: str | None = None
    after_processing: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Tell whether a request falls under this fault's filters."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class FaultsMixin:
    """The fault operations of a SandboxSpace."""

    _lock: threading.RLock
    _faults: list[Fault]
    _fault_rng: random.Random

    def inject_fault(
        self,
        status: int | str,
        count: int | None = None,
        fraction: float | None = None,
        retry_after: float | None = None,
        methods: Iterable[str] | None = None,
        path_prefix: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Make matching API requests fail: the next `count`, a `fraction`, or all of them."""
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if status not in FAULT_STATUSES or isinstance(status, bool):
            raise ValueError(f"status must be one of {FAULT_STATUSES}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ValueError("count must be an integer")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, int | float):
                raise ValueError("fraction must be a number")
            if not 0 <= fraction <= 1:
                raise ValueError("fraction must be between 0 and 1")
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
                raise ValueError("retry_after must be a number of seconds")
            if retry_after < 0:
                raise ValueError("retry_after must not be negative")
        if isinstance(methods, str):
            methods = [methods]
        method_set = frozenset(m.upper() for m in methods) if methods is not None else None
        if path_prefix is not None and not isinstance(path_prefix, str):
            raise ValueError("path_prefix must be a string")
        fault = Fault(
            status=status,
            remaining=count,
            fraction=None if fraction is None else float(fraction),
            retry_after=retry_after,
            methods=method_set,
            path_prefix=path_prefix,
            after_processing=bool(after_processing),
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults still active, in the order they are tried."""
        with self._lock:
            return list(self._faults)

    def take_fault(self, method: str, path: str, after_processing: bool) -> Fault | None:
        """Decide whether this request fails now; consume one use of the fault if so."""
        with self._lock:
            for fault in self._faults:
                if fault.after_processing != after_processing or not fault.matches(method, path):
                    continue
                if fault.fraction is not None and self._fault_rng.random() >= fault.fraction:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
            return None
