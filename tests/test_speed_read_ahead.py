"""The sync's read-ahead thread: pages in order, errors handed over, never left running."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rooms import sync
from rooms.models import Conference, SyncRun
from rooms.signalwire.client import build_client
from rooms.sync.engine import FullListingSync as MirrorSync
from rooms.sync.pages import read_ahead


def read_ahead_threads() -> list[threading.Thread]:
    """The read-ahead threads still alive."""
    return [t for t in threading.enumerate() if t.name == "sync-read-ahead" and t.is_alive()]


class Source:
    """A page source that records whether it was closed, optionally failing or endless."""

    def __init__(self, pages: int | None, fail_after: int | None = None) -> None:
        self.pages = pages
        self.fail_after = fail_after
        self.closed = False
        self.handed = 0

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        try:
            number = 0
            while self.pages is None or number < self.pages:
                if self.fail_after is not None and number == self.fail_after:
                    raise RuntimeError("the Space went away")
                number += 1
                self.handed = number
                yield [{"id": f"id-{number}"}]
        finally:
            self.closed = True


def test_pages_arrive_in_order_and_the_thread_ends():
    source = Source(pages=5)
    got = [page[0]["id"] for page in read_ahead(iter(source))]
    assert got == [f"id-{n}" for n in range(1, 6)]
    assert source.closed
    assert read_ahead_threads() == []


def test_an_error_in_the_thread_reaches_the_consumer():
    source = Source(pages=None, fail_after=2)
    got = []
    with pytest.raises(RuntimeError, match="went away"):
        for page in read_ahead(iter(source)):
            got.append(page[0]["id"])
    assert got == ["id-1", "id-2"]
    assert source.closed
    assert read_ahead_threads() == []


def test_a_consumer_that_stops_early_stops_the_thread_and_closes_the_listing():
    source = Source(pages=None)
    pages = read_ahead(iter(source))
    assert next(pages)[0]["id"] == "id-1"
    pages.close()  # what a raised SyncAborted does to the loop over the pages
    assert source.closed
    assert read_ahead_threads() == []
    assert source.handed <= 3  # one page ahead, at most one more waiting to be handed


@pytest.mark.django_db
def test_a_lost_lock_stops_the_run_and_leaves_no_thread(sandbox, redis_client, monkeypatch):
    redis_client.flushdb()
    sandbox.seed(conferences=9, seed=51)
    client = build_client(profile="background")
    listing = Source(pages=None)
    original_pages = client.iter_conference_pages
    closed = []

    def pages(page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        try:
            yield from original_pages(page_size)
            # Endless afterwards: only the abort can end this listing.
            yield from listing
        finally:
            closed.append(True)

    monkeypatch.setattr(client, "iter_conference_pages", pages)
    applied = MirrorSync.apply_page

    def apply_then_lose(self: MirrorSync, page: list[dict[str, Any]]) -> None:
        applied(self, page)
        self.flight.lost = True  # as the renewal thread marks it when another run took over

    monkeypatch.setattr(MirrorSync, "apply_page", apply_then_lose)

    with pytest.raises(sync.SyncAborted):
        sync.sync_conferences(client=client, page_size=3)

    run = SyncRun.objects.get()
    assert run.outcome == SyncRun.Outcome.FAILED
    assert "Lost the sync lock" in run.error
    assert Conference.objects.count() == 3  # the first page only
    assert closed == [True]
    assert read_ahead_threads() == []
    client.close()
