"""Benchmark: list every conference through SignalWireClient versus bare requests.get.

Usage (from the repo root): python bench/client_bench.py [--conferences N] [--repeats K]

The sandbox Space runs in a child process, so this process's peak RSS reflects only the
client and the listing, not the seeded Space. Both ways read the same pages (page size
1000, following links.next, Basic auth); each is run K times, alternating, best kept.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from multiprocessing.connection import Connection

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import requests  # noqa: E402

from rooms.signalwire.client import SignalWireClient  # noqa: E402

PROJECT_ID = "bench-project"
API_TOKEN = "bench-token-not-secret"
PAGE_SIZE = 1000


def serve(conferences: int, conn: Connection) -> None:
    """Run a seeded sandbox Space until the parent says stop (child process)."""
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, project_id=PROJECT_ID, api_token=API_TOKEN)
    server.start()
    server.space.seed(conferences=conferences, rooms=0, seed=1)
    conn.send(server.url)
    conn.recv()
    server.stop()


def list_with_client(url: str) -> int:
    """Count the conferences the client streams, page by page."""
    with SignalWireClient(
        space_url=url, project_id=PROJECT_ID, api_token=API_TOKEN, page_size=PAGE_SIZE
    ) as client:
        count = 0
        for _conference in client.list_conferences():
            count += 1
        return count


def list_with_requests(url: str) -> int:
    """Count the conferences read with plain requests.get calls, following links.next."""
    count = 0
    next_url: str | None = f"{url}/api/video/conferences?page_size={PAGE_SIZE}"
    while next_url:
        response = requests.get(next_url, auth=(PROJECT_ID, API_TOKEN), timeout=(5, 30))
        response.raise_for_status()
        body = response.json()
        for _conference in body["data"]:
            count += 1
        next_url = body["links"].get("next")
    return count


def timed(func, url: str, expected: int) -> float:
    """Run one listing and return its wall time, checking it saw every conference."""
    started = time.perf_counter()
    count = func(url)
    elapsed = time.perf_counter() - started
    if count != expected:
        raise SystemExit(f"{func.__name__} saw {count} conferences, expected {expected}")
    return elapsed


def main() -> None:
    """Seed the Space, time both listings and print the table and the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conferences", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(target=serve, args=(args.conferences, child_end), daemon=True)
    child.start()
    try:
        url = parent_end.recv()
        client_times: list[float] = []
        bare_times: list[float] = []
        # Warm both paths once (imports, first connections, server caches) before timing.
        timed(list_with_client, url, args.conferences)
        timed(list_with_requests, url, args.conferences)
        for _ in range(args.repeats):
            client_times.append(timed(list_with_client, url, args.conferences))
            bare_times.append(timed(list_with_requests, url, args.conferences))
    finally:
        parent_end.send("stop")
        child.join(timeout=30)

    client_s, bare_s = min(client_times), min(bare_times)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'way':<10} {'best s':>8} {'runs':>30}")
    print(f"{'client':<10} {client_s:>8.3f} {' '.join(f'{t:.3f}' for t in client_times):>30}")
    print(f"{'bare':<10} {bare_s:>8.3f} {' '.join(f'{t:.3f}' for t in bare_times):>30}")
    summary = {
        "conferences": args.conferences,
        "client_s": round(client_s, 4),
        "bare_s": round(bare_s, 4),
        "ratio": round(client_s / bare_s, 4),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
