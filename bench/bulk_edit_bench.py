"""Benchmark a bulk edit against a seeded sandbox Space; print a table and a JSON line.

    python bench/bulk_edit_bench.py [--rows 1000,10000] [--batch-size 200]

The sandbox runs in a child process seeded with the largest row count; the portal mirrors
it into a fresh SQLite file with one sync (not timed). Each bulk edit sets two fields on
the first N conferences and runs its batches here, one after another, exactly as the
worker runs them (rooms.services.bulk.action_run_batch: one remote-first update per row, audited).
Figures: edit_s, the whole run; rows_per_s; floor_s, the same number of PUTs sent with bare
requests over one session (what any edit must at least spend); ratio = edit_s / floor_s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

PROJECT_ID = "bench-project"
API_TOKEN = "bench-token-0b5e"


def serve(conferences: int, ready: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    """Run a seeded sandbox Space until told to stop (in the child process)."""
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, project_id=PROJECT_ID, api_token=API_TOKEN)
    server.space.seed(conferences=conferences, seed=16)
    server.start()
    ready.put(server.url)
    stop.wait()
    server.stop()


def configure_django(db_path: Path, url: str, batch_size: int) -> None:
    """Point Django at a fresh SQLite file and the sandbox, and migrate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    os.environ["DATABASE_URL"] = benchdb.bench_url(db_path.parent, "_bulk_edit")
    benchdb.create_database(os.environ["DATABASE_URL"])
    os.environ["SIGNALWIRE_SPACE_URL"] = url
    os.environ["SIGNALWIRE_PROJECT_ID"] = PROJECT_ID
    os.environ["SIGNALWIRE_API_TOKEN"] = API_TOKEN
    os.environ["ROOMS_ACTION_BATCH_SIZE"] = str(batch_size)
    # Not the test suite's Redis database: a test run flushing it would take the locks away.
    os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("rooms").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)


def put_floor(url: str, pks: list[int]) -> float:
    """Time one bare PUT per row over one session, each with the row's full current body.

    The bodies are what the portal would send for the rows as they are, so the floor
    changes nothing in the Space; they are built before the clock starts.
    """
    import requests

    from rooms.models import Conference
    from rooms.signalwire import payloads

    bodies = [
        (c.remote_id, json.loads(json.dumps(payloads.conference_update_body(c), default=str)))
        for c in Conference.objects.filter(pk__in=pks).order_by("pk")
    ]
    session = requests.Session()
    session.auth = (PROJECT_ID, API_TOKEN)
    started = time.perf_counter()
    for remote_id, body in bodies:
        answer = session.put(f"{url}/api/video/conferences/{remote_id}", json=body, timeout=30)
        if answer.status_code != 200:
            raise SystemExit(f"floor PUT refused: {answer.status_code} {answer.text[:300]}")
    return time.perf_counter() - started


def timed_edit(pks: list[int], changes: dict) -> tuple[float, object]:
    """Run one bulk edit's batches here, as the worker would; return its time and run."""
    from rooms.services import bulk

    started = time.perf_counter()
    run = bulk.bulk_edit_start(model=_conference(), pks=pks, changes=changes, actor=None)
    offset: int | None = 0
    while offset is not None:
        offset = bulk.action_run_batch(run_id=run.pk, offset=offset)
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    return elapsed, run


def _conference() -> type:
    from rooms.models import Conference

    return Conference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,10000", help="comma-separated row counts")
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",") if n.strip()]

    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(target=serve, args=(max(sizes), ready, stop), daemon=True)
    child.start()
    results = []
    try:
        url = ready.get(timeout=600)
        with tempfile.TemporaryDirectory(prefix="bulk-edit-bench-") as tmp:
            configure_django(Path(tmp) / "bench.sqlite3", url, args.batch_size)
            from rooms import outbox, sync
            from rooms.connections import redis_client
            from rooms.models import AuditEntry, Conference

            redis_client().ping()
            # The batches run here, not in a worker: nothing is sent to the task queue.
            outbox.send = lambda name, *a, **kw: True  # type: ignore[assignment]
            sync.sync_conferences()
            rows = list(Conference.objects.order_by("pk").values_list("pk", flat=True))
            for number, n in enumerate(sizes):
                pks = rows[:n]
                changes = {"description": f"Bulk edit {number}", "layout": "3x3"}
                floor_s = put_floor(url, pks)
                edit_s, run = timed_edit(pks, changes)
                entries = AuditEntry.objects.filter(cid=run.run_id.hex).count()
                assert run.state == "succeeded", (run.state, run.error)
                results.append(
                    {
                        "rows": n,
                        "batch_size": args.batch_size,
                        "edit_s": round(edit_s, 2),
                        "rows_per_s": round(n / edit_s, 1),
                        "floor_s": round(floor_s, 2),
                        "ratio": round(edit_s / floor_s, 2),
                        "counts": run.counts,
                        "audit_entries": entries,
                    }
                )
    finally:
        stop.set()
        child.join(10)
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
            benchdb.drop_database(os.environ["DATABASE_URL"])

    print(f"{'rows':>8} {'edit':>10} {'rows/s':>9} {'PUT floor':>11} {'ratio':>7}  counts")
    for r in results:
        print(
            f"{r['rows']:>8} {r['edit_s']:>9.2f}s {r['rows_per_s']:>9} {r['floor_s']:>10.2f}s "
            f"{r['ratio']:>7}  {r['counts']}"
        )
    print(json.dumps({"bulk_edit": results}))


if __name__ == "__main__":
    main()
