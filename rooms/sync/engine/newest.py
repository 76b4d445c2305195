"""Shape two: a newest-first listing read until mirrored; unfinished rows read again."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from django.db import connection, models, transaction

from rooms.audit import NormalisedChanges, bulk_record
from rooms.locks import Flight
from rooms.models import AuditEntry, Space, SyncRun, SyncState
from rooms.registry import Mirror
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.payloads import listed_row_problem, shown_id
from rooms.sync.runs import LOST_LOCK, Progress, SyncAborted, locked_run, note_error

Action = AuditEntry.Action


def newest_first_run(
    sync_class: type[NewestFirstSync],
    kind: str,
    *,
    client: SignalWireClient | None,
    trigger: str,
    page_size: int | None,
    full: bool,
    progress: Progress | None,
    space: Space | None = None,
) -> SyncRun:
    """Run one newest-first sync in one Space under its kind's lock, with its run record."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        sync_class(run, flight, api, progress).run(full=full, page_size=page_size)

    return locked_run(kind, trigger, client, work, space)


class NewestFirstSync(ABC):
    """Shape two: a newest-first listing read until a page holds rows mirrored unchanged.

    A subclass gives the listing (pages), what tells a changed row (version against the
    stored version_columns), how a page is written (store) and what follows the listing
    (finish: reading unfinished rows again, marking what a full read did not list).
    """

    mirror: ClassVar[Mirror[Any]]
    version_columns: ClassVar[tuple[str, ...]]
    noun: ClassVar[str]
    """How an error names one listed row ("session", "recording")."""

    def __init__(
        self, run: SyncRun, flight: Flight, client: SignalWireClient, progress: Progress | None
    ) -> None:
        self.run_record = run
        self.space_id: int = run.space.pk
        self.flight = flight
        self.client = client
        self.progress = progress
        self.reasons: list[str] = []
        # Every id the listing showed, stored or not: a row left out is still in SignalWire.
        self.listed: set[str] = set()
        # PostgreSQL's text and jsonb cannot hold U+0000; SQLite keeps it as SignalWire does.
        self.refuses_nul = connection.vendor == "postgresql"

    @abstractmethod
    def pages(self, *, page_size: int | None, full: bool) -> Iterator[list[dict[str, Any]]]:
        """The listing, newest first."""

    @abstractmethod
    def version(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """What tells a changed row from an unchanged one, as version_columns store it."""

    @abstractmethod
    def store(self, rows: list[dict[str, Any]]) -> None:
        """Write new and changed rows (short transactions, bounded queries)."""

    @abstractmethod
    def finish(self, *, full: bool, complete: bool) -> None:
        """Work after the listing; `complete`: it was read to its end."""

    def error(self, reason: str) -> None:
        note_error(self.run_record, self.reasons, reason)

    def run(self, *, full: bool = False, page_size: int | None = None) -> None:
        """Read pages until one holds a row mirrored unchanged (to the end if `full`)."""
        run = self.run_record
        complete = True
        for page in self.pages(page_size=page_size, full=full):
            if self.flight.lost:
                raise SyncAborted(LOST_LOCK)
            run.pages += 1
            run.seen += len(page)
            self.listed.update(
                row["id"] for row in page
                if isinstance(row, dict) and isinstance(row.get("id"), str)
            )
            rows = self.readable(page, set())
            changed = self.changed(rows)
            self.store(changed)
            run.unchanged += len(rows) - len(changed)
            if self.progress is not None:
                self.progress(run)
            if len(changed) < len(rows) and not full:
                complete = False
                break  # older rows are mirrored already
        self.finish(full=full, complete=complete)

    def readable(
        self, page: Iterable[Any], listed: set[str], *, noun: str | None = None
    ) -> list[dict[str, Any]]:
        """Keep the rows the database can store, each id once; count the others as errors.

        listed: ids already kept from this read (a repeat is left out); updated in place.
        """
        noun = noun or self.noun
        rows = []
        for row in page:
            if not (isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"]):
                self.error(f"SignalWire listed a {noun} without an id; skipped it.")
                continue
            shown = shown_id(row["id"])
            if row["id"] in listed:
                self.error(f"{noun.capitalize()} {shown}: its id is listed twice; "
                           "the repeat was left out.")
                continue
            problem = listed_row_problem(row, refuses_nul=self.refuses_nul)
            if problem is not None:
                self.error(f"{noun.capitalize()} {shown}: not stored because {problem}.")
                continue
            listed.add(row["id"])
            rows.append(row)
        return rows

    def stored_versions(self, rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
        """The stored version of each listed row already mirrored (one query)."""
        stored = self.mirror.model._default_manager.filter(
            space_id=self.space_id, remote_id__in=[row["id"] for row in rows]
        ).values_list("remote_id", *self.version_columns)
        return {remote_id: tuple(version) for remote_id, *version in stored}

    def changed(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows that are new or differ from their mirrored version."""
        known = self.stored_versions(rows)
        return [row for row in rows if known.get(row["id"]) != self.version(row)]

    def mark_unlisted(self) -> None:
        """After a complete listing: rows SignalWire no longer lists are deleted there."""
        missing = self.mirror.model._default_manager.filter(
            space_id=self.space_id, sync_state=SyncState.SYNCED
        ).exclude(remote_id__in=self.listed)
        with transaction.atomic():
            self.run_record.marked_deleted += mark_deleted(self.mirror, missing)


def mark_deleted(mirror: Mirror[Any], rows: models.QuerySet[Any]) -> int:
    """Mark rows deleted remotely (kept, filterable), audited if the mirror is; in a transaction."""
    marked = list(mirror.audited_rows(rows) if mirror.audited else rows)
    if not marked:
        return 0
    gone = str(SyncState.DELETED_REMOTELY)
    mirror.model._default_manager.filter(pk__in=[r.pk for r in marked]).update(sync_state=gone)
    if mirror.audited:
        bulk_record(
            model=mirror.model,
            entries=[
                (r, Action.UPDATE, NormalisedChanges(sync_state=[r.sync_state, gone]))
                for r in marked
            ],
        )
    return len(marked)


