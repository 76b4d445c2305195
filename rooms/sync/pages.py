"""Page plumbing of a sync: read the next page ahead, batch bulk queries wide, chunk rows."""

from __future__ import annotations

import gc
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

# Rows of a listed page reconciled together. The API's pages hold at most 1,000 rows, but
# a Space may send any number; a chunk's reads bind at most two variables per row (2,000
# in all, inside SQLite's 32,766 and PostgreSQL's 65,535), its inserts one row at a time,
# and bulk_update splits itself by the database's limit.
WRITE_CHUNK = 1000
# Seconds between saves of a run's counts while its pages need no writes.
PROGRESS_EVERY = 5.0
# Allocations between collections of the youngest generation during a sync (Python's
# default is 700); the same figure a Celery worker sets at start-up (rooms.tasks.sync).
GC_THRESHOLD = 50_000


@contextmanager
def collect_less() -> Iterator[None]:
    """Keep the cycle collector from rescanning the process's heap on every sync page.

    A page of a thousand payloads allocates tens of thousands of dicts and lists that
    reference counting frees anyway. For the run, what the process already holds is
    frozen out of the collector's scans and the youngest generation collected less
    often; both are undone afterwards. A worker that tuned itself at start-up (it froze
    its heap) keeps its own settings.
    """
    thresholds = gc.get_threshold()
    froze = gc.get_freeze_count() == 0
    if froze:
        gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if froze:
            gc.unfreeze()


def read_ahead(pages: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Yield the pages of `pages`, fetching the next one in a thread meanwhile.

    HTTP waits and database writes then overlap; at most three pages are held at once.
    """
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for page in pages:
                if not hand_over(("page", page)):
                    return
            hand_over(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over(("error", exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="sync-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            what, value = slot.get()
            if what == "page":
                yield value
            elif what == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join(timeout=60)


# WAL pages between checkpoints while a sync writes (SQLite's default is 1,000, 4 MB).
SYNC_WAL_AUTOCHECKPOINT = 10_000


@contextmanager
def fewer_checkpoints() -> Iterator[None]:
    """Let SQLite's WAL grow to about 40 MB between checkpoints while a sync writes.

    A first sync inserts into indexes on random ids (SignalWire's UUIDs): every page
    dirties leaves all over them. Checkpointing each 4 MB of WAL writes those leaves back
    to the database file again and again; checkpointing ten times less often writes each
    once per 40 MB. Readers are unaffected (WAL); the setting is put back afterwards.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA wal_autocheckpoint={max(int(previous), SYNC_WAL_AUTOCHECKPOINT)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(previous)}")


@contextmanager
def wide_batches() -> Iterator[None]:
    """Let bulk queries on SQLite use its real variable limit, not Django 5.2's 999.

    Django 5.2 assumes SQLite's old 999-variable default and splits a 1,000-row page into
    dozens of INSERTs; SQLite 3.32+ allows 32,766 (Django 6.0 reads the real limit too).
    """
    features = connection.features
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    had = "max_query_params" in vars(features)
    previous = features.max_query_params
    features.max_query_params = max(previous, limit)
    try:
        yield
    finally:
        if had:
            features.max_query_params = previous
        else:
            del features.max_query_params
