"""Writers of the sync: plan each changed row's write and audit entry, then apply a page in bulk."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import DatabaseError, models, transaction

from rooms.audit import MIRROR_BOOKKEEPING, NormalisedChanges, bulk_record, json_value
from rooms.bulk_sql import insert_rows
from rooms.models import UNPUSHED_STATES, AuditEntry, SyncState
from rooms.registry import Resource
from rooms.signalwire import payloads
from rooms.sync.pages import WRITE_CHUNK

Action = AuditEntry.Action

# Top-level keys of a payload that the raw diff in audit rows leaves out (always changing).
RAW_NOISE = frozenset({"id", "created_at", "updated_at"})
# The audit trail leaves sync_state out as bookkeeping; a room vanishing from SignalWire
# and coming back is worth a line, so it is recorded under this name instead.
GONE = "deleted_in_signalwire"

_DATETIME = models.DateTimeField()


def _plain(value: Any) -> Any:
    """Make a field value JSON-safe for an audit row, stored as auditlog stores it."""
    if isinstance(value, datetime):
        return json_value(_DATETIME, value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@functools.cache
def column_checks(model: type[models.Model]) -> tuple[tuple[tuple[str, int], ...], tuple[Any, ...]]:
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


def unfit(model: type[models.Model], values: dict[str, Any]) -> str | None:
    """Say why mapped values cannot be stored in the model's columns, or None if they can."""
    if not values.get("name"):
        return "it has no name"
    lengths, ranges = column_checks(model)
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
class RowWrite:
    """One planned row write of a page, applied in bulk with the others.

    A create carries its column values in `row` (inserted as plain values); an update
    carries a model instance in `obj` and the names of the fields it changes.
    """

    create: bool
    obj: Any
    fields: set[str]
    counter: str
    audit: tuple[int, dict[str, Any]] | None
    row: dict[str, Any] | None = None


class _Created:
    """What the audit trail needs of a row the sync inserted: its key, name and remote id."""

    __slots__ = ("pk", "space_id", "name", "display_name", "remote_id")

    def __init__(self, row: dict[str, Any]) -> None:
        self.pk = None
        self.space_id = row["space_id"]
        self.name = row["name"]
        self.display_name = row.get("display_name") or ""
        self.remote_id = row["remote_id"]

    def __str__(self) -> str:
        return self.display_name or self.name

    def get_additional_data(self) -> dict[str, Any]:
        return {"remote_id": self.remote_id, "name": self.name}




class PageWriter:
    """Plan and apply the row writes of one resource's pages, with their audit entries."""

    def __init__(
        self,
        resource: Resource[Any],
        *,
        space_id: int,
        seen: set[str],
        error: Callable[[str], None],
        fast_inserts: bool = True,
    ) -> None:
        self.model = resource.model
        self.space_id = space_id
        self.fast_inserts = fast_inserts
        self.seen = seen
        self.error = error
        # Columns read for rows that changed: enough to diff, audit and rewrite them.
        self.old_columns = (
            "pk", "space_id", "remote_id", "remote_created_at", "remote_updated_at", "raw",
            "sync_state", "last_error", "display_name", *resource.managed_fields,
        )
        self.model_columns = frozenset(
            name for f in self.model._meta.concrete_fields for name in (f.name, f.attname)
        )
        self.audited = tuple(f for f in resource.managed_fields if f not in MIRROR_BOOKKEEPING)
        self.audited_datetimes = tuple(
            f.name for f in self.model._meta.concrete_fields
            if isinstance(f, models.DateTimeField) and f.name in self.audited
        )

    def create_or_adopt(self, new: list[dict[str, Any]], now: datetime) -> list[RowWrite]:
        """Create new rows, or link a local row that already holds the name."""
        holders = {
            old["name"]: old
            for old in self.model.objects.filter(
                space_id=self.space_id, name__in=[values["name"] for values in new]
            )
            .order_by()
            .values(*self.old_columns)
        }
        writes: list[RowWrite] = []
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

    def create(self, values: dict[str, Any], now: datetime) -> RowWrite:
        row = {
            **values,
            "space_id": self.space_id,
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
        return RowWrite(True, _Created(row), set(), "created", (Action.CREATE, changes), row)

    def link(self, holder: dict[str, Any], values: dict[str, Any], now: datetime) -> RowWrite:
        """Plan linking a pending local row to its remote object, keeping its local values."""
        linked = {f: values[f] for f in payloads.MIRROR_FIELDS}
        if "raw_digest" in values:
            linked["raw_digest"] = values["raw_digest"]
        # Every column gets the holder's own value, since a page's bulk_update writes the
        # union of the fields its rows changed.
        merged = {k: v for k, v in holder.items() if k in self.model_columns or k == "pk"}
        merged.update(linked, last_synced_at=now, updated_at=now)
        changes = {"remote_id": [None, values["remote_id"]]}
        return RowWrite(
            False,
            self.model(**merged),
            {*linked, "last_synced_at", "updated_at"},
            "updated",
            (Action.UPDATE, changes),
        )

    def update(self, old: dict[str, Any], values: dict[str, Any], now: datetime) -> RowWrite:
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
        # A note of values stored as unknown stays on the row; any other error is cleared.
        merged.update(
            sync_state=SyncState.SYNCED, last_error=values.get("last_error", ""),
            last_synced_at=now,
        )
        merged["updated_at"] = now
        obj = self.model(**merged)
        fields.update(("last_synced_at", "updated_at"))
        audit = (Action.UPDATE, changes) if changes else None
        return RowWrite(False, obj, fields, "restored" if restored else "updated", audit)

    @staticmethod
    def raw_changes(old_raw: Any, new_raw: dict[str, Any]) -> dict[str, Any]:
        """Diff fields the portal does not map (kept only in raw), for the audit row."""
        old_raw = old_raw if isinstance(old_raw, dict) else {}
        return {
            f"raw.{key}": [_plain(old_raw.get(key)), _plain(new_raw.get(key))]
            for key in sorted(old_raw.keys() | new_raw.keys())
            if key not in RAW_NOISE and old_raw.get(key) != new_raw.get(key)
        }

    def write(self, writes: list[RowWrite]) -> None:
        """Apply planned writes in bulk: one INSERT, one UPDATE and one audit INSERT."""
        creates = [w for w in writes if w.create and w.row is not None]
        updates = [w for w in writes if not w.create]
        if creates:
            if self.fast_inserts:
                # bench/sync_bench.py --plain: the first sync of 10,000 conferences runs
                # 1.6-2.6x faster with these inserts than with bulk_create (see known_rows).
                insert_rows(self.model, [w.row for w in creates if w.row is not None])
            else:
                self.model.objects.bulk_create(
                    [self.model(**w.row) for w in creates if w.row is not None],
                    batch_size=WRITE_CHUNK,
                )
            pks = dict(
                self.model.objects.filter(
                    space_id=self.space_id, remote_id__in=[w.obj.remote_id for w in creates]
                )
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

    def write_one_by_one(self, writes: list[RowWrite]) -> list[RowWrite]:
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
