"""Benchmark the room session sync against a seeded sandbox Space; print a table and JSON.

    python bench/activity_bench.py [--rooms N] [--sessions M] [--live L] [--new K] [--trials T]

The sandbox (N rooms, M past sessions) runs in a child process, so time measured here is
the portal's. Two figures, each against the bare fetch of the same pages with requests:

- live refresh: L sessions in progress; the refresh lists them and fetches each one's
  members (first run creates them, the second finds nothing changed and writes nothing);
- history sync: the M past sessions already mirrored (loaded straight from the Space's
  listing) and K new ones ended since; the sync reads only until a page holds a session
  it already has, and fetches the members of the new ones only.
- the usage rollup's upkeep: T interleaved trials of the history sync (K new sessions
  ended before each), alternately with the upkeep and with its refresh calls skipped (in
  this process only), and the ratio of the medians; plus the time spent inside the upkeep.

Django uses a fresh SQLite file or PostgreSQL database (bench/benchdb.py, migrated
here) and a Redis database of its own for the lock.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

PROJECT_ID = "bench-project"
API_TOKEN = "bench-token-a7c1"
WRITES = ("INSERT", "UPDATE", "DELETE")


def serve(rooms: int, sessions: int, ready: Any, stop: Any) -> None:
    """Run a seeded sandbox Space until told to stop (in the child process)."""
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, project_id=PROJECT_ID, api_token=API_TOKEN)
    server.space.seed(rooms=rooms, sessions=sessions, seed=11)
    server.start()
    names = sorted(r["name"] for r in server.space.rooms.values() if (r["max_members"] or 9) >= 2)
    ready.put((server.url, names))
    stop.wait()
    server.stop()


def configure_django(db_path: Path) -> None:
    """Point Django at a fresh SQLite file and migrate it."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    os.environ["DATABASE_URL"] = benchdb.bench_url(db_path.parent, "_activity")
    benchdb.create_database(os.environ["DATABASE_URL"])
    os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("rooms").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)


class Counter:
    """Count statements and writes to the session tables through execute_wrapper."""

    def __init__(self) -> None:
        self.queries = 0
        self.writes = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        if sql.lstrip().upper().startswith(WRITES) and (
            "rooms_roomsession" in sql or "rooms_sessionmember" in sql
        ):
            self.writes += 1
        return execute(sql, params, many, context)


def bare_fetch(url: str, first: str, member_ids: list[str]) -> tuple[float, int]:
    """Fetch a listing (every page) and the members of some sessions with bare requests."""
    import requests

    session = requests.Session()
    session.auth = (PROJECT_ID, API_TOKEN)
    started = time.perf_counter()
    requests_made = 0
    next_url: str | None = f"{url}{first}"
    while next_url:
        body = session.get(next_url, timeout=60).json()
        requests_made += 1
        next_url = body["links"].get("next")
    for session_id in member_ids:
        session.get(f"{url}/api/video/room_sessions/{session_id}/members", timeout=60).json()
        requests_made += 1
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed, requests_made


def timed(service: Any, **kwargs: Any) -> tuple[float, Any, Counter]:
    from django.db import connection

    counter = Counter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        run = service(**kwargs)
        elapsed = time.perf_counter() - started
    return elapsed, run, counter


def control(url: str, path: str, body: dict) -> dict:
    import requests

    answer = requests.post(f"{url}/__sandbox__/{path}", json=body, timeout=30)
    answer.raise_for_status()
    return answer.json()


def mirror_history(url: str, page_size: int) -> int:
    """Load every past session into the mirror straight from the listing (no members)."""
    import requests
    from django.utils import timezone

    from rooms.models import SyncRun
    from rooms.sync.sessions import store_sessions

    http = requests.Session()
    http.auth = (PROJECT_ID, API_TOKEN)
    run = SyncRun(kind=SyncRun.Kind.SESSIONS)
    next_url: str | None = f"{url}/api/video/room_sessions?status=completed&page_size={page_size}"
    while next_url:
        body = http.get(next_url, timeout=60).json()
        store_sessions(run, body["data"], {}, timezone.now())
        next_url = body["links"].get("next")
    return run.created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--live", type=int, default=50)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--trials", type=int, default=7, help="history syncs with and without the upkeep, each"
    )
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(
        target=serve, args=(args.rooms, args.sessions, ready, stop), daemon=True
    )
    child.start()
    try:
        url, names = ready.get(timeout=900)
        with tempfile.TemporaryDirectory(prefix="activity-bench-") as tmp:
            configure_django(Path(tmp) / "bench.sqlite3")
            try:
                result = run_bench(url, names, args)
            finally:
                from django.db import connections

                connections.close_all()
                benchdb.drop_database(os.environ["DATABASE_URL"])
    finally:
        stop.set()
        child.join(timeout=30)
    print_table(result)
    print(json.dumps(result))


def run_bench(url: str, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from rooms import sync
    from rooms.connections import redis_client
    from rooms.signalwire.client import SignalWireClient

    redis_client().ping()
    client = SignalWireClient(
        space_url=url, project_id=PROJECT_ID, api_token=API_TOKEN, read_timeout=120
    )
    sync.sync_rooms(client=client)
    mirrored = mirror_history(url, args.page_size)

    live_names, new_names = names[: args.live], names[args.live : args.live + args.new]
    live_ids = [
        control(url, "sessions", {"room_name": n, "members": ["a", "b"]})["id"] for n in live_names
    ]
    new_ids = []
    for name in new_names:
        new_ids.append(control(url, "sessions", {"room_name": name, "members": ["c"]})["id"])
        control(url, f"sessions/{new_ids[-1]}/end", {})

    live_floor, live_requests = bare_fetch(
        url, "/api/video/room_sessions?status=in-progress&page_size=1000", live_ids
    )
    live_s, live_run, live_counter = timed(sync.sessions_refresh_live, client=client)
    again_s, again_run, again_counter = timed(sync.sessions_refresh_live, client=client)

    history_floor, history_requests = bare_fetch(
        url, f"/api/video/room_sessions?status=completed&page_size={args.page_size}", []
    )
    # The bare fetch above read every page; the sync needs only the first, so its floor is
    # the first page plus the new sessions' members.
    first_floor, first_requests = bare_fetch_first(url, args.page_size, new_ids)
    history_s, history_run, history_counter = timed(
        sync.sessions_sync_history, client=client, page_size=args.page_size
    )
    upkeep = upkeep_trials(url, client, new_names, args)
    return {
        **upkeep,
        "rooms": args.rooms,
        "past_sessions_mirrored": mirrored,
        "live_sessions": args.live,
        "new_sessions": args.new,
        "live_floor_s": round(live_floor, 4),
        "live_s": round(live_s, 4),
        "live_ratio": round(live_s / live_floor, 2),
        "live_requests_bare": live_requests,
        "live_created": live_run.created,
        "live_queries": live_counter.queries,
        "live_again_s": round(again_s, 4),
        "live_again_ratio": round(again_s / live_floor, 2),
        "live_again_queries": again_counter.queries,
        "live_again_writes": again_counter.writes,
        "history_floor_s": round(first_floor, 4),
        "history_s": round(history_s, 4),
        "history_ratio": round(history_s / first_floor, 2),
        "history_requests_bare": first_requests,
        "history_pages": history_run.pages,
        "history_created": history_run.created,
        "history_queries": history_counter.queries,
        "full_listing_fetch_s": round(history_floor, 4),
        "full_listing_pages": history_requests,
    }


def upkeep_trials(
    url: str, client: Any, names: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Time the history sync with the usage upkeep and without it, trials interleaved."""
    from unittest import mock

    from rooms import sync
    from rooms.sync import sessions as session_sync

    refresh = session_sync.refresh_session_usage
    inside: list[float] = []

    def timed_refresh(keys: Any) -> None:
        began = time.perf_counter()
        refresh(keys)
        inside[-1] += time.perf_counter() - began

    def skipped_refresh(keys: Any) -> None:
        return None

    seconds: dict[bool, list[float]] = {True: [], False: []}
    spent: list[float] = []
    for trial in range(args.trials):
        # Alternate which goes first, so a drift of the machine weighs on both alike.
        for upkeep in (True, False) if trial % 2 == 0 else (False, True):
            for name in names:
                ended = control(url, "sessions", {"room_name": name, "members": ["d"]})["id"]
                control(url, f"sessions/{ended}/end", {})
            inside.append(0.0)
            stand_in = timed_refresh if upkeep else skipped_refresh
            with mock.patch.object(session_sync, "refresh_session_usage", stand_in):
                elapsed, run, _ = timed(
                    sync.sessions_sync_history, client=client, page_size=args.page_size
                )
            assert run.created == len(names), (run.created, len(names))
            seconds[upkeep].append(elapsed)
            if upkeep:
                spent.append(inside[-1])
    with_s, without_s = statistics.median(seconds[True]), statistics.median(seconds[False])
    return {
        "upkeep_trials": args.trials,
        "history_with_upkeep_s": round(with_s, 4),
        "history_without_upkeep_s": round(without_s, 4),
        "upkeep_ratio": round(with_s / without_s, 3),
        "upkeep_inside_s": round(statistics.median(spent), 4),
        "upkeep_inside_share": round(statistics.median(spent) / without_s, 3),
        "history_with_upkeep_trials_s": [round(x, 4) for x in seconds[True]],
        "history_without_upkeep_trials_s": [round(x, 4) for x in seconds[False]],
    }


def bare_fetch_first(url: str, page_size: int, member_ids: list[str]) -> tuple[float, int]:
    """Fetch the first page of completed sessions and the given sessions' members."""
    import requests

    session = requests.Session()
    session.auth = (PROJECT_ID, API_TOKEN)
    started = time.perf_counter()
    session.get(
        f"{url}/api/video/room_sessions?status=completed&page_size={page_size}", timeout=60
    ).json()
    for session_id in member_ids:
        session.get(f"{url}/api/video/room_sessions/{session_id}/members", timeout=60).json()
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed, 1 + len(member_ids)


def print_table(result: dict[str, Any]) -> None:
    print(
        f"rooms {result['rooms']}, past sessions mirrored {result['past_sessions_mirrored']}, "
        f"live {result['live_sessions']}, new {result['new_sessions']}"
    )
    print(f"{'':22}{'portal s':>10}{'bare s':>10}{'ratio':>8}{'queries':>9}{'writes':>8}")
    print(
        f"{'live refresh (first)':22}{result['live_s']:>10}{result['live_floor_s']:>10}"
        f"{result['live_ratio']:>8}{result['live_queries']:>9}{'':>8}"
    )
    print(
        f"{'live refresh (again)':22}{result['live_again_s']:>10}{result['live_floor_s']:>10}"
        f"{result['live_again_ratio']:>8}{result['live_again_queries']:>9}"
        f"{result['live_again_writes']:>8}"
    )
    print(
        f"{'history (+new)':22}{result['history_s']:>10}{result['history_floor_s']:>10}"
        f"{result['history_ratio']:>8}{result['history_queries']:>9}{'':>8}"
    )
    print(
        f"history pages read {result['history_pages']} (a full listing is "
        f"{result['full_listing_pages']} pages, {result['full_listing_fetch_s']} s bare)"
    )
    print(
        f"usage rollup upkeep, {result['upkeep_trials']} interleaved trials of the history "
        f"sync ({result['new_sessions']} new sessions each): median "
        f"{result['history_with_upkeep_s']} s with, {result['history_without_upkeep_s']} s "
        f"without, ratio {result['upkeep_ratio']} (target at most 1.10); inside the upkeep "
        f"{result['upkeep_inside_s']} s ({result['upkeep_inside_share']:.1%} of the sync)"
    )


if __name__ == "__main__":
    main()
