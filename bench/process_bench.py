"""Benchmark the whole `manage.py sync_signalwire --conferences` process; print a table and JSON.

    python bench/process_bench.py [--conferences N] [--trials T]

A seeded sandbox Space runs in a child process. The wall time of the command, as an
operator or cron would start it (interpreter start-up, Django set-up, the sync, exit), is
compared with the wall time of bench/bare_fetch.py started the same way: a bare Python
process fetching the same pages with requests. First the command fills the empty
database (first sync); then each trial runs the bare fetch, the command with nothing
changed, and the bare fetch again, and compares the command with the mean of the two.
The database is a fresh SQLite file, or PostgreSQL with DATABASE_URL (bench/benchdb.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402
from bench.sync_bench import API_TOKEN, PROJECT_ID, serve  # noqa: E402

PAGE_SIZE = 1000


def run(command: list[str], env: dict[str, str]) -> float:
    """Run a process to its end; return its wall time (failing loudly if it fails)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{command[1]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conferences", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(target=serve, args=(args.conferences, ready, stop), daemon=True)
    child.start()
    try:
        space_url = ready.get(timeout=600)
        port = space_url.rsplit(":", 1)[1]
        with tempfile.TemporaryDirectory(prefix="process-bench-") as tmp:
            url = benchdb.bench_url(Path(tmp), "_process")
            benchdb.create_database(url)
            env = {
                **os.environ,
                "PORTAL_ENV_FILE": "",
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-any-deployment",
                "DATABASE_URL": url,
                "SIGNALWIRE_SPACE_URL": "",
                "SIGNALWIRE_SANDBOX_PORT": port,
                "SIGNALWIRE_PROJECT_ID": PROJECT_ID,
                "SIGNALWIRE_API_TOKEN": API_TOKEN,
                "SIGNALWIRE_READ_TIMEOUT": "120",
                "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
                "DJANGO_LOG_LEVEL": "WARNING",
            }
            python = sys.executable
            try:
                run([python, "manage.py", "migrate", "-v0"], env)
                command = [
                    python, "manage.py", "sync_signalwire", "--conferences",
                    "--page-size", str(PAGE_SIZE),
                ]
                fetch = [
                    python, "bench/bare_fetch.py", space_url, PROJECT_ID, API_TOKEN,
                    str(PAGE_SIZE),
                ]
                run(fetch, env)  # warm the sandbox's pages
                fetch_first = run(fetch, env)
                first = run(command, env)
                trials: list[dict[str, Any]] = []
                for _ in range(args.trials):
                    before = run(fetch, env)
                    noop = run(command, env)
                    after = run(fetch, env)
                    floor = (before + after) / 2
                    trials.append({"noop_s": noop, "fetch_s": floor, "ratio": noop / floor})
                startup = [
                    run([python, "manage.py", "check", "--database", "default"], env)
                    for _ in range(3)
                ]
            finally:
                benchdb.drop_database(url)
    finally:
        stop.set()
        child.join(10)

    noop_s = statistics.median(t["noop_s"] for t in trials)
    fetch_s = statistics.median(t["fetch_s"] for t in trials)
    ratios = [round(t["ratio"], 2) for t in trials]
    rows = [
        ("database", benchdb.vendor_label()),
        ("conferences", f"{args.conferences:,} ({PAGE_SIZE} per page)"),
        ("bare fetch process", f"{fetch_s:.3f} s (median of {args.trials})"),
        ("no-change sync process", f"{noop_s:.3f} s  ratio {statistics.median(ratios)} {ratios}"),
        ("first sync process", f"{first:.3f} s  ratio {first / fetch_first:.2f}"),
        ("manage.py check process", f"{statistics.median(startup):.3f} s (start-up alone)"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(
        json.dumps(
            {
                "database": benchdb.vendor_label(),
                "conferences": args.conferences,
                "bare_fetch_s": round(fetch_s, 3),
                "noop_process_s": round(noop_s, 3),
                "noop_ratio": statistics.median(ratios),
                "noop_ratios": ratios,
                "first_process_s": round(first, 3),
                "first_ratio": round(first / fetch_first, 2),
                "startup_s": round(statistics.median(startup), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
