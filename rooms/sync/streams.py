"""Stream sync: list each conference's and room's streams and reconcile them, a batch at a time.

Streams have no Space-wide listing: each owner's is read (with no transaction open), then
a batch of owners is written in one transaction with a constant number of bulk queries.
A stream an owner no longer lists is marked deleted remotely (kept, shown, filterable);
an owner whose listing failed changes no deletion state. Rows with unpushed local edits
are left to the push, and a listed stream that a pending create of the same owner and url
is waiting for is left to that push to adopt, so the sync never makes it twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from rooms.audit import NormalisedChanges, bulk_record, normalise_changes
from rooms.locks import Flight
from rooms.models import (
    UNPUSHED_STATES,
    AuditEntry,
    Conference,
    Room,
    Space,
    Stream,
    SyncRun,
    SyncState,
)
from rooms.registry import STREAM
from rooms.signalwire import schema
from rooms.signalwire.client import SignalWireClient
from rooms.stream_urls import mask_stream_url
from rooms.sync.engine import UnderParentSync, live_parents
from rooms.sync.pages import WRITE_CHUNK
from rooms.sync.runs import Progress, locked_run
from rooms.sync.writers import GONE

Action = AuditEntry.Action
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
    space: Space | None = None,
) -> SyncRun:
    """Reconcile a Space's streams of every conference and room (or of one owner)."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        StreamSync(run, flight, api, progress, only=owner).run()

    if space is None and owner is not None:
        space = owner.space
    return locked_run(SyncRun.Kind.STREAMS, trigger, client, work, space)


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


class StreamSync(UnderParentSync):
    """Mirror the streams of conferences and rooms (or of one owner), a batch at a time."""

    mirror = STREAM
    noun = "Stream"

    def __init__(
        self,
        run: SyncRun,
        flight: Flight,
        client: SignalWireClient,
        progress: Progress | None,
        *,
        only: Conference | Room | None = None,
    ) -> None:
        super().__init__(run, flight, client, progress)
        self.only = only

    def parents(self) -> Iterator[tuple[str, QuerySet[Any]]]:
        """The owners SignalWire has, kind by kind (only the one asked for, if any)."""
        for kind, model in OWNERS:
            if self.only is not None and not isinstance(self.only, model):
                continue
            owners = live_parents(model, self.space_id)
            if self.only is not None:
                owners = owners.filter(pk=self.only.pk)
            yield kind, owners

    def fetch(self, kind: str, remote_id: str) -> list[dict[str, Any]]:
        return STREAM.list_for(self.client, kind, remote_id)

    def too_long(self, values: dict[str, Any]) -> str | None:
        if len(values["url"]) > schema.STREAM_URL_MAX:
            return f"url is longer than {schema.STREAM_URL_MAX} characters"
        return None

    def write(
        self,
        kind: str,
        names: dict[int, str],
        fetched: dict[int, list[dict[str, Any]]],
        asked: dict[int, datetime],
    ) -> None:
        """Create, update, restore and mark the batch's streams, with their audit entries."""
        run = self.run_record
        now = timezone.now()
        owner_field = f"{kind}_id"
        incoming = self.read(names, fetched)
        local = list(Stream.objects.filter(**{f"{owner_field}__in": list(fetched)}))
        by_remote = {s.remote_id: s for s in local if s.remote_id}
        by_remote.update(self.by_remote_id([rid for rid in incoming if rid not in by_remote]))
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
                    space_id=self.space_id, **{owner_field: owner_pk}, **values,
                    sync_state=SyncState.SYNCED,
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
