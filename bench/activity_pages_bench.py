"""Benchmark the activity pages (sessions, recordings, usage) at a year of a busy Space.

    python bench/activity_pages_bench.py [--sessions N] [--repeat R] [--keep FILE]

Seeds N room sessions spread over the last 365 days (3 members each), 0.3 recordings per
session and 4,000 conferences and rooms (half each) straight into a fresh database with
bulk SQL (SQLite by default, PostgreSQL when DATABASE_URL says so; see bench/benchdb.py),
starts gunicorn (one worker, one thread) on it, logs in as a superuser through the login
form and asks each page R times. Figures: the median and slowest wall time of each page as
the browser sees it, and the queries each page runs (counted in this process with Django's
CaptureQueriesContext).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402
from bench.admin_bench import (  # noqa: E402
    PASSWORD,
    USERNAME,
    configure_django,
    count_queries,
    free_port,
    login,
    start_server,
)

OWNERS = 4000
MEMBERS_PER_SESSION = 3
RECORDINGS_PER_SESSION = 0.3
LIVE_SESSIONS = 20
BATCH = 20_000
WORDS = ("Weekly", "Standup", "Review", "Town hall", "Class", "Support", "Demo", "Board")
NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus")

SESSION_COLUMNS = (
    "id",
    "remote_id",
    "remote_room_id",
    "room_name",
    "status",
    "start_time",
    "end_time",
    "duration",
    "locked",
    "cost_in_dollars",
    "members_now",
    "member_count",
    "member_seconds",
    "remote_updated_at",
    "raw",
    "last_synced_at",
    "conference_id",
    "room_id",
    "sync_note",
)
MEMBER_COLUMNS = (
    "remote_id",
    "name",
    "join_time",
    "leave_time",
    "duration",
    "cost_in_dollars",
    "raw",
    "session_id",
    "sync_note",
)
RECORDING_COLUMNS = (
    "remote_id",
    "remote_session_id",
    "room_name",
    "status",
    "started_at",
    "finished_at",
    "duration",
    "size_in_bytes",
    "format",
    "cost_in_dollars",
    "remote_created_at",
    "remote_updated_at",
    "raw",
    "last_synced_at",
    "sync_state",
    "last_error",
    "session_id",
    "sync_note",
)


def remote(kind: int, i: int) -> str:
    """A SignalWire-shaped id, unique per kind and number, cheap to make."""
    return f"{kind:08x}-0000-4000-8000-{i:012x}"


def seed_owners() -> list[tuple[str, int, str, str]]:
    """Store 2,000 conferences and 2,000 rooms; return (field, pk, name, remote id) of each."""
    from rooms.models import Conference, Room, default_space_id

    now = datetime.now(UTC)
    space_id = default_space_id()
    owners: list[tuple[str, int, str, str]] = []
    for kind, model, field in ((1, Conference, "conference"), (2, Room, "room")):
        rows = []
        for i in range(OWNERS // 2):
            remote_id = remote(kind, i)
            name = f"{field}-{i:04d}"
            rows.append(
                model(
                    space_id=space_id,
                    name=name,
                    display_name=f"{WORDS[i % len(WORDS)]} {i}",
                    remote_id=remote_id,
                    raw={"id": remote_id, "name": name},
                    last_synced_at=now,
                )
            )
        model.objects.bulk_create(rows, batch_size=1000)
        owners += [
            (field, pk, name, remote_id)
            for pk, name, remote_id in model.objects.order_by("pk").values_list(
                "pk", "name", "remote_id"
            )
        ]
    return owners


def session_rows(
    n: int,
    owners: list[tuple[str, int, str, str]],
    sessions: list[tuple[int, datetime, int | None]],
    names: dict[int, str],
) -> Iterator[tuple]:
    """Yield n sessions in start order over the last 365 days (the newest few live).

    Each is also noted in `sessions` (pk, start, duration) and `names` for its members
    and recordings.
    """
    from django.db import connection

    stamp = connection.ops.adapt_datetimefield_value
    rng = random.Random(25)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=365)
    step = timedelta(days=365) / max(n, 1)
    for i in range(n):
        begin = start + step * i
        live = i >= n - LIVE_SESSIONS
        field, pk, name, room_remote = owners[rng.randrange(len(owners))]
        if rng.random() < 0.02:  # a room made on the fly by a token: not mirrored
            field, pk, name, room_remote = "", 0, f"adhoc-{rng.randrange(500):03d}", ""
        duration = None if live else rng.randrange(300, 5400)
        member_seconds = (duration or 0) * MEMBERS_PER_SESSION
        remote_id = remote(3, i)
        sessions.append((i + 1, begin, duration))
        names[i + 1] = name
        yield (
            i + 1,
            remote_id,
            room_remote,
            name,
            "in-progress" if live else "completed",
            stamp(begin),
            None if live else stamp(begin + timedelta(seconds=duration or 0)),
            duration,
            False,
            None if live else str(Decimal(member_seconds) * Decimal("0.0005")),
            MEMBERS_PER_SESSION if live else 0,
            MEMBERS_PER_SESSION,
            member_seconds,
            "",
            json.dumps({"id": remote_id, "room_id": room_remote, "name": name}),
            stamp(now),
            pk if field == "conference" else None,
            pk if field == "room" else None,
            "",
        )


def member_rows(sessions: list[tuple[int, datetime, int | None]]) -> Iterator[tuple]:
    """Yield three members per session, each in for the whole session."""
    from django.db import connection

    stamp = connection.ops.adapt_datetimefield_value
    number = 0
    for pk, begin, duration in sessions:
        end = None if duration is None else stamp(begin + timedelta(seconds=duration))
        for j in range(MEMBERS_PER_SESSION):
            number += 1
            yield (
                remote(4, number),
                NAMES[(pk + j) % len(NAMES)],
                stamp(begin),
                end,
                duration,
                None if duration is None else str(Decimal(duration) * Decimal("0.0005")),
                "{}",
                pk,
                "",
            )


def recording_rows(
    sessions: list[tuple[int, datetime, int | None]], names: dict[int, str], count: int
) -> Iterator[tuple]:
    """Yield `count` recordings of ended sessions picked at random, oldest first."""
    from django.db import connection

    stamp = connection.ops.adapt_datetimefield_value
    rng = random.Random(26)
    ended = [s for s in sessions if s[2] is not None]
    picked = sorted(rng.sample(range(len(ended)), min(count, len(ended))))
    statuses = ("completed",) * 97 + ("processing", "recording", "paused")
    states = ("synced",) * 48 + ("pending_delete", "deleted_remotely")
    for number, index in enumerate(picked):
        pk, begin, duration = ended[index]
        length = max(60, (duration or 0) - rng.randrange(60))
        remote_id = remote(5, number)
        yield (
            remote_id,
            remote(3, pk - 1),
            names[pk],
            rng.choice(statuses),
            stamp(begin),
            stamp(begin + timedelta(seconds=length)),
            length,
            length * rng.randrange(100_000, 600_000),
            "mp4",
            str(Decimal(length) * Decimal("0.0010")),
            stamp(begin),
            "",
            json.dumps({"id": remote_id, "room_session_id": remote(3, pk - 1)}),
            stamp(begin),
            rng.choice(states),
            "",
            pk,
            "",
        )


def bulk_insert(table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    """Store rows in the environment's Space with the fastest bulk path (COPY or executemany)."""
    from django.db import connection, transaction

    from rooms.models import default_space_id

    space_id = default_space_id()
    columns = (*columns, "space_id")
    rows = ((*row, space_id) for row in rows)
    names = ", ".join(columns)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        chunk: list[tuple] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == BATCH:
                cursor.executemany(sql, chunk)
                chunk = []
        cursor.executemany(sql, chunk)


def seed(n: int) -> list[tuple[str, int, str, str]]:
    """Store the owners, n sessions, their members and recordings; return the owners."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # A bench's own throwaway file: no fsync while seeding, a big page cache.
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-1000000")
    owners = seed_owners()
    sessions: list[tuple[int, datetime, int | None]] = []
    names: dict[int, str] = {}
    rows = session_rows(n, owners, sessions, names)
    bulk_insert("rooms_roomsession", SESSION_COLUMNS, rows)
    bulk_insert("rooms_sessionmember", MEMBER_COLUMNS, member_rows(sessions))
    count = int(n * RECORDINGS_PER_SESSION)
    bulk_insert("rooms_recording", RECORDING_COLUMNS, recording_rows(sessions, names, count))
    # The usage pages read the daily rollup the sync keeps; bulk SQL bypasses the sync.
    from rooms.services.usage import rebuild_usage

    rebuild_usage()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Keep the sequences past the explicit ids, and what autovacuum would soon do.
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('rooms_roomsession', 'id'), %s)", [n]
            )
            cursor.execute("ANALYZE")
        else:
            cursor.execute("PRAGMA synchronous=NORMAL")
    return owners


def pages(owners: list[tuple[str, int, str, str]]) -> dict[str, str]:
    """The activity pages measured, by label."""
    from rooms.models import Recording, RoomSession

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week = {"start_time__gte": str(today - timedelta(days=7)), "start_time__lt": str(today)}
    rec_week = {"started_at__gte": week["start_time__gte"], "started_at__lt": str(today)}
    conference = next(o for o in owners if o[0] == "conference")
    room = next(o for o in owners if o[0] == "room")
    session = RoomSession.objects.order_by("pk").values_list("pk", flat=True)[
        RoomSession.objects.count() // 2
    ]
    recording = Recording.objects.order_by("pk").values_list("pk", flat=True).first()
    month = today - timedelta(days=40)
    # Deep pages: 20% into the sessions (page 2,000 of a million), 17% into the recordings.
    session_page = max(1, RoomSession.objects.count() * 2 // 1000)
    recording_page = max(1, Recording.objects.count() // 600)
    s, r = "/admin/rooms/roomsession/", "/admin/rooms/recording/"
    pages = {
        "sessions: list": s,
        f"sessions: page {session_page}": f"{s}?p={session_page}",
        "sessions: search room name": f"{s}?q={conference[2]}",
        "sessions: status completed": f"{s}?status__exact=completed",
        "sessions: status live": f"{s}?status__exact=in-progress",
        "sessions: past 7 days": f"{s}?{urlencode(week)}",
        "sessions: month drill-down": f"{s}?start_time__year={month.year}"
        f"&start_time__month={month.month}",
        "sessions: by conference": f"{s}?conference__id__exact={conference[1]}",
        "sessions: by room": f"{s}?room__id__exact={room[1]}",
        "session page": f"{s}{session}/change/",
        "recordings: list + totals": r,
        f"recordings: page {recording_page}": f"{r}?p={recording_page}",
        "recordings: search room name": f"{r}?q={room[2]}",
        "recordings: room filter": f"{r}?room={conference[2]}",
        "recordings: status processing": f"{r}?status__exact=processing",
        "recordings: past 7 days": f"{r}?{urlencode(rec_week)}",
        "recordings: size over 1 GiB": f"{r}?size=gt1g",
        "recordings: pending delete": f"{r}?sync_state__exact=pending_delete",
        "recording page": f"{r}{recording}/change/" if recording else r,
        "dashboard": "/admin/",
        "conference page": f"/admin/rooms/conference/{conference[1]}/change/",
        "room page": f"/admin/rooms/room/{room[1]}/change/",
        "usage 7 days": f"{s}usage/?days=7",
        "usage 30 days": f"{s}usage/?days=30",
        "usage 90 days": f"{s}usage/?days=90",
        "usage 365 days": f"{s}usage/?days=365",
        "usage CSV 365 days": f"{s}usage/usage.csv?days=365",
    }
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--keep",
        metavar="FILE",
        help="SQLite only: seed this file once and reuse it on later runs (for profiling)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="activity-pages-bench-") as tmp:
        url = f"sqlite:///{args.keep}" if args.keep else benchdb.bench_url(Path(tmp), "_pages")
        reuse = bool(args.keep) and Path(args.keep).exists()
        if not args.keep:
            benchdb.create_database(url)
        server = None
        try:
            configure_django(url)
            from django.contrib.auth import get_user_model
            from django.db import connection

            from rooms.models import Conference, Room

            started = time.perf_counter()
            if reuse:
                owners = [
                    (field, pk, name, remote_id)
                    for field, model in (("conference", Conference), ("room", Room))
                    for pk, name, remote_id in model.objects.order_by("pk").values_list(
                        "pk", "name", "remote_id"
                    )
                ]
            else:
                get_user_model().objects.create_superuser(USERNAME, "", PASSWORD)
                owners = seed(args.sessions)
            seed_s = time.perf_counter() - started
            paths = pages(owners)
            queries = count_queries(paths)
            connection.close()
            port = free_port()
            server = start_server(url, port)
            base = f"http://127.0.0.1:{port}"
            session = login(base)
            timings: dict[str, list[float]] = {label: [] for label in paths}
            for path in paths.values():
                session.get(base + path, timeout=300)  # warm: templates, caches
            for _ in range(args.repeat):
                for label, path in paths.items():
                    began = time.perf_counter()
                    answer = session.get(base + path, timeout=300)
                    timings[label].append(time.perf_counter() - began)
                    assert answer.status_code == 200, (label, answer.status_code)
                    assert "/admin/login/" not in answer.url, label
            session.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            from django.db import connections

            connections.close_all()
            if not args.keep:
                benchdb.drop_database(url)

    medians = {label: statistics.median(t) * 1000 for label, t in timings.items()}
    members = args.sessions * MEMBERS_PER_SESSION
    recordings = int(args.sessions * RECORDINGS_PER_SESSION)
    print(
        f"activity pages on {benchdb.vendor_label()}: {args.sessions:,} sessions, "
        f"{members:,} members, {recordings:,} recordings, {OWNERS:,} conferences and rooms "
        f"(seeded in {seed_s:.1f} s), gunicorn, median of {args.repeat}"
    )
    width = max(len(label) for label in paths)
    print(f"{'page':<{width}}  {'median ms':>9}  {'max ms':>7}  queries")
    for label in paths:
        print(
            f"{label:<{width}}  {medians[label]:9.0f}  {max(timings[label]) * 1000:7.0f}  "
            f"{queries[label]}"
        )
    print(
        json.dumps(
            {
                "database": benchdb.vendor_label(),
                "sessions": args.sessions,
                "median_ms": {k: round(v, 1) for k, v in medians.items()},
                "queries": queries,
                "slowest_ms": round(max(medians.values()), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
