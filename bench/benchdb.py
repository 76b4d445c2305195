"""The database a benchmark runs against: a fresh SQLite file, or a PostgreSQL database.

With DATABASE_URL unset (or sqlite), a benchmark migrates a new SQLite file in a temporary
directory. With DATABASE_URL=postgres://..., it creates a database of its own beside the
one named (`<name>_bench`), migrates it, and drops it at
the end; the database named in the URL is never touched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def is_postgres() -> bool:
    """Tell whether DATABASE_URL names a PostgreSQL server."""
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def bench_url(tmp: Path, suffix: str = "") -> str:
    """The URL the benchmark (and any server it starts) uses for its own database."""
    url = os.environ.get("DATABASE_URL", "")
    if not is_postgres():
        return f"sqlite:///{tmp / 'bench.sqlite3'}"
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "portal"
    return urlunsplit(parts._replace(path=f"/{name}_bench{suffix}"))


def _drop(conn: object, name: str) -> None:
    """Drop a database, waiting briefly for sessions (autovacuum, a closing server) to go."""
    import psycopg

    for attempt in range(40):
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[attr-defined]
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 39:
                raise
            time.sleep(0.25)


def create_database(url: str) -> None:
    """Create (or re-create) the benchmark's PostgreSQL database; SQLite needs nothing."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = parts.path.lstrip("/")
        _drop(conn, name)
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    """Drop the benchmark's PostgreSQL database."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        _drop(conn, parts.path.lstrip("/"))


def vendor_label() -> str:
    """Name the database kind for the printed tables."""
    return "PostgreSQL" if is_postgres() else "SQLite"
