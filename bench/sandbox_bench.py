"""Benchmark the sandbox Space's own speed with a large history; print a table and JSON.

    python bench/sandbox_bench.py [--rooms N] [--sessions M] [--repeat R]

The Space runs in this process, without HTTP, so the figures are its own: seeding M past
sessions over N rooms, a page of 1,000 room sessions, and a page of 1,000 logs filtered by
date. Each listing runs R times; the table gives the median and the slowest. Nothing is
asserted: the tests check what these answers hold, this prints how long they take.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import SandboxSpace  # noqa: E402

UNTIL = datetime(2026, 6, 1, tzinfo=UTC)
BASE = "http://x/api/video"


def timed(work: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Run `work` `repeat` times; return the median and slowest milliseconds."""
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        spent.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(spent), 2), "max_ms": round(max(spent), 2)}


def main() -> None:
    """Seed a Space, time its listings and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    space = SandboxSpace()
    space.seed(rooms=args.rooms, seed=1)
    started = time.perf_counter()
    space.seed(sessions=args.sessions, seed=1, until=UNTIL)
    seed_s = round(time.perf_counter() - started, 2)

    results = {
        "rooms": args.rooms,
        "sessions": args.sessions,
        "seed_s": seed_s,
        "sessions_page": timed(
            lambda: space.list_sessions(f"{BASE}/room_sessions", "page_size=1000"), args.repeat
        ),
        "filtered_logs_page": timed(
            lambda: space.list_logs(
                f"{BASE}/logs", "page_size=1000&created_before=2026-03-15", "http://x"
            ),
            args.repeat,
        ),
    }
    print(f"sandbox: {args.sessions:,} sessions over {args.rooms:,} rooms seeded in {seed_s} s")
    print(f"{'listing (1,000 a page)':<26} {'median ms':>10} {'max ms':>8}")
    for name in ("sessions_page", "filtered_logs_page"):
        figures = results[name]
        print(f"{name:<26} {figures['median_ms']:>10} {figures['max_ms']:>8}")
    print(json.dumps({"sandbox": results}))


if __name__ == "__main__":
    main()
