"""Benchmark the conference sync against a seeded sandbox Space; print a table and JSON.

    python bench/sync_bench.py [--conferences N] [--page-size P] [--plain]

--plain also measures, in the same run and against the same sandbox, the plain Django way
(bulk_create for new rows, remote_updated_at to tell an unchanged row) and the sync with
the garbage-collector tuning a Celery worker applies at start-up (rooms.tasks.sync's
collect_less: heap frozen, fewer gen-0 collections), and prints each beside the sync as
the management command runs it.

The sandbox runs in a child process, so time and memory measured here are the portal's.
Django uses a fresh SQLite file, or with DATABASE_URL=postgres://... a PostgreSQL database
of its own (bench/benchdb.py), migrated here, and a Redis database of its own for the
lock. Figures:

- fetch floor (floor_s): fetching the same pages with bare requests, nothing else;
- write floor (write_floor_s): the database alone storing what the first sync stored,
  with the same schema and indexes: the mirror rows and one audit row per created object,
  read back beforehand and re-inserted into the empty database as one executemany per
  table per page, one transaction per page (no mapping, diffing or Django in the loop);
- sync_s, a first full sync into the empty database; noop_s, a second sync when nothing
  changed; rss growth, peak resident memory over the baseline before the first sync.

Each trial starts from the empty database and has its own fetch floor; the figures are
medians over the trials.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

PROJECT_ID = "bench-project"
API_TOKEN = "bench-token-0b5e"
WRITES = ("INSERT", "UPDATE", "DELETE")


def serve(conferences: int, ready: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    """Run a seeded sandbox Space until told to stop (in the child process)."""
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, project_id=PROJECT_ID, api_token=API_TOKEN)
    server.space.seed(conferences=conferences, seed=7)
    server.start()
    ready.put(server.url)
    stop.wait()
    server.stop()


def rss_mb(field: str) -> float:
    """Read this process's current (VmRSS) or peak (VmHWM) resident memory in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def fetch_floor(url: str, page_size: int) -> tuple[float, int, int]:
    """Time fetching every page with bare requests (what any sync must at least spend)."""
    import requests

    session = requests.Session()
    session.auth = (PROJECT_ID, API_TOKEN)
    started = time.perf_counter()
    next_url: str | None = f"{url}/api/video/conferences?page_size={page_size}"
    pages = rows = 0
    while next_url:
        body = session.get(next_url, timeout=60).json()
        pages += 1
        rows += len(body["data"])
        next_url = body["links"].get("next")
    session.close()
    return time.perf_counter() - started, pages, rows


def configure_django(url: str) -> None:
    """Point Django at the benchmark's own database and migrate it."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    os.environ["DATABASE_URL"] = url
    # Not the test suite's Redis database: a test run flushing it would take the lock away.
    os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    import logging

    logging.getLogger("rooms").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)


class QueryCounter:
    """Count statements (and writes outside the run record) through execute_wrapper."""

    def __init__(self) -> None:
        self.queries = 0
        self.mirror_writes = 0
        self.run_writes = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        if sql.lstrip().upper().startswith(WRITES):
            if "rooms_syncrun" in sql:
                self.run_writes += 1
            else:
                self.mirror_writes += 1
        return execute(sql, params, many, context)


def timed_sync(client, page_size: int) -> tuple[float, object, QueryCounter, list[int]]:
    """Run one conference sync; return its time, run, query counts and queries per page."""
    from django.db import connection

    from rooms import sync

    counter = QueryCounter()
    per_page: list[int] = []
    original = sync.FullListingSync.apply_page

    def counted(self, page):
        before = counter.queries
        original(self, page)
        per_page.append(counter.queries - before)

    sync.FullListingSync.apply_page = counted
    try:
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            run = sync.sync_conferences(client=client, trigger="bench", page_size=page_size)
            elapsed = time.perf_counter() - started
    finally:
        sync.FullListingSync.apply_page = original
    return elapsed, run, counter, per_page


class Trial(NamedTuple):
    """One first sync and its no-op sync from a fresh database, with the floor around them."""

    sync_s: float
    noop_s: float
    floor_s: float
    run: Any
    counter: QueryCounter
    per_page: list[int]
    noop_counter: QueryCounter
    noop_pages: list[int]


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    """Tune gc as a worker does at start-up, undone afterwards for the next variant."""
    from rooms.tasks.sync import GC_THRESHOLD

    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# Tables a conference sync writes; emptied between trials on PostgreSQL.
SYNC_TABLES = ("rooms_auditentry", "rooms_conferencetoken", "rooms_conference", "rooms_syncrun")
FLOOR_TABLES = ("rooms_conference", "rooms_auditentry")


def reset_database(db_path: Path, pristine: Path) -> None:
    """Put the freshly migrated, empty database back in place for the next trial."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(SYNC_TABLES)} RESTART IDENTITY CASCADE")
        return
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(pristine, db_path)


def time_write_floor(db_path: Path, pristine: Path, page_size: int) -> float:
    """Time the database alone storing the rows the last first sync stored.

    The mirror rows and audit rows are read back first, then the tables emptied and the
    rows inserted again page by page: one executemany per table per page, one transaction
    per page, the same schema and indexes. What the database (and its driver) must
    spend, whatever the code around it does.
    """
    from django.db import connection, transaction

    pages: dict[str, list[tuple[str, list[tuple]]]] = {}
    with connection.cursor() as cursor:
        for table in FLOOR_TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY id")
            columns = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
            names = ", ".join(connection.ops.quote_name(c) for c in columns)
            marks = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            pages[table] = [
                (sql, rows[i : i + page_size]) for i in range(0, len(rows), page_size)
            ]
    reset_database(db_path, pristine)
    count = max(len(chunks) for chunks in pages.values())
    from rooms.sync.pages import fewer_checkpoints

    # The database settings the sync itself writes under (SQLite's checkpoint interval).
    with fewer_checkpoints():
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for page in range(count):
                with transaction.atomic():
                    for chunks in pages.values():
                        if page < len(chunks):
                            cursor.executemany(*chunks[page])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conferences", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--trials", type=int, default=0,
        help="first and no-op syncs into a fresh database (default 3, 1 above 20,000)",
    )
    parser.add_argument(
        "--plain", action="store_true",
        help="also measure bulk_create + remote_updated_at, and gc tuning, in this run",
    )
    args = parser.parse_args()
    n, page_size = args.conferences, args.page_size
    trials = args.trials or (3 if n <= 20_000 else 1)

    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(target=serve, args=(n, ready, stop), daemon=True)
    child.start()
    measured: list[Trial] = []
    try:
        url = ready.get(timeout=600)
        with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
            db_path, pristine = Path(tmp) / "bench.sqlite3", Path(tmp) / "pristine.sqlite3"
            db_url = benchdb.bench_url(Path(tmp), "_sync")
            benchdb.create_database(db_url)
            configure_django(db_url)
            from django.db import connection

            from rooms.connections import redis_client
            from rooms.models import Conference
            from rooms.signalwire.client import SignalWireClient

            connection.close()
            if connection.vendor == "sqlite":
                shutil.copy(db_path, pristine)
            redis_client().ping()
            client = SignalWireClient(
                space_url=url, project_id=PROJECT_ID, api_token=API_TOKEN, read_timeout=120
            )
            fetch_floor(url, page_size)  # warm the sandbox's pagination and the sockets
            baseline_rss = rss_mb("VmRSS")
            from rooms import sync

            variants = {"fast": measured}
            if args.plain:
                variants.update({"plain": [], "gc_tuned": []})
            for _ in range(trials):
                for variant, into in variants.items():
                    sync.FullListingSync.fast_paths = variant != "plain"
                    tuned = gc_tuned() if variant == "gc_tuned" else contextlib.nullcontext()
                    reset_database(db_path, pristine)
                    # The floor is fetched right before and after each trial, so a noisy
                    # moment weighs on both sides of that trial's ratios.
                    before = fetch_floor(url, page_size)[0]
                    with tuned:
                        sync_s, run, counter, per_page = timed_sync(client, page_size)
                    assert run.outcome == "succeeded" and run.created == n, (run.outcome, run.error)
                    assert Conference.objects.count() == n
                    with gc_tuned() if variant == "gc_tuned" else contextlib.nullcontext():
                        noop_s, noop_run, noop_counter, noop_pages = timed_sync(client, page_size)
                    assert noop_run.unchanged == n, noop_run.error
                    floor_s = (before + fetch_floor(url, page_size)[0]) / 2
                    into.append(
                        Trial(
                            sync_s, noop_s, floor_s, run, counter, per_page, noop_counter,
                            noop_pages,
                        )
                    )
            sync.FullListingSync.fast_paths = True
            peak_rss = rss_mb("VmHWM")
            client.close()
            write_floor_s = time_write_floor(db_path, pristine, page_size)
            connection.close()
            benchdb.drop_database(db_url)
    finally:
        stop.set()
        child.join(10)

    sync_s = statistics.median(t.sync_s for t in measured)
    noop_s = statistics.median(t.noop_s for t in measured)
    floor_s = statistics.median(t.floor_s for t in measured)
    ratios = [round(t.sync_s / t.floor_s, 2) for t in measured]
    noop_ratios = [round(t.noop_s / t.floor_s, 2) for t in measured]
    per_page = [q for t in measured for q in t.per_page]
    noop_pages = [q for t in measured for q in t.noop_pages]
    run, counter = measured[-1].run, measured[-1].counter
    noop_writes = max(t.noop_counter.mirror_writes for t in measured)
    noop_run_writes = max(t.noop_counter.run_writes for t in measured)
    result = {
        "database": benchdb.vendor_label(),
        "conferences": n,
        "page_size": page_size,
        "pages": run.pages,
        "trials": trials,
        "sync_s": round(sync_s, 3),
        "floor_s": round(floor_s, 3),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "write_floor_s": round(write_floor_s, 3),
        "write_floor_us_per_conference": round(write_floor_s / n * 1e6, 1),
        "ratio_to_fetch_and_write_floor": round(sync_s / (floor_s + write_floor_s), 2),
        "queries_per_page": max(per_page),
        "queries_per_page_noop": max(noop_pages),
        "queries_total": counter.queries,
        "noop_s": round(noop_s, 3),
        "noop_ratio": statistics.median(noop_ratios),
        "noop_ratios": noop_ratios,
        "noop_writes": noop_writes,
        "noop_run_record_writes": noop_run_writes,
        "baseline_rss_mb": round(baseline_rss, 1),
        "peak_rss_mb": round(peak_rss, 1),
        "rss_growth_mb": round(peak_rss - baseline_rss, 1),
    }
    rows = [
        ("conferences", n),
        ("pages", f"{run.pages} x {page_size}"),
        ("trials (medians below)", trials),
        ("fetch floor (bare requests)", f"{floor_s:.3f} s"),
        ("first sync (empty database)", f"{sync_s:.3f} s  ratio {result['ratio']} {ratios}"),
        ("database", benchdb.vendor_label()),
        (
            "write floor (same rows, bulk per page)",
            f"{write_floor_s:.3f} s  {write_floor_s / n * 1e6:.1f} us/conference",
        ),
        ("first sync / (fetch + write floor)", result["ratio_to_fetch_and_write_floor"]),
        ("no-op sync", f"{noop_s:.3f} s  ratio {result['noop_ratio']} {noop_ratios}"),
        ("queries per page (first / no-op)", f"{max(per_page)} / {max(noop_pages)}"),
        ("no-op writes (mirror, audit)", noop_writes),
        ("no-op writes (run record)", noop_run_writes),
        ("peak RSS", f"{peak_rss:.1f} MB (+{peak_rss - baseline_rss:.1f} over baseline)"),
    ]
    for variant, trials_of in variants.items():
        if variant == "fast":
            continue
        ratio = statistics.median(round(t.sync_s / t.floor_s, 2) for t in trials_of)
        noop_ratio = statistics.median(round(t.noop_s / t.floor_s, 2) for t in trials_of)
        sync_v = statistics.median(t.sync_s for t in trials_of)
        noop_v = statistics.median(t.noop_s for t in trials_of)
        result[variant] = {
            "sync_s": round(sync_v, 3), "noop_s": round(noop_v, 3),
            "ratio": ratio, "noop_ratio": noop_ratio,
            "shipped_over_this": round(sync_v / sync_s, 2),
            "shipped_over_this_noop": round(noop_v / noop_s, 2),
        }
        rows.append((
            f"{variant.replace('_', ' ')} (first / no-op)",
            f"{sync_v:.3f} s / {noop_v:.3f} s  ratio {ratio} / {noop_ratio}",
        ))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
