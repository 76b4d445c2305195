"""Benchmark admin pages at scale through a real HTTP server; print a table and JSON.

    python bench/admin_bench.py [--conferences N] [--audit M] [--repeat R]

Seeds N conferences and M audit rows straight into a fresh database (SQLite by default,
PostgreSQL when DATABASE_URL says so; see bench/benchdb.py), starts gunicorn (one worker,
one thread) on it, logs in as a superuser through the login form and asks each page R
times. Figures: the median wall time of each page as the browser would see it, and the
queries each page runs (counted in this process with Django's CaptureQueriesContext).
Seeding is bulk SQL: the pages read the same rows whoever wrote them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import benchdb  # noqa: E402

USERNAME, PASSWORD = "bench-admin", "bench-password-5f1e"
SIZES = ("small", "medium", "large")
STATES = ("synced",) * 17 + ("pending_push", "pending_delete", "deleted_remotely")
SOURCES = ("sync",) * 6 + ("admin", "admin", "push", "shell")
WORDS = ("Weekly", "Standup", "Review", "Town hall", "Class", "Support", "Demo", "Board")


def configure_django(url: str) -> None:
    """Point Django at the benchmark's database and migrate it."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def seed_conferences(n: int) -> list[tuple[int, str, str]]:
    """Store n conferences with bulk_create; return (pk, name, remote id) of each."""
    from rooms.models import Conference, default_space_id

    rng = random.Random(5)
    now = datetime.now(UTC)
    space_id = default_space_id()
    batch: list[Conference] = []
    for i in range(n):
        remote_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = f"bench-conf-{i:06d}"
        batch.append(
            Conference(
                space_id=space_id,
                name=name,
                display_name=f"{rng.choice(WORDS)} {i}",
                remote_id=remote_id,
                size=rng.choice(SIZES),
                sync_state=rng.choice(STATES),
                raw={"id": remote_id, "name": name},
                last_synced_at=now,
                remote_created_at=now - timedelta(days=rng.randrange(700)),
                remote_updated_at=now - timedelta(days=rng.randrange(300)),
            )
        )
        if len(batch) == 5000:
            Conference.objects.bulk_create(batch)
            batch = []
    Conference.objects.bulk_create(batch)
    return list(Conference.objects.order_by("pk").values_list("pk", "name", "remote_id"))


def audit_rows(m: int, conferences: list[tuple[int, str, str]], ct_id: int, user_id: int) -> Any:
    """Yield m audit rows: a create per conference first, then updates spread over them."""
    from django.db import connection

    stamp = connection.ops.adapt_datetimefield_value
    rng = random.Random(9)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(m, 1)
    n = len(conferences)
    cid = str(uuid.uuid4())
    for i in range(m):
        if i % 500 == 0:
            cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        create = i < n
        pk, name, remote_id = conferences[i if create else rng.randrange(n)]
        source = "sync" if create else rng.choice(SOURCES)
        admin = source == "admin"
        if create:
            changes = {"name": [None, name], "size": [None, "medium"]}
        else:
            changes = {"display_name": [f"Old {i}", f"New {i}"]}
        yield (
            str(pk),
            pk,
            name,
            None,
            0 if create else 1,
            "",
            json.dumps(changes),
            cid,
            None,
            None,
            stamp(start + step * i),
            json.dumps({"remote_id": remote_id}),
            None,
            source,
            remote_id,
            user_id if admin else None,
            ct_id,
            None,
            None,
            "" if admin else source,
        )


AUDIT_COLUMNS = (
    "object_pk",
    "object_id",
    "object_repr",
    "serialized_data",
    "action",
    "changes_text",
    "changes",
    "cid",
    "remote_addr",
    "remote_port",
    "timestamp",
    "additional_data",
    "actor_email",
    "source",
    "object_remote_id",
    "actor_id",
    "content_type_id",
    "related_object_id",
    "related_object_type_id",
    "actor_label",
)


def seed_audit(m: int, conferences: list[tuple[int, str, str]], user_id: int) -> None:
    """Store m audit rows with the fastest bulk path of the database (COPY or executemany)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction

    from rooms.models import Conference

    ct_id = ContentType.objects.get_for_model(Conference).pk
    rows = audit_rows(m, conferences, ct_id, user_id)
    columns = ", ".join(AUDIT_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            with raw.copy(f"COPY rooms_auditentry ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(AUDIT_COLUMNS))
            sql = f"INSERT INTO rooms_auditentry ({columns}) VALUES ({marks})"
            chunk: list[tuple] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) == 20_000:
                    cursor.executemany(sql, chunk)
                    chunk = []
            cursor.executemany(sql, chunk)
    if connection.vendor == "postgresql":
        # What autovacuum would soon do after a bulk load; the portal never runs ANALYZE
        # on SQLite, so neither does the bench there.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def free_port() -> int:
    """Pick a free loopback port for the server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, port: int) -> subprocess.Popen:
    """Start gunicorn (one worker, one thread) on the benchmark's database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": url,
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "1",
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def login(base: str) -> Any:
    """Log in through the admin's login form; return the requests session."""
    import requests

    session = requests.Session()
    deadline = time.monotonic() + 60
    while True:
        try:
            page = session.get(f"{base}/admin/login/", timeout=30)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the login page"
    answer = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "username": USERNAME,
            "password": PASSWORD,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
        timeout=30,
    )
    assert answer.ok and "/admin/login/" not in answer.url, "login failed"
    return session


def pages(conferences: list[tuple[int, str, str]]) -> dict[str, str]:
    """The admin pages measured, by label."""
    from django.contrib.contenttypes.models import ContentType

    from rooms.models import AuditEntry, Conference

    ct = ContentType.objects.get_for_model(Conference).pk
    pk, name, remote_id = conferences[len(conferences) // 2]
    cid = AuditEntry.objects.order_by("pk").values_list("cid", flat=True)[
        min(len(conferences) + 1000, AuditEntry.objects.count() - 1)
    ]
    log = "/admin/rooms/auditentry/"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week_ago, tomorrow = today - timedelta(days=7), today + timedelta(days=1)
    # Deep pages: 40% into the conference list, 20% into the change log.
    conf_page = max(1, len(conferences) * 4 // 1000)
    log_page = max(1, AuditEntry.objects.count() * 2 // 1000)
    conf = "/admin/rooms/conference/"
    return {
        "conferences: list": conf,
        f"conferences: page {conf_page}": f"{conf}?p={conf_page}",
        "conferences: search name": f"{conf}?q={name}",
        "conferences: search remote id": f"{conf}?q={remote_id}",
        "conferences: search word": f"{conf}?q=Standup",
        "conferences: state+size filter": f"{conf}?size__exact=large&sync_state__exact=synced",
        "conferences: sorted by updated": f"{conf}?o=9.1",
        "conferences: live filter": f"{conf}?activity=live",
        "conferences: change page": f"{conf}{pk}/change/",
        "conferences: history": f"{conf}{pk}/history/",
        "change log": log,
        f"change log: page {log_page}": f"{log}?p={log_page}",
        "change log: source filter": f"{log}?source__exact=admin",
        "change log: type+action filter": f"{log}?content_type={ct}&action__exact=1",
        "change log: object and tokens": f"{log}?about={ct}.{pk}",
        "change log: request id": f"{log}?cid={cid}",
        "change log: search name": f"{log}?q={name}",
        "change log: search remote id": f"{log}?q={remote_id}",
        "change log: past 7 days": f"{log}?"
        + urlencode({"timestamp__gte": str(week_ago), "timestamp__lt": str(tomorrow)}),
    }


def count_queries(paths: dict[str, str]) -> dict[str, int]:
    """Count the queries of each page in this process (Django's test client, same DB)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=USERNAME))
    counts = {}
    for label, path in paths.items():
        with CaptureQueriesContext(connection) as queries:
            answer = client.get(path)
        assert answer.status_code == 200, (label, answer.status_code)
        counts[label] = len(queries)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conferences", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--keep",
        metavar="FILE",
        help="SQLite only: seed this file once and reuse it on later runs (for profiling)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="admin-bench-") as tmp:
        url = f"sqlite:///{args.keep}" if args.keep else benchdb.bench_url(Path(tmp), "_admin")
        reuse = bool(args.keep) and Path(args.keep).exists()
        if not args.keep:
            benchdb.create_database(url)
        server = None
        try:
            configure_django(url)
            from django.contrib.auth import get_user_model
            from django.db import connection

            from rooms.models import Conference

            started = time.perf_counter()
            if reuse:
                conferences = list(
                    Conference.objects.order_by("pk").values_list("pk", "name", "remote_id")
                )
            else:
                user = get_user_model().objects.create_superuser(USERNAME, "", PASSWORD)
                conferences = seed_conferences(args.conferences)
                seed_audit(args.audit, conferences, user.pk)
            seed_s = time.perf_counter() - started
            paths = pages(conferences)
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
    print(
        f"admin pages on {benchdb.vendor_label()}: {args.conferences:,} conferences, "
        f"{args.audit:,} audit rows (seeded in {seed_s:.1f} s), gunicorn, "
        f"median of {args.repeat}"
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
                "conferences": args.conferences,
                "audit_rows": args.audit,
                "median_ms": {k: round(v, 1) for k, v in medians.items()},
                "queries": queries,
                "slowest_ms": round(max(medians.values()), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
