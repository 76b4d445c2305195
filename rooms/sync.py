"""Keep the local mirror in step with the SignalWire Space: conferences, rooms and tokens.

Each run holds a single-flight Redis lock, records a SyncRun and reconciles page by page
as the client streams them, with a constant number of bulk queries per page. The sync
writes only with bulk_create, bulk_update and queryset.update, which fire no model
signals, so nothing it writes is pushed back to SignalWire.
"""

from __future__ import annotations

import functools
import gc
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.timesince import timesince

from rooms import jsontext
from rooms.audit import (
    MIRROR_BOOKKEEPING,
    NormalisedChanges,
    audit_context,
    bulk_record,
    json_value,
)
from rooms.bulk_sql import insert_rows
from rooms.locks import Flight, single_flight
from rooms.models import (
    UNPUSHED_STATES,
    AuditEntry,
    Conference,
    ConferenceToken,
    Room,
    SyncRun,
    SyncState,
)
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient, build_client
from rooms.signalwire.errors import NotFoundError

logger = logging.getLogger("rooms.sync")

Kind = SyncRun.Kind
Outcome = SyncRun.Outcome
Action = AuditEntry.Action
Progress = Callable[[SyncRun], None]

# States a sync may overwrite; the others hold local changes the push must deliver first.
MARKABLE_STATES = (SyncState.SYNCED, SyncState.PUSH_FAILED)
# Row-level reasons kept on a run; the count says how many there were in all.
MAX_REASONS = 20
MARK_CHUNK = 500
TOKEN_BATCH = 100
# Rows of a listed page reconciled together. The API's pages hold at most 1,000 rows, but
# a Space may send any number; a chunk's reads bind at most two variables per row (2,000
# in all, inside SQLite's 32,766 and PostgreSQL's 65,535), its inserts one row at a time,
# and bulk_update splits itself by the database's limit.
WRITE_CHUNK = 1000
# Seconds between saves of a run's counts while its pages need no writes.
PROGRESS_EVERY = 5.0
COUNTERS = (
    "pages",
    "seen",
    "created",
    "updated",
    "unchanged",
    "marked_deleted",
    "restored",
    "skipped_pending",
    "errors",
)
# Top-level keys of a payload that the raw diff in audit rows leaves out (always changing).
RAW_NOISE = frozenset({"id", "created_at", "updated_at"})
# The audit trail leaves sync_state out as bookkeeping; a room vanishing from SignalWire
# and coming back is worth a line, so it is recorded under this name instead.
GONE = "deleted_in_signalwire"


class SyncAborted(Exception):
    """The run cannot go on safely (it lost its lock); it is recorded as failed."""


@dataclass(frozen=True)
class _Mirror:
    """How one kind of remote object maps onto its model and how to list it."""

    kind: str
    model: type[models.Model]
    to_fields: Callable[[dict], dict]
    managed: tuple[str, ...]
    list_pages: Callable[[SignalWireClient, int | None], Iterator[list[dict]]]


MIRRORS = {
    Kind.CONFERENCES: _Mirror(
        Kind.CONFERENCES,
        Conference,
        payloads.conference_fields,
        payloads.CONFERENCE_MODEL_FIELDS,
        lambda client, size: client.iter_conference_pages(size),
    ),
    Kind.ROOMS: _Mirror(
        Kind.ROOMS,
        Room,
        payloads.room_fields,
        payloads.ROOM_MODEL_FIELDS,
        lambda client, size: client.iter_room_pages(size),
    ),
}


# --- public services --------------------------------------------------------------------


def sync_conferences(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Reconcile local conferences with the Space's; return the run (skipped if busy)."""
    return _mirror_run(MIRRORS[Kind.CONFERENCES], client, trigger, page_size, progress)


def sync_rooms(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Reconcile local rooms with the Space's; return the run (skipped if busy)."""
    return _mirror_run(MIRRORS[Kind.ROOMS], client, trigger, page_size, progress)


def sync_conference_tokens(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    missing_only: bool = False,
    progress: Progress | None = None,
) -> SyncRun:
    """Mirror the moderator and guest tokens of conferences (only those without any, if asked)."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        _TokenSync(run, flight, api, progress).run(missing_only=missing_only)

    return _locked_run(Kind.TOKENS, trigger, client, work)


def latest_sync_run(kind: str) -> SyncRun | None:
    """Return the newest run of a kind that did some work (skipped runs say nothing new)."""
    return SyncRun.objects.filter(kind=kind).exclude(outcome=Outcome.SKIPPED).first()


def latest_sync_summary(kind: str) -> str:
    """Say in one line how the latest sync of a kind went, for admin pages to show."""
    run = latest_sync_run(kind)
    if run is None:
        return "Not synced with SignalWire yet."
    ago = timesince(run.started_at)
    if run.outcome == Outcome.RUNNING:
        return f"A sync is running (started {ago} ago, {run.seen} seen so far)."
    if run.outcome == Outcome.FAILED:
        reason = (run.error or "unknown error").splitlines()[0][:200]
        return f"Last sync {ago} ago failed: {reason}"
    text = (
        f"Last synced {ago} ago: {run.seen} seen, {run.created} new, {run.updated} updated, "
        f"{run.marked_deleted} deleted remotely, {run.restored} restored"
    )
    if run.skipped_pending:
        text += f", {run.skipped_pending} waiting to push"
    if run.errors:
        text += f", {run.errors} not readable"
    return text + "."


# --- the run frame: lock, record, audit context ------------------------------------------


def _locked_run(
    kind: str,
    trigger: str,
    client: SignalWireClient | None,
    work: Callable[[SyncRun, Flight, SignalWireClient], None],
) -> SyncRun:
    """Run `work` under the kind's lock with a SyncRun record; failures are recorded, raised."""
    with single_flight(f"sync:{kind}") as flight:
        if not flight.acquired:
            now = timezone.now()
            logger.info("%s sync skipped: another run holds the lock", kind)
            return SyncRun.objects.create(
                kind=kind,
                trigger=trigger,
                outcome=Outcome.SKIPPED,
                finished_at=now,
                error="Another run of this sync held the lock.",
            )
        # Holding the lock means no other run of this kind is alive: any left "running"
        # belonged to a worker that died.
        stale = list(
            SyncRun.objects.filter(kind=kind, outcome=Outcome.RUNNING).values_list("pk", flat=True)
        )
        if stale:
            error = "Interrupted: the worker stopped before the run finished."
            if flight.took_over is not None:
                error = (
                    f"Interrupted: its worker ({flight.took_over}) stopped before the run "
                    "finished; the next run took its lock over at once."
                )
            SyncRun.objects.filter(pk__in=stale).update(
                outcome=Outcome.FAILED, finished_at=timezone.now(), error=error
            )
        run = SyncRun.objects.create(kind=kind, trigger=trigger)
        with audit_context(source=AuditEntry.Source.SYNC, actor_label="sync",
                           correlation_id=str(run.run_id)):
            try:
                api = client if client is not None else build_client(profile="background")
                try:
                    work(run, flight, api)
                finally:
                    if client is None:
                        api.close()
            except BaseException as exc:
                run.outcome = Outcome.FAILED
                run.error = _join_error(str(exc) or type(exc).__name__, run.error)
                run.finished_at = timezone.now()
                _save_run(run)
                logger.warning("%s sync %s failed: %s", kind, run.run_id, exc)
                raise
        run.outcome = Outcome.SUCCEEDED
        run.finished_at = timezone.now()
        _save_run(run)
        logger.info(
            "%s sync %s done: %s", kind, run.run_id,
            ", ".join(f"{name}={getattr(run, name)}" for name in COUNTERS),
        )
        return run


def _save_run(run: SyncRun) -> None:
    """Write a run's counts and outcome, whatever state the connection's transaction is in."""
    SyncRun.objects.filter(pk=run.pk).update(
        outcome=run.outcome,
        finished_at=run.finished_at,
        error=run.error,
        **{name: getattr(run, name) for name in COUNTERS},
    )


def _join_error(first: str, rest: str) -> str:
    return f"{first}\n{rest}" if rest else first


def _note_error(run: SyncRun, reasons: list[str], reason: str) -> None:
    """Count a row that could not be mirrored and keep the first few reasons on the run."""
    run.errors += 1
    if len(reasons) < MAX_REASONS:
        reasons.append(reason)
    more = run.errors - len(reasons)
    run.error = "\n".join(reasons) + (f"\n… and {more} more" if more > 0 else "")


_DATETIME = models.DateTimeField()


def _plain(value: Any) -> Any:
    """Make a field value JSON-safe for an audit row, stored as auditlog stores it."""
    if isinstance(value, datetime):
        return json_value(_DATETIME, value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- reading ahead: fetch the next page while this one is written -----------------------


def _read_ahead(pages: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """Yield the pages of `pages`, fetching the next one in a thread meanwhile.

    HTTP waits and database writes then overlap; at most three pages are held at once.
    """
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for page in pages:
                if not hand_over(("page", page)):
                    return
            hand_over(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            hand_over(("error", exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="sync-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            what, value = slot.get()
            if what == "page":
                yield value
            elif what == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join(timeout=60)


@contextmanager
def _wide_batches() -> Iterator[None]:
    """Let bulk queries on SQLite use its real variable limit, not Django 5.2's 999.

    Django 5.2 assumes SQLite's old 999-variable default and splits a 1,000-row page into
    dozens of INSERTs; SQLite 3.32+ allows 32,766 (Django 6.0 reads the real limit too).
    """
    features = connection.features
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    had = "max_query_params" in vars(features)
    previous = features.max_query_params
    features.max_query_params = max(previous, limit)
    try:
        yield
    finally:
        if had:
            features.max_query_params = previous
        else:
            del features.max_query_params


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Keep Python's cycle collector from rescanning the whole process on every page.

    A page of a thousand payloads allocates tens of thousands of dicts and lists that
    reference counting frees (they hold no cycles); with the default thresholds the
    collector ran often enough to cost a tenth of a large sync. The objects alive before
    the run are frozen out of its scans and the youngest generation is collected less
    often, both undone when the run ends.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# --- conferences and rooms --------------------------------------------------------------


@functools.cache
def _checks(model: type[models.Model]) -> tuple[tuple[tuple[str, int], ...], tuple]:
    """Length limits of text columns and ranges of integer columns, to refuse unfit rows."""
    lengths = tuple(
        (f.name, f.max_length)
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField) and f.max_length
    )
    ranges = []
    for f in model._meta.concrete_fields:
        if isinstance(f, models.PositiveSmallIntegerField):
            ranges.append((f.name, 0, 32767))
        elif isinstance(f, models.PositiveIntegerField):
            ranges.append((f.name, 0, 2147483647))
    return lengths, tuple(ranges)


def _unfit(model: type[models.Model], values: dict) -> str | None:
    """Say why mapped values cannot be stored in the model's columns, or None if they can."""
    if not values.get("name"):
        return "it has no name"
    lengths, ranges = _checks(model)
    for name, limit in lengths:
        value = values.get(name)
        if value is not None and len(value) > limit:
            return f"{name} is longer than {limit} characters"
    for name, low, high in ranges:
        value = values.get(name)
        if value is not None and not low <= value <= high:
            return f"{name} {value} is outside {low}..{high}"
    return None


@dataclass
class _Write:
    """One planned row write of a page, applied in bulk with the others.

    A create carries its column values in `row` (inserted as plain values); an update
    carries a model instance in `obj` and the names of the fields it changes.
    """

    create: bool
    obj: Any
    fields: set[str]
    counter: str
    audit: tuple[int, dict] | None
    row: dict | None = None


class _Created:
    """What the audit trail needs of a row the sync inserted: its key, name and remote id."""

    __slots__ = ("pk", "name", "display_name", "remote_id")

    def __init__(self, row: dict) -> None:
        self.pk = None
        self.name = row["name"]
        self.display_name = row.get("display_name") or ""
        self.remote_id = row["remote_id"]

    def __str__(self) -> str:
        return self.display_name or self.name

    def get_additional_data(self) -> dict:
        return {"remote_id": self.remote_id, "name": self.name}


@dataclass
class _PagePlan:
    writes: list[_Write] = field(default_factory=list)
    unchanged: int = 0
    skipped_pending: int = 0


def _mirror_run(
    mirror: _Mirror,
    client: SignalWireClient | None,
    trigger: str,
    page_size: int | None,
    progress: Progress | None,
) -> SyncRun:
    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        _MirrorSync(mirror, run, flight, progress).run(mirror.list_pages(api, page_size))

    return _locked_run(mirror.kind, trigger, client, work)


class _MirrorSync:
    """One reconciliation of a model with a remote listing, page by page."""

    def __init__(
        self, mirror: _Mirror, run: SyncRun, flight: Flight, progress: Progress | None
    ) -> None:
        self.mirror = mirror
        self.model = mirror.model
        self.run_record = run
        self.flight = flight
        self.progress = progress
        self.seen: set[str] = set()
        self.unidentified = 0
        self.reasons: list[str] = []
        self.saved_at = time.monotonic()
        # Columns read for rows that changed: enough to diff, audit and rewrite them.
        self.old_columns = (
            "pk", "remote_id", "remote_created_at", "remote_updated_at", "raw",
            "sync_state", "last_error", "display_name", *mirror.managed,
        )
        self.model_columns = frozenset(f.name for f in self.model._meta.concrete_fields)
        self.audited = tuple(f for f in mirror.managed if f not in MIRROR_BOOKKEEPING)
        self.audited_datetimes = tuple(
            f.name for f in self.model._meta.concrete_fields
            if isinstance(f, models.DateTimeField) and f.name in self.audited
        )

    def run(self, pages: Iterator[list[dict]]) -> None:
        """Reconcile every page, then mark what the complete listing did not show."""
        ContentType.objects.get_for_model(self.model)  # cached now, not in a page's queries
        with _wide_batches(), _fewer_collections():
            for page in _read_ahead(pages):
                if self.flight.lost:
                    raise SyncAborted("Lost the sync lock; stopped so two runs never overlap.")
                self.apply_page(page)
            if self.unidentified:
                self.error(
                    f"Nothing was marked deleted: {self.unidentified} listed row(s) had no id."
                )
            else:
                self.mark_unseen()

    def error(self, reason: str) -> None:
        _note_error(self.run_record, self.reasons, reason)

    # --- one page ---

    def apply_page(self, page: list[dict]) -> None:
        """Reconcile one listed page, WRITE_CHUNK rows at a time, then report progress."""
        self.run_record.pages += 1
        for start in range(0, max(len(page), 1), WRITE_CHUNK):
            self.apply_rows(page[start : start + WRITE_CHUNK])
        if self.progress is not None:
            self.progress(self.run_record)

    def apply_rows(self, page: list[dict]) -> None:
        """Plan some rows' writes from two bulk reads, then write them in one transaction."""
        run = self.run_record
        now = timezone.now()
        incoming: dict[str, dict] = {}
        for item in page:
            remote_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(remote_id, int) and not isinstance(remote_id, bool):
                remote_id = str(remote_id)
            if not isinstance(remote_id, str) or not remote_id:
                self.unidentified += 1
                self.error(f"A listed {self.mirror.kind[:-1]} has no id; it was left out.")
                continue
            self.seen.add(remote_id)
            incoming[remote_id] = item
        plan = self.plan(incoming, now)
        if not plan.writes:
            # Nothing to write: keep the run's counts in memory, saving them now and then
            # so admin still sees a long run progress.
            self.count(plan, [])
            if time.monotonic() - self.saved_at > PROGRESS_EVERY:
                _save_run(run)
                self.saved_at = time.monotonic()
        else:
            self.write_page(plan)

    def write_page(self, plan: _PagePlan) -> None:
        """Write a page's rows, audit rows and the run's counts in one transaction."""
        run = self.run_record
        try:
            with transaction.atomic():
                self.write(plan.writes)
                self.count(plan, plan.writes)
                _save_run(run)
        except DatabaseError:
            # A constraint refused the batch (two rows swapping names, a value the
            # database rejects): redo it row by row so only the culprits are left out.
            done = self.write_one_by_one(plan.writes)
            with transaction.atomic():
                self.count(plan, done)
                _save_run(run)
        self.saved_at = time.monotonic()

    def count(self, plan: _PagePlan, done: list[_Write]) -> None:
        run = self.run_record
        run.unchanged += plan.unchanged
        run.skipped_pending += plan.skipped_pending
        for write in done:
            setattr(run, write.counter, getattr(run, write.counter) + 1)

    def plan(self, incoming: dict[str, dict], now: datetime) -> _PagePlan:
        """Sort the page's rows into creates, updates, restores, unchanged and skipped."""
        run = self.run_record
        run.seen += len(incoming)
        plan = _PagePlan()
        existing = self.existing_rows(incoming)
        changed: dict[int, dict] = {}
        new: list[dict] = []
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
            if row is None:
                new.append(values)
            else:
                changed[row[0]] = values
        if changed:
            olds = (
                self.model.objects.filter(pk__in=list(changed))
                .order_by()
                .values(*self.old_columns)
            )
            for old in olds:
                values = changed[old["pk"]]
                if old["sync_state"] != SyncState.DELETED_REMOTELY and old["raw"] == values["raw"]:
                    # The same payload stored in another text form (key order, spacing).
                    plan.unchanged += 1
                    continue
                plan.writes.append(self.update(old, values, now))
        if new:
            plan.writes.extend(self.create_or_adopt(new, now))
        return plan

    def existing_rows(self, incoming: dict[str, dict]) -> dict[str, tuple[int, str, bool]]:
        """Read (pk, sync_state, payload text equal) of the page's known rows in one query.

        On an unchanged page this read is the sync's whole cost, so the database compares
        each stored payload with the listed one (serialised in the canonical form, see
        rooms.jsontext) and sends back a flag instead of the payload; a row whose text
        differs is compared again by value before it counts as changed.
        """
        if not incoming:
            return {}
        qn = connection.ops.quote_name
        meta = self.model._meta
        listed = "page.column2"
        if connection.vendor == "postgresql":
            listed = f"CAST({listed} AS jsonb)"
        sql = (
            f"SELECT c.{qn(meta.pk.column)}, c.remote_id, c.sync_state, c.raw = {listed} "
            f"FROM (VALUES {', '.join(['(%s, %s)'] * len(incoming))}) AS page "
            f"JOIN {qn(meta.db_table)} AS c ON c.remote_id = page.column1"
        )
        dumps = jsontext.dumps
        params = [part for remote_id, item in incoming.items() for part in (remote_id, dumps(item))]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return {remote_id: (pk, state, bool(same)) for pk, remote_id, state, same in rows}

    def map(self, remote_id: str, item: dict) -> dict | None:
        """Turn a payload into field values, or count it as an error with the reason."""
        try:
            values = self.mirror.to_fields(item)
        except Exception as exc:  # a row the mapping cannot read must not stop the page
            self.error(f"{remote_id}: not readable ({type(exc).__name__}: {exc})")
            return None
        reason = _unfit(self.model, values)
        if reason is not None:
            self.error(f"{remote_id}: not stored because {reason}.")
            return None
        return values

    def create_or_adopt(self, new: list[dict], now: datetime) -> list[_Write]:
        """Create new rows, or link a local row that already holds the name."""
        holders = {
            old["name"]: old
            for old in self.model.objects.filter(name__in=[values["name"] for values in new])
            .order_by()
            .values(*self.old_columns)
        }
        writes: list[_Write] = []
        names: set[str] = set()
        for values in new:
            name = values["name"]
            if name in names:
                self.error(f"{values['remote_id']}: the name {name!r} is listed twice.")
                continue
            names.add(name)
            holder = holders.get(name)
            if holder is None:
                writes.append(self.create(values, now))
                continue
            old_id = holder["remote_id"]
            if holder["sync_state"] in UNPUSHED_STATES:
                if old_id is None:
                    # A create that landed before its answer came back: link it and let
                    # the pending push deliver the local values as an update.
                    writes.append(self.link(holder, values, now))
                else:
                    self.error(
                        f"{values['remote_id']}: the name {name!r} belongs to a local row "
                        f"with unpushed changes (SignalWire id {old_id})."
                    )
                continue
            if old_id is None or old_id not in self.seen:
                # Names are unique in SignalWire, so the holder's remote object is gone or
                # renamed; the new object takes over the row (the audit shows the relink).
                writes.append(self.update(holder, values, now))
                continue
            self.error(
                f"{values['remote_id']}: the name {name!r} is already used by SignalWire id "
                f"{old_id}."
            )
        return writes

    def create(self, values: dict, now: datetime) -> _Write:
        row = {
            **values,
            "sync_state": SyncState.SYNCED,
            "last_synced_at": now,
            "created_at": now,
            "updated_at": now,
        }
        changes = NormalisedChanges(
            {f: [None, v] for f in self.audited if (v := values.get(f)) is not None}
        )
        for f in self.audited_datetimes:
            if f in changes:
                changes[f][1] = _plain(changes[f][1])
        return _Write(True, _Created(row), set(), "created", (Action.CREATE, changes), row)

    def link(self, holder: dict, values: dict, now: datetime) -> _Write:
        """Plan linking a pending local row to its remote object, keeping its local values."""
        linked = {f: values[f] for f in payloads.MIRROR_FIELDS}
        # Every column gets the holder's own value, since a page's bulk_update writes the
        # union of the fields its rows changed.
        merged = {k: v for k, v in holder.items() if k in self.model_columns or k == "pk"}
        merged.update(linked, last_synced_at=now, updated_at=now)
        changes = {"remote_id": [None, values["remote_id"]]}
        return _Write(
            False,
            self.model(**merged),
            {*linked, "last_synced_at", "updated_at"},
            "updated",
            (Action.UPDATE, changes),
        )

    def update(self, old: dict, values: dict, now: datetime) -> _Write:
        """Plan rewriting a row with the remote values; restore it if it was marked deleted."""
        fields = {f for f, v in values.items() if f != "raw" and old.get(f) != v}
        fields.add("raw")
        changes = {
            f: [_plain(old.get(f)), _plain(values[f])]
            for f in fields
            if f in self.audited or f == "remote_id"
        }
        restored = old["sync_state"] == SyncState.DELETED_REMOTELY
        if old["sync_state"] != SyncState.SYNCED:
            fields.add("sync_state")
        if restored:
            changes[GONE] = [True, False]
        if old["last_error"]:
            fields.add("last_error")
        if not changes:
            changes = self.raw_changes(old.get("raw"), values["raw"])
        merged = {k: v for k, v in old.items() if k in self.model_columns or k == "pk"}
        merged.update(values)
        merged.update(sync_state=SyncState.SYNCED, last_error="", last_synced_at=now)
        merged["updated_at"] = now
        obj = self.model(**merged)
        fields.update(("last_synced_at", "updated_at"))
        audit = (Action.UPDATE, changes) if changes else None
        return _Write(False, obj, fields, "restored" if restored else "updated", audit)

    @staticmethod
    def raw_changes(old_raw: Any, new_raw: dict) -> dict:
        """Diff fields the portal does not map (kept only in raw), for the audit row."""
        old_raw = old_raw if isinstance(old_raw, dict) else {}
        return {
            f"raw.{key}": [_plain(old_raw.get(key)), _plain(new_raw.get(key))]
            for key in sorted(old_raw.keys() | new_raw.keys())
            if key not in RAW_NOISE and old_raw.get(key) != new_raw.get(key)
        }

    def write(self, writes: list[_Write]) -> None:
        """Apply planned writes in bulk: one INSERT, one UPDATE and one audit INSERT."""
        creates = [w for w in writes if w.create]
        updates = [w for w in writes if not w.create]
        if creates:
            insert_rows(self.model, [w.row for w in creates])
            pks = dict(
                self.model.objects.filter(remote_id__in=[w.obj.remote_id for w in creates])
                .order_by()
                .values_list("remote_id", "pk")
            )
            for w in creates:
                w.obj.pk = pks[w.obj.remote_id]
        if updates:
            fields = sorted(set().union(*(w.fields for w in updates)))
            self.model.objects.bulk_update([w.obj for w in updates], fields)
        entries = [(w.obj, w.audit[0], w.audit[1]) for w in writes if w.audit is not None]
        if entries:
            bulk_record(model=self.model, entries=entries)

    def write_one_by_one(self, writes: list[_Write]) -> list[_Write]:
        """Apply writes each in its own savepoint; count the ones the database refuses."""
        done = []
        with transaction.atomic():
            for write in writes:
                try:
                    with transaction.atomic():
                        self.write([write])
                except DatabaseError as exc:
                    remote_id = write.obj.remote_id or "?"
                    self.error(f"{remote_id}: the database refused it ({exc}).")
                    continue
                done.append(write)
        return done

    # --- after the listing ---

    def mark_unseen(self) -> None:
        """Mark rows the complete listing did not show as deleted remotely, in chunks."""
        candidates = (
            self.model.objects.filter(remote_id__isnull=False, sync_state__in=MARKABLE_STATES)
            .order_by()
            .values_list("remote_id")
        )
        # This walks every mirrored row on every run: plain rows from the covering
        # (sync_state, remote_id) index and set arithmetic, no model instances.
        sql, params = candidates.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            known = {remote_id for (remote_id,) in cursor.fetchall()}
        unseen = sorted(known - self.seen)
        now = timezone.now()
        for start in range(0, len(unseen), MARK_CHUNK):
            chunk = unseen[start : start + MARK_CHUNK]
            with transaction.atomic():
                rows = list(
                    self.model.objects.select_for_update()
                    .filter(remote_id__in=chunk, sync_state__in=MARKABLE_STATES)
                    .values("pk", "name", "display_name", "remote_id", "sync_state")
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
                                pk=row["pk"], name=row["name"],
                                display_name=row["display_name"], remote_id=row["remote_id"],
                            ),
                            Action.UPDATE,
                            {GONE: [False, True]},
                        )
                        for row in rows
                    ],
                )
                self.run_record.marked_deleted += len(rows)


# --- conference tokens ------------------------------------------------------------------


class _TokenSync:
    """Mirror conference tokens, a batch of conferences at a time."""

    def __init__(
        self, run: SyncRun, flight: Flight, client: SignalWireClient, progress: Progress | None
    ) -> None:
        self.run_record = run
        self.flight = flight
        self.client = client
        self.progress = progress
        self.reasons: list[str] = []

    def run(self, *, missing_only: bool) -> None:
        """Walk the live conferences in pk order and mirror each one's tokens."""
        ContentType.objects.get_for_model(ConferenceToken)
        conferences = Conference.objects.filter(remote_id__isnull=False).exclude(
            sync_state__in=(SyncState.DELETED_REMOTELY, SyncState.PENDING_DELETE)
        )
        if missing_only:
            conferences = conferences.filter(
                ~Exists(ConferenceToken.objects.filter(conference=OuterRef("pk")))
            )
        last_pk = 0
        with _wide_batches():
            while True:
                batch = list(
                    conferences.filter(pk__gt=last_pk)
                    .order_by("pk")
                    .values_list("pk", "remote_id", "name")[:TOKEN_BATCH]
                )
                if not batch:
                    break
                last_pk = batch[-1][0]
                fetched: dict[int, list[dict]] = {}
                for pk, remote_id, name in batch:
                    if self.flight.lost:
                        raise SyncAborted("Lost the sync lock; stopped so two runs never overlap.")
                    try:
                        fetched[pk] = self.client.list_conference_tokens(remote_id)
                    except NotFoundError:
                        self.error(f"{name}: SignalWire no longer has conference {remote_id}.")
                with transaction.atomic():
                    self.write({pk: name for pk, _, name in batch}, fetched)
                    self.run_record.pages += 1
                    _save_run(self.run_record)
                if self.progress is not None:
                    self.progress(self.run_record)

    def error(self, reason: str) -> None:
        _note_error(self.run_record, self.reasons, reason)

    def write(self, names: dict[int, str], fetched: dict[int, list[dict]]) -> None:
        """Upsert the fetched tokens and drop local ones SignalWire no longer lists."""
        run = self.run_record
        now = timezone.now()
        incoming: dict[str, tuple[int, dict]] = {}
        for conference_pk, tokens in fetched.items():
            for token in tokens:
                try:
                    values = payloads.token_fields(token)
                except Exception as exc:  # one odd token must not stop the batch
                    self.error(f"A token of {names[conference_pk]} is not readable ({exc}).")
                    continue
                if len(values["remote_id"]) > 64 or len(values["token"]) > 255:
                    self.error(f"Token {values['remote_id'][:64]} is too long to store.")
                    continue
                incoming[values["remote_id"]] = (conference_pk, values)
        run.seen += len(incoming)
        existing = {
            token.remote_id: token
            for token in ConferenceToken.objects.filter(conference_id__in=list(fetched))
        }
        # Tokens that moved from another conference; a Space may list any number of them.
        moved = [remote_id for remote_id in incoming if remote_id not in existing]
        for start in range(0, len(moved), WRITE_CHUNK):
            for token in ConferenceToken.objects.filter(
                remote_id__in=moved[start : start + WRITE_CHUNK]
            ):
                existing[token.remote_id] = token
        creates, updates, entries = [], [], []
        for remote_id, (conference_pk, values) in incoming.items():
            conference = Conference(pk=conference_pk, name=names[conference_pk])
            token = existing.pop(remote_id, None)
            if token is None:
                token = ConferenceToken(conference=conference, last_synced_at=now, **values)
                creates.append(token)
                entries.append((token, Action.CREATE, None))
                continue
            changes: dict[str, list] = {}
            for name in ("name", "scopes"):
                if getattr(token, name) != values[name]:
                    changes[name] = [getattr(token, name), values[name]]
            if token.token != values["token"]:
                # bulk_record masks both values; they never reach the audit table.
                changes["token"] = [token.token, values["token"]]
                token.rotated_at = now
            if token.conference_id != conference_pk:
                changes["conference"] = [token.conference_id, conference_pk]
            if not changes:
                run.unchanged += 1
                continue
            for name, value in values.items():
                setattr(token, name, value)
            token.conference = conference
            token.last_synced_at = now
            updates.append(token)
            entries.append((token, Action.UPDATE, changes))
        if creates:
            ConferenceToken.objects.bulk_create(creates, batch_size=WRITE_CHUNK)
        if updates:
            ConferenceToken.objects.bulk_update(
                updates,
                ["conference", "name", "token", "scopes", "last_synced_at", "rotated_at"],
                batch_size=WRITE_CHUNK,
            )
        if entries:
            bulk_record(model=ConferenceToken, entries=entries)
        stale = [t.pk for t in existing.values() if t.conference_id in fetched]
        if stale:
            # Tokens are not pushed anywhere, so auditlog's own delete entries (masked)
            # are the record here.
            for start in range(0, len(stale), WRITE_CHUNK):
                ConferenceToken.objects.filter(pk__in=stale[start : start + WRITE_CHUNK]).delete()
        run.created += len(creates)
        run.updated += len(updates)
        run.marked_deleted += len(stale)
