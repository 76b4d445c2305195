"""Benchmark several Spaces: two Spaces' syncs on a two-process worker, admin queries per Space.

    python bench/spaces_bench.py [--conferences N] [--latency S] [--trials T] [--rows R]

1. Sync: two sandbox Spaces (child processes, each answering every request after --latency
   seconds, as a Space across the Internet does) with N conferences each. A real Celery
   worker with two processes syncs the conferences of one Space, then of both at once
   (each trial a first sync into an emptied mirror, then a sync with nothing changed);
   trials interleaved, medians compared in one run.
2. Admin: the queries of each admin page with 1, 2 and 20 Spaces (R conferences and rooms
   in each), for a superuser and for staff granted one Space, through Django's test client.

The database is a fresh SQLite file, or PostgreSQL with DATABASE_URL (bench/benchdb.py).
Figures are printed; nothing is asserted.
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

PROJECT_ID = "bench-project"
API_TOKEN = "bench-token-0000"
SESSION = f"bench-spaces-{os.getpid()}"


def serve(conferences: int, seed: int, latency: float, ready: Any, stop: Any) -> None:
    """Run a seeded sandbox Space that answers after `latency` seconds (in a child process)."""
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0, project_id=PROJECT_ID, api_token=API_TOKEN)
    server.space.seed(conferences=conferences, seed=seed)
    server.space.set_latency(latency)
    server.start()
    ready.put(server.url)
    stop.wait()
    server.stop()


def configure_django(tmp: Path, space_url: str) -> dict[str, str]:
    """Point Django at a fresh database and the first Space; return the worker's environment."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    os.environ["DATABASE_URL"] = benchdb.bench_url(tmp, "_spaces")
    os.environ["TEST_REDIS_URL"] = "redis://127.0.0.1:6379/13"
    os.environ["PORTAL_TEST_SESSION"] = SESSION
    os.environ["SIGNALWIRE_SPACE_URL"] = space_url
    os.environ["SIGNALWIRE_PROJECT_ID"] = PROJECT_ID
    os.environ["SIGNALWIRE_API_TOKEN"] = API_TOKEN
    os.environ["SIGNALWIRE_SYNC_ON_START"] = "false"
    os.environ["SIGNALWIRE_REFUSE_IN_TRANSACTION"] = "false"
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    benchdb.create_database(os.environ["DATABASE_URL"])
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    logging.getLogger("rooms").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    return dict(os.environ)


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """Start a Celery worker with two processes on the bench's own queue; wait until it answers."""
    from portal.celery import app

    name = f"{SESSION}@bench"
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork",
            "--concurrency", "2", "--loglevel", "WARNING", "-n", name,
            "-Q", f"portal-test-{SESSION}",
        ],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(destination=[name], timeout=0.5):
            return worker
        if worker.poll() is not None:
            raise SystemExit("the worker stopped while starting")
    worker.terminate()
    raise SystemExit("the worker did not answer within 60 s")


def timed_syncs(spaces: list[Any], trigger: str) -> float:
    """Queue a conference sync of each Space at once; return the seconds until all finished."""
    from rooms.models import SyncRun
    from rooms.tasks.sync import SYNC_TASKS

    task = SYNC_TASKS[SyncRun.Kind.CONFERENCES]
    started = time.perf_counter()
    for space in spaces:
        task.delay(trigger=trigger, space_id=space.pk)
    runs = SyncRun.objects.filter(trigger=trigger).exclude(outcome=SyncRun.Outcome.RUNNING)
    deadline = time.monotonic() + 900
    while runs.count() < len(spaces):
        if time.monotonic() > deadline:
            raise SystemExit(f"the syncs of {trigger} did not finish within 900 s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    failed = [r.error for r in runs if r.outcome != SyncRun.Outcome.SUCCEEDED]
    if failed:
        raise SystemExit(f"a sync failed: {failed[0]}")
    wait_for_locks(spaces)
    return elapsed


def wait_for_locks(spaces: list[Any]) -> None:
    """Wait (untimed) until the runs' locks are released, so the next runs are not skipped."""
    from rooms.connections import redis_client
    from rooms.locks import lock_key
    from rooms.models import SyncRun
    from rooms.sync.runs import lock_name

    keys = [lock_key(lock_name(SyncRun.Kind.CONFERENCES, space)) for space in spaces]
    deadline = time.monotonic() + 60
    while redis_client().exists(*keys):
        if time.monotonic() > deadline:
            raise SystemExit("a sync lock was not released within 60 s")
        time.sleep(0.01)


def empty_mirror(spaces: list[Any]) -> None:
    """Remove the Spaces' conferences (and their audit rows), so the next sync is a first one."""
    from django.db import connection

    with connection.cursor() as cursor:
        for space in spaces:
            cursor.execute("DELETE FROM rooms_conference WHERE space_id = %s", [space.pk])
        cursor.execute("DELETE FROM rooms_auditentry")


def sync_figures(args: argparse.Namespace, env: dict[str, str], other_url: str) -> dict[str, Any]:
    """Time one Space's sync against two Spaces' at once, first syncs and no-change syncs."""
    from rooms.models import Space, environment_space

    first = environment_space()
    second = Space(name="Second", space_url=other_url, project_id=PROJECT_ID)
    second.set_token(API_TOKEN)
    second.save()
    worker = start_worker(env)
    times: dict[str, list[float]] = {"first: one": [], "first: two": [],
                                     "unchanged: one": [], "unchanged: two": []}
    try:
        for trial in range(args.trials):
            order = [("one", [first]), ("two", [first, second])]
            if trial % 2:
                order.reverse()
            for label, spaces in order:
                empty_mirror([first, second])
                times[f"first: {label}"].append(timed_syncs(spaces, f"first-{label}-{trial}"))
                times[f"unchanged: {label}"].append(
                    timed_syncs(spaces, f"same-{label}-{trial}")
                )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    medians = {label: statistics.median(values) for label, values in times.items()}
    return {
        "medians_s": {label: round(value, 3) for label, value in medians.items()},
        "ratio_first": round(medians["first: two"] / medians["first: one"], 2),
        "ratio_unchanged": round(medians["unchanged: two"] / medians["unchanged: one"], 2),
    }


def seed_spaces(count: int, rows: int) -> list[Any]:
    """Make `count` Spaces (the environment's first), each with `rows` conferences and rooms."""
    from rooms.models import Conference, Room, Space, environment_space

    spaces = [environment_space()]
    for number in range(len(Space.objects.all()), count):
        space = Space(name=f"Space {number + 1}", space_url="https://x.example.com",
                      project_id=f"p{number}")
        space.set_token(API_TOKEN)
        space.save()
    spaces = [spaces[0], *Space.objects.exclude(pk=spaces[0].pk).order_by("pk")][:count]
    for space in spaces:
        for model in (Conference, Room):
            if model.objects.filter(space=space, name__startswith=f"s{space.pk}-").exists():
                continue
            model.objects.bulk_create(
                [
                    model(space=space, name=f"s{space.pk}-{model.__name__.lower()}-{i}",
                          remote_id=f"{space.pk}-{model.__name__}-{i}")
                    for i in range(rows)
                ],
                batch_size=1000,
            )
    return spaces


def admin_pages(space_pk: int) -> dict[str, str]:
    """The admin pages measured, by label (change pages of a row in the given Space)."""
    from rooms.models import Conference, Room

    conference = Conference.objects.filter(space_id=space_pk).order_by("pk").first()
    room = Room.objects.filter(space_id=space_pk).order_by("pk").first()
    if conference is None or room is None:
        raise SystemExit("the Space has no conference or room to open")
    return {
        "index": "/admin/",
        "conferences: list": "/admin/rooms/conference/",
        "conferences: search": f"/admin/rooms/conference/?q=s{space_pk}-conference-1",
        "conferences: change page": f"/admin/rooms/conference/{conference.pk}/change/",
        "rooms: list": "/admin/rooms/room/",
        "rooms: change page": f"/admin/rooms/room/{room.pk}/change/",
        "sessions: list": "/admin/rooms/roomsession/",
        "recordings: list": "/admin/rooms/recording/",
        "change log": "/admin/rooms/auditentry/",
        "sync runs": "/admin/rooms/syncrun/",
        "usage": "/admin/rooms/roomsession/usage/",
    }


def count_queries(user: Any, paths: dict[str, str]) -> dict[str, int | str]:
    """Count the queries of each page for one user (Django's test client, same database)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    counts: dict[str, int | str] = {}
    for label, path in paths.items():
        with CaptureQueriesContext(connection) as queries:
            answer = client.get(path)
        counts[label] = len(queries) if answer.status_code == 200 else f"HTTP {answer.status_code}"
    return counts


def admin_figures(rows: int) -> dict[str, dict[str, dict[str, int | str]]]:
    """Queries per admin page for a superuser and for staff of one Space, at 1, 2 and 20 Spaces."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    User = get_user_model()
    boss = User.objects.create_superuser("bench-boss", password="x")
    staff = User.objects.create_user("bench-staff", password="x", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="rooms"))
    figures: dict[str, dict[str, dict[str, int | str]]] = {}
    for count in (1, 2, 20):
        spaces = seed_spaces(count, rows)
        spaces[0].staff.add(staff)
        paths = admin_pages(spaces[0].pk)
        figures[f"{count} Spaces"] = {
            "superuser": count_queries(boss, paths),
            "staff of one Space": count_queries(staff, paths),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conferences", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    children, urls = [], []
    for seed in (1, 2):
        ready = context.Queue()
        child = context.Process(
            target=serve, args=(args.conferences, seed, args.latency, ready, stop), daemon=True
        )
        child.start()
        children.append(child)
        urls.append(ready.get(timeout=600))
    result: dict[str, Any] = {"conferences_per_space": args.conferences,
                              "latency_s": args.latency, "trials": args.trials}
    with tempfile.TemporaryDirectory(prefix="spaces-bench-") as tmp:
        env = configure_django(Path(tmp), urls[0])
        try:
            result["sync"] = sync_figures(args, env, urls[1])
            result["admin_queries"] = admin_figures(args.rows)
        finally:
            stop.set()
            for child in children:
                child.join(timeout=30)
            from django.db import connections

            connections.close_all()
            benchdb.drop_database(os.environ["DATABASE_URL"])

    print(f"\nSync of {args.conferences} conferences per Space, latency {args.latency} s, "
          f"two-process worker, median of {args.trials}:")
    for label, value in result["sync"]["medians_s"].items():
        print(f"  {label:<16} {value:8.3f} s")
    print(f"  two Spaces / one: first sync {result['sync']['ratio_first']}x, "
          f"no change {result['sync']['ratio_unchanged']}x")
    print("\nQueries per admin page (superuser / staff of one Space):")
    columns = list(result["admin_queries"])
    print(f"  {'page':<26}" + "".join(f"{c:>18}" for c in columns))
    for label in result["admin_queries"][columns[0]]["superuser"]:
        cells = [
            f"{result['admin_queries'][c]['superuser'][label]} / "
            f"{result['admin_queries'][c]['staff of one Space'][label]}"
            for c in columns
        ]
        print(f"  {label:<26}" + "".join(f"{cell:>18}" for cell in cells))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
