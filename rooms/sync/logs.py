"""Mirror video logs read-only (the engine's newest-first shape), from the newest mirrored.

Each run asks only for logs made after the newest one mirrored (less an overlap, for logs
SignalWire stamps a little late; a log dated in the future is not the newest), discarded
ones included, and stops after the first page that holds a log mirrored unchanged
(raw_digest). A discarded log keeps its last values and is marked deleted remotely. A
full run (`full=True`) reads the whole listing and also marks the logs SignalWire no
longer lists at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from rooms import jsontext
from rooms.models import LogState, Space, SyncRun, VideoLog
from rooms.registry import LOG
from rooms.services.usage import log_key, refresh_billed_usage
from rooms.signalwire.client import SignalWireClient
from rooms.sync.engine import NewestFirstSync, newest_first_run
from rooms.sync.runs import Progress

# How far before the newest mirrored log an incremental read starts again.
OVERLAP = timedelta(hours=1)
FIELDS = (
    "source", "log_type", "remote_session_id", "room_name", "status", "locked", "started_at",
    "ended_at", "charge", "remote_created_at", "discarded_at", "raw", "raw_digest",
    "sync_note", "sync_state", "last_synced_at",
)
# What a discarded log's payload changes: it keeps the values it last had.
DISCARD_FIELDS = ("discarded_at", "raw_digest", "sync_state", "last_synced_at")


def logs_sync(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    full: bool = False,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Mirror a Space's video logs made since the newest one mirrored (every one if `full`)."""

    return newest_first_run(
        LogSync, SyncRun.Kind.LOGS, client=client, trigger=trigger, page_size=page_size,
        full=full, progress=progress, space=space,
    )


class LogSync(NewestFirstSync):
    """Logs newest first, from the newest mirrored one less OVERLAP."""

    mirror = LOG
    version_columns = ("raw_digest",)
    noun = "log"

    def pages(self, *, page_size: int | None, full: bool) -> Iterator[list[dict[str, Any]]]:
        # A log SignalWire dates in the future would move every later start past new logs.
        made = VideoLog.objects.filter(
            space_id=self.space_id, remote_created_at__lte=timezone.now()
        )
        newest = None if full else made.aggregate(at=Max("remote_created_at"))["at"]
        since = newest - OVERLAP if newest is not None else None
        return LOG.pages(self.client, created_after=since, page_size=page_size)

    def version(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """The digest of its canonical payload."""
        return (jsontext.digest(row),)

    def finish(self, *, full: bool, complete: bool) -> None:
        if full and complete:
            self.mark_unlisted()

    def store(self, rows: list[dict[str, Any]]) -> None:
        """Write one page's new, changed and discarded logs in one short transaction."""
        if not rows:
            return
        run = self.run_record
        now = timezone.now()
        with transaction.atomic():
            existing = {
                log.remote_id: log
                for log in VideoLog.objects.filter(
                    space_id=self.space_id, remote_id__in=[row["id"] for row in rows]
                )
            }
            new: list[VideoLog] = []
            changed: list[VideoLog] = []
            discarded: list[VideoLog] = []
            # The rollup keys this page touches: a changed log's old key and its new one.
            touched = set()
            for row in rows:
                values = LOG.fields(row)
                gone = values["discarded_at"] is not None
                values["sync_state"] = LogState.DELETED_REMOTELY if gone else LogState.SYNCED
                values["last_synced_at"] = now
                log = existing.get(row["id"])
                if log is None:
                    new.append(VideoLog(space_id=self.space_id, remote_id=row["id"], **values))
                elif gone:
                    if log.sync_state == LogState.DELETED_REMOTELY:
                        run.updated += 1  # marked already: only its discard changed
                        changed.append(log)
                    else:
                        discarded.append(log)
                    for name in DISCARD_FIELDS:
                        setattr(log, name, values[name])
                else:
                    if log.sync_state == LogState.DELETED_REMOTELY and not gone:
                        run.restored += 1
                    else:
                        run.updated += 1
                    touched.add(log_key(log))
                    for name in FIELDS:
                        setattr(log, name, values[name])
                    changed.append(log)
            VideoLog.objects.bulk_create(new)
            if changed:
                VideoLog.objects.bulk_update(changed, FIELDS)
            if discarded:
                VideoLog.objects.bulk_update(discarded, DISCARD_FIELDS)
            refresh_billed_usage([*touched, *(log_key(log) for log in [*new, *changed])])
        run.created += len(new)
        run.marked_deleted += len(discarded)
