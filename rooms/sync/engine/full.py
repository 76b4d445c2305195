"""Shape one: a whole listing reconciled with its model (new, changed, deleted, restored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from rooms import jsontext, selectors
from rooms.audit import bulk_record
from rooms.locks import Flight
from rooms.models import UNPUSHED_STATES, AuditEntry, Space, SyncRun, SyncState
from rooms.registry import NamedResource, Resource
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.payloads import (
    nul_fields,
    parse_remote_datetime,
    shown_id,
)
from rooms.sync.pages import (
    PROGRESS_EVERY,
    WRITE_CHUNK,
    collect_less,
    fewer_checkpoints,
    read_ahead,
    wide_batches,
)
from rooms.sync.runs import LOST_LOCK, Progress, SyncAborted, locked_run, note_error, save_run
from rooms.sync.writers import GONE, PageWriter, RowWrite, unfit

Action = AuditEntry.Action

# States a sync may overwrite; the others hold local changes the push must deliver first.
MARKABLE_STATES = (SyncState.SYNCED, SyncState.PUSH_FAILED)
MARK_CHUNK = 500


@dataclass
class _PagePlan:
    writes: list[RowWrite] = field(default_factory=list)
    unchanged: int = 0
    skipped_pending: int = 0


def full_listing_run(
    resource: NamedResource[Any],
    client: SignalWireClient | None,
    trigger: str,
    page_size: int | None,
    progress: Progress | None,
    space: Space | None = None,
) -> SyncRun:
    """Reconcile a resource's whole listing in one Space under its lock, with its run record."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        FullListingSync(resource, run, flight, progress).run(resource.list_pages(api, page_size))

    return locked_run(resource.sync_kind, trigger, client, work, space)


class FullListingSync:
    """Shape one: a whole listing reconciled with its mirrored model, page by page."""

    # The hand-written inserts and the payload digest compare; bench/sync_bench.py
    # --plain measures the plain Django way (bulk_create, remote_updated_at) beside them.
    fast_paths = True

    def __init__(
        self, resource: Resource[Any], run: SyncRun, flight: Flight, progress: Progress | None
    ) -> None:
        self.resource = resource
        self.model = resource.model
        self.run_record = run
        self.space_id: int = run.space.pk
        self.flight = flight
        self.progress = progress
        self.seen: set[str] = set()
        self.unidentified = 0
        self.reasons: list[str] = []
        self.saved_at = time.monotonic()
        self.awaited_creates: set[str] = set()
        # PostgreSQL's text and jsonb cannot hold U+0000; SQLite keeps it as SignalWire does.
        self.refuses_nul = connection.vendor == "postgresql"
        self.writer = PageWriter(
            resource, space_id=self.space_id, seen=self.seen, error=self.error,
            fast_inserts=self.fast_paths,
        )

    def run(self, pages: Iterator[list[dict[str, Any]]]) -> None:
        """Reconcile every page, then mark what the complete listing did not show."""
        ContentType.objects.get_for_model(self.model)  # cached now, not in a page's queries
        # Read once per run: such intents are rare and a page's queries stay constant.
        self.awaited_creates = selectors.names_awaiting_create(
            self.resource.kind, self.space_id
        )
        with wide_batches(), collect_less(), fewer_checkpoints():
            for page in read_ahead(pages):
                if self.flight.lost:
                    raise SyncAborted(LOST_LOCK)
                self.apply_page(page)
            if self.unidentified:
                self.error(
                    f"Nothing was marked deleted: {self.unidentified} listed row(s) had no id."
                )
            else:
                self.mark_unseen()

    def error(self, reason: str) -> None:
        note_error(self.run_record, self.reasons, reason)

    # --- one page ---

    def apply_page(self, page: list[dict[str, Any]]) -> None:
        """Reconcile one listed page, WRITE_CHUNK rows at a time, then report progress."""
        self.run_record.pages += 1
        for start in range(0, max(len(page), 1), WRITE_CHUNK):
            self.apply_rows(page[start : start + WRITE_CHUNK])
        if self.progress is not None:
            self.progress(self.run_record)

    def apply_rows(self, page: list[dict[str, Any]]) -> None:
        """Plan some rows' writes from two bulk reads, then write them in one transaction."""
        run = self.run_record
        now = timezone.now()
        incoming: dict[str, dict[str, Any]] = {}
        digests: dict[str, str] = {}
        canonical, digest_text = jsontext.canonical, jsontext.digest_text
        for item in page:
            remote_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(remote_id, int) and not isinstance(remote_id, bool):
                remote_id = str(remote_id)
            if not isinstance(remote_id, str) or not remote_id:
                self.unidentified += 1
                self.error(f"A listed {self.resource.kind} has no id; it was left out.")
                continue
            self.seen.add(remote_id)
            text = canonical(item)
            if self.refuses_nul and b"\\u0000" in text and (held := nul_fields(item)):
                # Seen, so never marked deleted; a mirrored row keeps its last values.
                self.error(
                    f"{shown_id(remote_id)}: not stored because {', '.join(held)} holds a NUL "
                    "character, which PostgreSQL cannot store; correct it in SignalWire."
                )
                continue
            incoming[remote_id] = item
            digests[remote_id] = digest_text(text)
        plan = self.plan(incoming, digests, now)
        if not plan.writes:
            # Nothing to write: keep the run's counts in memory, saving them now and then
            # so admin still sees a long run progress.
            self.count(plan, [])
            if time.monotonic() - self.saved_at > PROGRESS_EVERY:
                save_run(run)
                self.saved_at = time.monotonic()
        else:
            self.write_page(plan)

    def write_page(self, plan: _PagePlan) -> None:
        """Write a page's rows, audit rows and the run's counts in one transaction."""
        run = self.run_record
        try:
            with transaction.atomic():
                self.writer.write(plan.writes)
                self.count(plan, plan.writes)
                save_run(run)
        except DatabaseError:
            # A constraint refused the batch (two rows swapping names, a value the
            # database rejects): redo it row by row so only the culprits are left out.
            done = self.writer.write_one_by_one(plan.writes)
            with transaction.atomic():
                self.count(plan, done)
                save_run(run)
        self.saved_at = time.monotonic()

    def count(self, plan: _PagePlan, done: list[RowWrite]) -> None:
        run = self.run_record
        run.unchanged += plan.unchanged
        run.skipped_pending += plan.skipped_pending
        for write in done:
            setattr(run, write.counter, getattr(run, write.counter) + 1)

    def plan(
        self, incoming: dict[str, dict[str, Any]], digests: dict[str, str], now: datetime
    ) -> _PagePlan:
        """Sort the page's rows into creates, updates, restores, unchanged and skipped."""
        run = self.run_record
        run.seen += len(incoming)
        plan = _PagePlan()
        existing = self.known_rows(incoming, digests)
        changed: dict[int, dict[str, Any]] = {}
        new: list[dict[str, Any]] = []
        for remote_id, item in incoming.items():
            row = existing.get(remote_id)
            if row is not None:
                pk, state, same_text = row
                if state in UNPUSHED_STATES:
                    plan.skipped_pending += 1
                    continue
                # raw holds the whole last payload, updated_at included: equal means unchanged.
                if same_text and state != SyncState.DELETED_REMOTELY:
                    plan.unchanged += 1
                    continue
            values = self.map(remote_id, item)
            if values is None:
                continue
            # The listed payload is what raw stores (a mapping that trims it digests its own).
            raw = values.get("raw")
            values["raw_digest"] = digests[remote_id] if raw is item else jsontext.digest(raw)
            if row is None:
                new.append(values)
            else:
                changed[row[0]] = values
        if changed:
            olds = (
                self.model.objects.filter(pk__in=list(changed))
                .order_by()
                .values(*self.writer.old_columns)
            )
            for old in olds:
                values = changed[old["pk"]]
                if old["sync_state"] != SyncState.DELETED_REMOTELY and old["raw"] == values["raw"]:
                    # The same payload stored in another text form (key order, spacing).
                    plan.unchanged += 1
                    continue
                plan.writes.append(self.writer.update(old, values, now))
        if new:
            # A create whose answer SignalWire gave but the portal never stored is the
            # intent replay's to finish, under the actor who asked, not the sync's.
            awaited = self.awaited_creates
            if awaited:
                plan.skipped_pending += sum(1 for values in new if values["name"] in awaited)
                new = [values for values in new if values["name"] not in awaited]
            plan.writes.extend(self.writer.create_or_adopt(new, now))
        return plan

    def known_rows(
        self, incoming: dict[str, dict[str, Any]], digests: dict[str, str]
    ) -> dict[str, tuple[int, str, bool]]:
        """Read (pk, sync_state, looks unchanged) of the page's rows the mirror already has.

        The fast path compares each stored payload's digest (raw_digest) with the listed
        payload's, in Python; the plain way trusts remote_updated_at alone, so it also
        misses an edit SignalWire makes without bumping updated_at. bench/sync_bench.py
        --plain, 10,000 conferences, three runs on a busy 2-core machine: with the
        hand-written inserts of rooms.bulk_sql (against bulk_create) the first sync
        1.6-2.6x faster.
        """
        if self.fast_paths:
            known = rows_with_digest(self.model, list(incoming), self.space_id)
            return {
                remote_id: (pk, state, stored == digests[remote_id])
                for remote_id, (pk, state, stored) in known.items()
            }
        by_time = selectors.mirror_rows_by_remote_id(self.model, incoming, self.space_id)
        return {
            remote_id: (pk, state, updated == parse_remote_datetime(incoming[remote_id].get(
                "updated_at")))
            for remote_id, (pk, state, updated) in by_time.items()
        }

    def map(self, remote_id: str, item: dict[str, Any]) -> dict[str, Any] | None:
        """Turn a payload into field values, or count it as an error with the reason."""
        try:
            values = self.resource.fields(item)
        except Exception as exc:  # a row the mapping cannot read must not stop the page
            self.error(f"{remote_id}: not readable ({type(exc).__name__}: {exc})")
            return None
        reason = unfit(self.model, values)
        if reason is not None:
            self.error(f"{remote_id}: not stored because {reason}.")
            return None
        return values

    # --- after the listing ---

    def mark_unseen(self) -> None:
        """Mark rows the complete listing did not show as deleted remotely, in chunks."""
        known = selectors.markable_remote_ids(self.model, MARKABLE_STATES, self.space_id)
        unseen = sorted(known - self.seen)
        now = timezone.now()
        for start in range(0, len(unseen), MARK_CHUNK):
            chunk = unseen[start : start + MARK_CHUNK]
            with transaction.atomic():
                rows = list(
                    self.model.objects.select_for_update()
                    .filter(
                        space_id=self.space_id, remote_id__in=chunk,
                        sync_state__in=MARKABLE_STATES,
                    )
                    .values("pk", "space_id", "name", "display_name", "remote_id", "sync_state")
                )
                if not rows:
                    continue
                self.model.objects.filter(pk__in=[row["pk"] for row in rows]).update(
                    sync_state=SyncState.DELETED_REMOTELY, last_synced_at=now, updated_at=now
                )
                bulk_record(
                    model=self.model,
                    entries=[
                        (
                            self.model(
                                pk=row["pk"], space_id=row["space_id"], name=row["name"],
                                display_name=row["display_name"], remote_id=row["remote_id"],
                            ),
                            Action.UPDATE,
                            {GONE: [False, True]},
                        )
                        for row in rows
                    ],
                )
                self.run_record.marked_deleted += len(rows)


def rows_with_digest(
    model: type[Any], remote_ids: list[str], space_id: int
) -> dict[str, tuple[int, str, str]]:
    """Read (pk, sync_state, raw_digest) of a Space's listed rows the mirror has, by remote id.

    One query per page through the (space, remote_id) index; only the 32-character digests come
    back, so neither database serialises, sends or compares a payload. Before raw_digest,
    the page's payloads were sent as parameters and compared in the database (as text on
    SQLite, as jsonb on PostgreSQL, which parsed a thousand payloads per page).
    """
    if not remote_ids:
        return {}
    qn = connection.ops.quote_name
    meta = model._meta
    sql = (
        f"SELECT {qn(str(meta.pk.column))}, remote_id, sync_state, raw_digest "
        f"FROM {qn(meta.db_table)} WHERE space_id = %s "
        f"AND remote_id IN ({', '.join(['%s'] * len(remote_ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [space_id, *remote_ids])
        rows = cursor.fetchall()
    return {remote_id: (pk, state, stored) for pk, remote_id, state, stored in rows}


