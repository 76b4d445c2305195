"""Request-scoped state of the admin's views, kept in a context variable, not on the request.

A mirrored row's add, change and delete views learn things on the way that a later step of
the same request needs: the inline formsets (the form's validation calls SignalWire only
when they are valid too), whether the save only waits to be pushed (Django's success
message is then dropped) and how a delete went. Each view opens a fresh state for its own
duration; code running outside such a view gets a throwaway one, so nothing leaks between
requests or threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MirrorViewState:
    """What one add, change or delete request of a mirrored row has learnt so far."""

    formsets: list[Any] = field(default_factory=list)
    pending: bool = False
    delete_outcome: str = "deleted"


_mirror_view: ContextVar[MirrorViewState | None] = ContextVar("mirror_view", default=None)


@contextmanager
def mirror_view_state() -> Iterator[MirrorViewState]:
    """Open a fresh state for the duration of one view, and drop it after."""
    state = MirrorViewState()
    token = _mirror_view.set(state)
    try:
        yield state
    finally:
        _mirror_view.reset(token)


def current_mirror_view() -> MirrorViewState:
    """Return the state of the view running now (a throwaway one outside any view)."""
    return _mirror_view.get() or MirrorViewState()
