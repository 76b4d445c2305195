"""Stream sync: list each conference's and room's streams and reconcile them, a batch at a time.

Streams have no Space-wide listing: each owner's is read (with no transaction open), then
a batch of owners is written in one transaction with a constant number of bulk queries.
A stream an owner no longer lists is marked deleted remotely (kept, shown, filterable);
an owner whose listing failed changes no deletion state. Rows with unpushed local edits
are left to the push, and a listed stream that a pending create of the same owner and url
is waiting for is left to that push to adopt, so the sync never makes it twice.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from rooms.audit import NormalisedChanges, bulk_record, normalise_changes
from rooms.locks import Flight
from rooms.models import (
    UNPUSHED_STATES,
    AuditEntry,
    Conference,
    Room,
    Stream,
    SyncRun,
    SyncState,
)
from rooms.registry import STREAM
from rooms.signalwire import payloads, schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError
from rooms.stream_urls import mask_stream_url
from rooms.sync.pages import WRITE_CHUNK, wide_batches
from rooms.sync.runs import Progress, SyncAborted, locked_run, note_error, save_run
from rooms.sync.writers import GONE

Action = AuditEntry.Action
# Owners whose listings one transaction reconciles.
OWNER_BATCH = 100
# Fields a listing may change; a change of any is one audit entry (the url masked).
TRACKED = ("url", "stream_type", "width", "height", "fps")
WRITTEN = (
    *TRACKED, "conference", "room", "remote_created_at", "remote_updated_at", "raw",
    "sync_state", "last_synced_at", "last_error", "updated_at",
)
MARKABLE_STATES = (SyncState.SYNCED, SyncState.PUSH_FAILED)
OWNERS: tuple[tuple[str, type[Conference] | type[Room]], ...] = (
    (Stream.OwnerKind.CONFERENCE, Conference),
    (Stream.OwnerKind.ROOM, Room),
)


def sync_streams(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    owner: Conference | Room | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    """Reconcile the streams of every conference and room (or of one owner) with the Space's."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        _StreamSync(run, flight, api, progress).run(owner)

    return locked_run(SyncRun.Kind.STREAMS, trigger, client, work)


def _changes(old: Stream, values: dict[str, Any]) -> dict[str, list[Any]]:
    """The audit diff of a listed stream against its row: url masked, like auditlog's."""
    plain = {
        name: [getattr(old, name), values[name]]
        for name in TRACKED
        if name != "url" and getattr(old, name) != values[name]
    }
    diff = normalise_changes(Stream, plain)
    if old.url != values["url"]:
        diff["url"] = [mask_stream_url(old.url), mask_stream_url(values["url"])]
    return diff


class _StreamSync:
    """Mirror the streams of conferences and rooms, a batch of owners at a time."""

    def __init__(
        self, run: SyncRun, flight: Flight, client: SignalWireClient, progress: Progress | None
    ) -> None:
        self.run_record = run
        self.flight = flight
        self.client = client
        self.progress = progress
        self.reasons: list[str] = []
        # PostgreSQL's text and jsonb cannot hold U+0000; SQLite keeps it as SignalWire does.
        self.refuses_nul = connection.vendor == "postgresql"
        # Listed streams that could not be stored: not gone, whatever the batch.
        self.refused: set[str] = set()

    def error(self, reason: str) -> None:
        note_error(self.run_record, self.reasons, reason)

    def run(self, only: Conference | Room | None) -> None:
        """Walk the owners SignalWire has, kind by kind in pk order, and mirror their streams."""
        ContentType.objects.get_for_model(Stream)  # cached now, not in a batch's queries
        with wide_batches():
            for kind, model in OWNERS:
                if only is not None and not isinstance(only, model):
                    continue
                owners = model.objects.filter(remote_id__isnull=False).exclude(
                    sync_state__in=(SyncState.DELETED_REMOTELY, SyncState.PENDING_DELETE)
                )
                if only is not None:
                    owners = owners.filter(pk=only.pk)
                last_pk = 0
                while True:
                    batch = list(
                        owners.filter(pk__gt=last_pk)
                        .order_by("pk")
                        .values_list("pk", "remote_id", "name")[:OWNER_BATCH]
                    )
                    if not batch:
                        break
                    last_pk = batch[-1][0]
                    self.apply_batch(kind, batch)

    def apply_batch(self, kind: str, batch: list[tuple[int, str | None, str]]) -> None:
        """Read each owner's listing (no transaction open), then write the batch at once."""
        fetched: dict[int, list[dict[str, Any]]] = {}
        for pk, remote_id, name in batch:
            if self.flight.lost:
                raise SyncAborted("Lost the sync lock; stopped so two runs never overlap.")
            try:
                fetched[pk] = STREAM.list_for(self.client, kind, remote_id or "")
            except NotFoundError:
                self.error(f"{name}: SignalWire no longer has {kind} {remote_id}.")
        with transaction.atomic():
            self.write(kind, fetched)
            self.run_record.pages += 1
            save_run(self.run_record)
        if self.progress is not None:
            self.progress(self.run_record)

    def _read(
        self, fetched: dict[int, list[dict[str, Any]]]
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """Map each listed stream to (owner pk, field values); unreadable ones are errors."""
        incoming: dict[str, tuple[int, dict[str, Any]]] = {}
        for owner_pk, items in fetched.items():
            for item in items:
                try:
                    values = STREAM.fields(item)
                except Exception as exc:  # one odd stream must not stop the batch
                    self.error(f"A stream is not readable ({type(exc).__name__}).")
                    continue
                problem = payloads.listed_row_problem(
                    {**item, "id": values["remote_id"]}, refuses_nul=self.refuses_nul
                )
                if problem is None and len(values["url"]) > schema.STREAM_URL_MAX:
                    problem = f"url is longer than {schema.STREAM_URL_MAX} characters"
                if problem is not None:
                    # Listed, so never marked deleted; a mirrored row keeps its last values.
                    self.refused.add(values["remote_id"])
                    # Named by id and field only: the url holds the stream key.
                    self.error(
                        f"Stream {payloads.shown_id(values['remote_id'])}: not stored "
                        f"because {problem}."
                    )
                    continue
                incoming[values["remote_id"]] = (owner_pk, values)
        return incoming

    def write(self, kind: str, fetched: dict[int, list[dict[str, Any]]]) -> None:
        """Create, update, restore and mark the batch's streams, with their audit entries."""
        run = self.run_record
        now = timezone.now()
        owner_field = f"{kind}_id"
        incoming = self._read(fetched)
        run.seen += len(incoming)
        local = list(Stream.objects.filter(**{f"{owner_field}__in": list(fetched)}))
        by_remote = {s.remote_id: s for s in local if s.remote_id}
        moved = [rid for rid in incoming if rid not in by_remote]
        for start in range(0, len(moved), WRITE_CHUNK):
            for stream in Stream.objects.filter(remote_id__in=moved[start : start + WRITE_CHUNK]):
                by_remote[stream.remote_id or ""] = stream
        # Creates whose answer was lost: the push adopts their stream, not the sync.
        awaited = {
            (getattr(s, owner_field), s.url)
            for s in local
            if not s.remote_id and s.sync_state in UNPUSHED_STATES
        }
        creates: list[Stream] = []
        updates: list[Stream] = []
        entries: list[tuple[Stream, int, dict[str, list[Any]] | None]] = []
        for remote_id, (owner_pk, values) in incoming.items():
            row = by_remote.get(remote_id)
            if row is None:
                if (owner_pk, values["url"]) in awaited:
                    awaited.discard((owner_pk, values["url"]))
                    run.skipped_pending += 1
                    continue
                stream = Stream(
                    **{owner_field: owner_pk}, **values, sync_state=SyncState.SYNCED,
                    last_synced_at=now,
                )
                creates.append(stream)
                continue
            if row.sync_state in UNPUSHED_STATES:
                run.skipped_pending += 1
                continue
            diff = _changes(row, values)
            if getattr(row, owner_field) != owner_pk:
                diff[kind] = [getattr(row, owner_field), owner_pk]
            restored = row.sync_state == SyncState.DELETED_REMOTELY
            if restored:
                diff[GONE] = [True, False]
            if not diff and row.raw == values["raw"]:
                run.unchanged += 1
                continue
            for name, value in values.items():
                setattr(row, name, value)
            row.conference_id = owner_pk if kind == Stream.OwnerKind.CONFERENCE else None
            row.room_id = owner_pk if kind == Stream.OwnerKind.ROOM else None
            row.sync_state = SyncState.SYNCED
            row.last_synced_at = now
            row.last_error = values.get("last_error", "")
            row.updated_at = now
            updates.append(row)
            if diff:
                entries.append((row, Action.UPDATE, NormalisedChanges(diff)))
            if restored:
                run.restored += 1
            else:
                run.updated += 1
        gone = [
            s for s in local
            if s.remote_id and s.remote_id not in incoming and s.remote_id not in self.refused
            and getattr(s, owner_field) in fetched and s.sync_state in MARKABLE_STATES
        ]
        if creates:
            Stream.objects.bulk_create(creates, batch_size=WRITE_CHUNK)
            entries.extend((stream, Action.CREATE, None) for stream in creates)
        if updates:
            Stream.objects.bulk_update(updates, list(WRITTEN), batch_size=WRITE_CHUNK)
        if gone:
            Stream.objects.filter(pk__in=[s.pk for s in gone]).update(
                sync_state=SyncState.DELETED_REMOTELY, last_synced_at=now, updated_at=now
            )
            entries.extend(
                (s, Action.UPDATE, NormalisedChanges({GONE: [False, True]})) for s in gone
            )
        if entries:
            bulk_record(model=Stream, entries=entries)
        run.created += len(creates)
        run.marked_deleted += len(gone)
