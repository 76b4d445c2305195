"""Mirror room recordings incrementally (the engine's newest-first shape).

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

from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from rooms import audit
from rooms.models import AuditEntry, Recording, RecordingState, RoomSession, Space, SyncRun
from rooms.models.recordings import UNFINISHED
from rooms.registry import RECORDING
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError, SignalWireError
from rooms.sync.engine import NewestFirstSync, mark_deleted, newest_first_run
from rooms.sync.runs import Progress

# Unfinished recordings read again by id in one run (the rest wait for the next run).
REFRESH_LIMIT = 500
FIELDS = (
    "remote_session_id", "status", "started_at", "finished_at", "duration", "size_in_bytes",
    "format", "cost_in_dollars", "remote_created_at", "remote_updated_at", "raw", "sync_note",
)
# The fields whose changes the audit trail records (raw and bookkeeping stay out).
AUDITED = tuple(f for f in FIELDS if f not in ("raw", "remote_updated_at", "sync_note"))
NOTED = frozenset((*AUDITED, "session", "sync_state"))


def recordings_sync(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    full: bool = False,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Mirror a Space's recordings new or changed since the last run; refresh unfinished ones."""

    return newest_first_run(
        RecordingSync, SyncRun.Kind.RECORDINGS, client=client, trigger=trigger, page_size=page_size,
        full=full, progress=progress, space=space,
    )


def recordings_link_sessions(space_id: int) -> int:
    """Link a Space's recordings mirrored before their session was; return how many."""
    session = RoomSession.objects.filter(
        space_id=space_id, remote_id=OuterRef("remote_session_id")
    )
    orphans = Recording.objects.filter(space_id=space_id, session__isnull=True).exclude(
        remote_session_id=""
    )
    matching = orphans.filter(Exists(session))
    if not matching.exists():  # an unchanged mirror gets no UPDATE at all
        return 0
    return matching.update(
        session_id=Subquery(session.values("pk")[:1]),
        room_name=Subquery(session.values("room_name")[:1]),
    )


def recordings_mark_deleted(rows: QuerySet[Recording]) -> int:
    """Mark rows deleted remotely (kept, filterable) and audit it; call inside a transaction."""
    return mark_deleted(RECORDING, rows)


class RecordingSync(NewestFirstSync):
    """Recordings newest first; the unfinished ones read again by id; a full pass marks."""

    mirror = RECORDING
    version_columns = ("remote_updated_at", "status")
    noun = "recording"

    def pages(self, *, page_size: int | None, full: bool) -> Iterator[list[dict[str, Any]]]:
        return RECORDING.pages(self.client, page_size=page_size)

    def version(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """Its update time and status, as stored (at most 40 characters)."""
        text = payloads.remote_text
        return (text(row.get("updated_at"))[:40], text(row.get("status"))[:40])

    def finish(self, *, full: bool, complete: bool) -> None:
        self.refresh_unfinished()
        if full and complete:
            self.mark_unlisted()
        self.run_record.updated += recordings_link_sessions(self.space_id)

    def refresh_unfinished(self) -> None:
        """Read again, by id, the recordings last seen unfinished that this run did not list."""
        run = self.run_record
        waiting = list(
            Recording.objects.filter(
                space_id=self.space_id, status__in=UNFINISHED, sync_state=RecordingState.SYNCED
            )
            .exclude(remote_id__in=self.listed)
            .order_by("started_at", "pk")
            .values_list("remote_id", flat=True)[:REFRESH_LIMIT]
        )
        rows: list[dict[str, Any]] = []
        gone: list[str] = []
        # Each read answers one recording, but a broken Space may answer two with one id.
        listed: set[str] = set()
        for remote_id in waiting:
            try:
                row = RECORDING.get(self.client, remote_id)
            except NotFoundError:
                gone.append(remote_id)
                continue
            except SignalWireError as exc:
                if exc.retryable:
                    raise
                self.error(f"Recording {remote_id}: {exc}")
                continue
            run.seen += 1
            rows.extend(self.readable([row], listed))
        changed = self.changed(rows)
        self.store(changed)
        run.unchanged += len(rows) - len(changed)
        if gone:
            with transaction.atomic():
                run.marked_deleted += recordings_mark_deleted(
                    Recording.objects.filter(space_id=self.space_id, remote_id__in=gone)
                )

    def store(self, rows: list[dict[str, Any]]) -> None:
        """Write one page's new and changed recordings in one short transaction."""
        if not rows:
            return
        run = self.run_record
        now = timezone.now()
        with transaction.atomic():
            existing = {
                r.remote_id: r
                for r in Recording.objects.select_related("session").filter(
                    space_id=self.space_id, remote_id__in=[row["id"] for row in rows]
                )
            }
            session_ids = {payloads.remote_text(row.get("room_session_id")) for row in rows}
            # Light session objects: enough for the link and the audit entry's owner, no N+1.
            sessions = {
                remote_id: RoomSession(
                    pk=pk, space_id=self.space_id, room_name=name, conference_id=conf,
                    room_id=room,
                )
                for remote_id, pk, name, conf, room in RoomSession.objects.filter(
                    space_id=self.space_id, remote_id__in=session_ids - {""}
                ).values_list("remote_id", "pk", "room_name", "conference_id", "room_id")
            }
            new: list[Recording] = []
            changed: list[tuple[Recording, dict[str, list[Any]]]] = []
            for row in rows:
                values = RECORDING.fields(row)
                link = sessions.get(values["remote_session_id"])
                recording = existing.get(row["id"])
                if recording is None:
                    recording = Recording(
                        space_id=self.space_id, remote_id=row["id"], last_synced_at=now,
                        **values,
                    )
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
            if any(r.pk is None for r in new):
                # bulk_create could not return the keys (the audit entries need them).
                pks = dict(
                    Recording.objects.filter(
                        space_id=self.space_id, remote_id__in=[r.remote_id for r in new]
                    )
                    .values_list("remote_id", "pk")
                )
                for r in new:
                    r.pk = pks.get(r.remote_id)
            entries: list[tuple[Any, int, Any]] = [
                (r, AuditEntry.Action.CREATE, {f: [None, getattr(r, f)] for f in AUDITED})
                for r in new
            ]
            entries += [
                (r, AuditEntry.Action.UPDATE, {k: v for k, v in diff.items() if k in NOTED})
                for r, diff in changed
            ]
            audit.bulk_record(model=Recording, entries=entries)
        run.created += len(new)
        run.updated += len(changed)
