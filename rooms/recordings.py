"""Mirror room recordings incrementally, and the reads admin shows about them.

The sync reads recordings newest first and stops after the first page that holds one
already mirrored unchanged, as the session history does; recordings it last saw still
recording, paused or processing are read again by id on every run, so they reach
"completed" even when they are far down the listing. A full run (`full=True`) reads the
whole listing and marks the recordings SignalWire no longer lists as deleted remotely.
Every call to SignalWire happens outside a transaction; each page is written in one
short transaction with a bounded number of queries. The `uri` of a payload is dropped
before anything is stored: it is a signed link that expires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, FloatField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from rooms import audit
from rooms.locks import Flight
from rooms.models import AuditEntry, Recording, RecordingState, RoomSession, SyncRun
from rooms.models.recordings import UNFINISHED
from rooms.sessions import readable_rows
from rooms.signalwire import payloads
from rooms.signalwire import recordings as api_recordings
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError, SignalWireError

logger = logging.getLogger("rooms.recordings")

Progress = Callable[[SyncRun], None]
# Unfinished recordings read again by id in one run (the rest wait for the next run).
REFRESH_LIMIT = 500
FIELDS = (
    "remote_session_id",
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
    "sync_note",
)
# The fields whose changes the audit trail records (raw and bookkeeping stay out).
AUDITED = tuple(f for f in FIELDS if f not in ("raw", "remote_updated_at", "sync_note"))
# Payload keys read as values, and the field each fills.
CHECKED = {
    "started_at": "started_at", "finished_at": "finished_at", "duration": "duration",
    "size_in_bytes": "size_in_bytes", "cost_in_dollars": "cost_in_dollars",
    "created_at": "remote_created_at",
}
NOTED = frozenset((*AUDITED, "session", "sync_state"))


# --- the sync ---------------------------------------------------------------------------


def recordings_sync(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncRun:
    """Mirror recordings new or changed since the last run, and refresh unfinished ones."""
    from rooms.sync.runs import locked_run

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        seen: set[str] = set()
        complete = True
        for page in api_recordings.iter_recording_pages(api, page_size=page_size):
            run.pages += 1
            rows = _readable(run, page)
            # Every listed id, stored or not: a row left out is still in SignalWire.
            seen.update(
                row["id"]
                for row in page
                if isinstance(row, dict) and isinstance(row.get("id"), str)
            )
            known = _known(rows)
            changed = [row for row in rows if known.get(row["id"]) != _version(row)]
            _store(run, changed)
            run.unchanged += len(rows) - len(changed)
            if progress is not None:
                progress(run)
            if len(changed) < len(rows) and not full:
                complete = False
                break  # older recordings are mirrored already
        _refresh_unfinished(run, api, seen)
        if full and complete:
            _mark_missing(run, seen)
        run.updated += recordings_link_sessions()

    return locked_run(SyncRun.Kind.RECORDINGS, trigger, client, work)


def recordings_link_sessions() -> int:
    """Link recordings mirrored before their session was; return how many (one UPDATE)."""
    session = RoomSession.objects.filter(remote_id=OuterRef("remote_session_id"))
    orphans = Recording.objects.filter(session__isnull=True).exclude(remote_session_id="")
    matching = orphans.filter(Exists(session))
    if not matching.exists():  # an unchanged mirror gets no UPDATE at all
        return 0
    return matching.update(
        session_id=Subquery(session.values("pk")[:1]),
        room_name=Subquery(session.values("room_name")[:1]),
    )


def _readable(run: SyncRun, page: list[Any], listed: set[str] | None = None) -> list[dict]:
    """Keep the rows the database can store, each id once, without their link.

    listed: ids already kept from the same read (a repeat is left out); updated in place.
    """
    run.seen += len(page)
    kept = readable_rows(run, page, set() if listed is None else listed, kind="recording")
    return [api_recordings.without_uri(row) for row in kept]


def _version(row: dict) -> tuple[str, str]:
    """What tells a changed recording from an unchanged one: its update time and status."""
    text = payloads.remote_text
    return (text(row.get("updated_at"))[:40], text(row.get("status"))[:40])


def _known(rows: list[dict]) -> dict[str, tuple[str, str]]:
    """The stored version of each listed recording already mirrored (one query)."""
    stored = Recording.objects.filter(remote_id__in=[row["id"] for row in rows]).values_list(
        "remote_id", "remote_updated_at", "status"
    )
    return {remote_id: (updated, status) for remote_id, updated, status in stored}


def _refresh_unfinished(run: SyncRun, api: SignalWireClient, seen: set[str]) -> None:
    """Read again, by id, the recordings last seen unfinished that this run did not list."""
    waiting = list(
        Recording.objects.filter(status__in=UNFINISHED, sync_state=RecordingState.SYNCED)
        .exclude(remote_id__in=seen)
        .order_by("started_at", "pk")
        .values_list("remote_id", flat=True)[:REFRESH_LIMIT]
    )
    rows: list[dict] = []
    gone: list[str] = []
    # Each read answers one recording, but a broken Space may answer two with one id.
    listed: set[str] = set()
    for remote_id in waiting:
        try:
            row = api_recordings.get_recording(api, remote_id)
        except NotFoundError:
            gone.append(remote_id)
            continue
        except SignalWireError as exc:
            if exc.retryable:
                raise
            run.errors += 1
            run.error = run.error or f"Recording {remote_id}: {exc}"
            continue
        rows.extend(_readable(run, [row], listed))
    known = _known(rows)
    changed = [row for row in rows if known.get(row["id"]) != _version(row)]
    _store(run, changed)
    run.unchanged += len(rows) - len(changed)
    if gone:
        with transaction.atomic():
            gone_rows = Recording.objects.filter(remote_id__in=gone)
            run.marked_deleted += recordings_mark_deleted(gone_rows)


def _mark_missing(run: SyncRun, seen: set[str]) -> None:
    """After a complete listing: recordings SignalWire no longer lists are deleted there."""
    missing = Recording.objects.filter(sync_state=RecordingState.SYNCED).exclude(
        remote_id__in=seen
    )
    with transaction.atomic():
        run.marked_deleted += recordings_mark_deleted(missing)


def recordings_mark_deleted(rows: QuerySet[Recording]) -> int:
    """Mark rows deleted remotely (kept, filterable) and audit it; call inside a transaction."""
    marked = list(rows.select_related("session"))
    if not marked:
        return 0
    Recording.objects.filter(pk__in=[r.pk for r in marked]).update(
        sync_state=RecordingState.DELETED_REMOTELY
    )
    audit.bulk_record(
        model=Recording,
        entries=[
            (
                r,
                AuditEntry.Action.UPDATE,
                audit.NormalisedChanges(
                    sync_state=[r.sync_state, str(RecordingState.DELETED_REMOTELY)]
                ),
            )
            for r in marked
        ],
    )
    return len(marked)


def _store(run: SyncRun, rows: list[dict]) -> None:
    """Write one page's new and changed recordings in one short transaction."""
    if not rows:
        return
    now = timezone.now()
    with transaction.atomic():
        existing = {
            r.remote_id: r
            for r in Recording.objects.select_related("session").filter(
                remote_id__in=[row["id"] for row in rows]
            )
        }
        session_ids = {payloads.remote_text(row.get("room_session_id")) for row in rows} - {""}
        # Light session objects: enough for the link and the audit entry's owner, no N+1.
        sessions = {
            remote_id: RoomSession(pk=pk, room_name=name, conference_id=conf, room_id=room)
            for remote_id, pk, name, conf, room in RoomSession.objects.filter(
                remote_id__in=session_ids
            ).values_list("remote_id", "pk", "room_name", "conference_id", "room_id")
        }
        new: list[Recording] = []
        changed: list[tuple[Recording, dict[str, list]]] = []
        for row in rows:
            values = map_recording(row)
            link = sessions.get(values["remote_session_id"])
            recording = existing.get(row["id"])
            if recording is None:
                recording = Recording(remote_id=row["id"], last_synced_at=now, **values)
                if link is not None:
                    recording.session, recording.room_name = link, link.room_name
                new.append(recording)
                continue
            if recording.sync_state == RecordingState.PENDING_DELETE:
                run.skipped_pending += 1  # its delete is on its way: the delete wins
                continue
            diff = {
                name: [getattr(recording, name), value]
                for name, value in values.items()
                if getattr(recording, name) != value
            }
            if recording.sync_state == RecordingState.DELETED_REMOTELY:
                diff["sync_state"] = [recording.sync_state, str(RecordingState.SYNCED)]
                recording.sync_state = RecordingState.SYNCED
                run.restored += 1
            if link is not None and recording.session_id is None:
                recording.session, recording.room_name = link, link.room_name
                diff["session"] = [None, link.pk]
            if not diff:
                continue
            for name, value in values.items():
                setattr(recording, name, value)
            recording.last_synced_at = now
            changed.append((recording, diff))
        Recording.objects.bulk_create(new)
        if changed:
            Recording.objects.bulk_update(
                [r for r, _ in changed],
                [*FIELDS, "session", "room_name", "sync_state", "last_synced_at"],
            )
        entries: list[tuple[Any, int, Any]] = [
            (r, AuditEntry.Action.CREATE, _created(r)) for r in new
        ]
        entries += [
            (r, AuditEntry.Action.UPDATE, {k: v for k, v in diff.items() if k in NOTED})
            for r, diff in changed
        ]
        if connection_lacks_returning(new):
            _reload_pks(new)
        audit.bulk_record(model=Recording, entries=entries)
    run.created += len(new)
    run.updated += len(changed)


def _created(recording: Recording) -> dict[str, list]:
    """The audit diff of a newly mirrored recording: its fields from nothing."""
    return {name: [None, getattr(recording, name)] for name in AUDITED}


def connection_lacks_returning(rows: list[Recording]) -> bool:
    """Tell whether bulk_create left the new rows without primary keys."""
    return any(r.pk is None for r in rows)


def _reload_pks(rows: list[Recording]) -> None:
    """Fill in the primary keys of rows bulk_create could not return (one query)."""
    pks = dict(
        Recording.objects.filter(remote_id__in=[r.remote_id for r in rows]).values_list(
            "remote_id", "pk"
        )
    )
    for r in rows:
        r.pk = pks.get(r.remote_id)


def map_recording(row: dict) -> dict[str, Any]:
    """Turn a recording payload into field values; odd values become None, raw keeps all."""
    values = {
        "remote_session_id": payloads.remote_text(row.get("room_session_id"))[:64],
        "status": payloads.remote_text(row.get("status"))[:40],
        "started_at": payloads.parse_remote_datetime(row.get("started_at")),
        "finished_at": payloads.parse_remote_datetime(row.get("finished_at")),
        "duration": payloads.remote_seconds(row.get("duration")),
        "size_in_bytes": payloads.remote_bytes(row.get("size_in_bytes")),
        "format": payloads.remote_text(row.get("format"))[:40],
        "cost_in_dollars": payloads.remote_money(row.get("cost_in_dollars")),
        "remote_created_at": payloads.parse_remote_datetime(row.get("created_at")),
        "remote_updated_at": payloads.remote_text(row.get("updated_at"))[:40],
        "raw": api_recordings.without_uri(row),
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, CHECKED)
    return values


# --- reads for admin --------------------------------------------------------------------


def recording_totals(queryset: QuerySet[Recording]) -> dict[str, Any]:
    """Count, size and cost of a set of recordings, in one aggregate query."""
    from django.db.models import Count

    # Summed as floating point: a sum of 64-bit sizes can pass what a 64-bit integer holds
    # (SQLite's SUM then fails), and a total shown in TiB needs no byte-exact figure.
    totals = queryset.order_by().aggregate(
        count=Count("pk"),
        size=Coalesce(Sum(Cast("size_in_bytes", FloatField())), 0.0),
        cost=Coalesce(Sum("cost_in_dollars"), Decimal("0")),
    )
    return {"count": totals["count"], "size": int(totals["size"]), "cost": totals["cost"]}


def size_text(size: int | None) -> str:
    """Say a size in bytes the way people read it (binary units)."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def ended_at(recording: Recording) -> datetime | None:
    """When a recording ended, as retention measures its age: finished, else created."""
    return recording.finished_at or recording.remote_created_at or recording.started_at
