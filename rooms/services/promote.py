"""Compare a conference or room with its counterpart in another Space, and promote it there.

The counterpart is the row of the same name in the other Space's mirror. A promotion is an
ordinary remote-first create or update of the counterpart through rooms.services.mirror
(its intent, pending push and 422 mapping included), sent with the other Space's client.
Tokens, stream URLs and recordings are never copied; streams are, only when asked by
someone who may reveal their URLs. Both Spaces' audit trails hold the promotion under one
correlation id: the counterpart's own create or update entries, and an event on the
source row naming where it went and what changed.

Many rows are promoted as an ActionRun whose Space is the target, carried out in batches
by the worker (promote_many records it, promote_batch runs one batch).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from rooms import audit, outbox, registry, services
from rooms.models import (
    ActionRun,
    AuditEntry,
    Conference,
    Room,
    Space,
    Stream,
    SyncState,
)
from rooms.services import bulk, restore, streams
from rooms.services.common import client_for
from rooms.signalwire import schema
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import SignalWireError
from rooms.stream_urls import stream_host

STREAM_REVEAL = "rooms.reveal_stream_url"
Row = Conference | Room

# The settings a promotion carries over: every field the portal creates or updates the
# kind with, except its name (the counterpart has the same one).
SETTING_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    spec.model: tuple(
        dict.fromkeys(
            f for f in (*spec.create_fields, *restore.RESTORABLE_FIELDS[spec.model]) if f != "name"
        )
    )
    for spec in (registry.CONFERENCE, registry.ROOM)
}
# Outcomes of one promotion.
CREATED, UPDATED, SAME, PENDING, FAILED = "created", "updated", "already_same", "left_pending", (
    "failed"
)
SKIPPED_SAME_SPACE = "skipped_same_space"
# Streams that no longer send anywhere are neither compared nor copied.
GONE_STREAMS = (SyncState.DELETED_REMOTELY, SyncState.PENDING_DELETE)


def setting_fields(model: type[models.Model]) -> tuple[str, ...]:
    """Name the fields a promotion of this kind compares and copies."""
    if model not in SETTING_FIELDS:
        raise ValueError(f"a {model.__name__} cannot be promoted")
    return SETTING_FIELDS[model]


def label(model: type[models.Model], name: str) -> str:
    """The field's name as its form shows it."""
    return str(getattr(model._meta.get_field(name), "verbose_name", name))


def same(name: str, here: Any, there: Any) -> bool:
    """Tell whether two values of a setting are the same (colours regardless of case)."""
    if name in schema.COLOUR_FIELDS and isinstance(here, str) and isinstance(there, str):
        return here.lower() == there.lower()
    return bool(here == there)


def counterpart(row: Row, space: Space) -> Row | None:
    """The row of the same name in the other Space's mirror, if it has one."""
    found: Row | None = type(row)._default_manager.filter(space=space, name=row.name).first()
    return found


def may_copy_streams(actor: Any) -> bool:
    """Tell whether someone may have streams copied: it hands on their URLs."""
    return actor is None or bool(getattr(actor, "has_perm", lambda _: False)(STREAM_REVEAL))


# --- compare ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldComparison:
    """One setting, here and in the other Space."""

    name: str
    label: str
    here: Any
    there: Any
    same: bool


@dataclass(frozen=True)
class StreamSummary:
    """What may be shown of a stream: where it goes and its shape, never its URL."""

    destination: str
    stream_type: str
    width: int | None
    height: int | None
    fps: int | None


@dataclass(frozen=True)
class Comparison:
    """A row beside its counterpart in another Space, field by field."""

    row: Row
    space: Space
    counterpart: Row | None
    fields: list[FieldComparison]
    streams_here: int
    streams_there: int
    # Only for someone who may reveal stream URLs; None otherwise.
    stream_details_here: list[StreamSummary] | None = None
    stream_details_there: list[StreamSummary] | None = None

    @property
    def differences(self) -> list[str]:
        """Name the settings that differ (all of them when there is no counterpart)."""
        return [f.name for f in self.fields if not f.same]


def live_streams(owner: Row | None) -> models.QuerySet[Stream]:
    """The owner's streams that still send somewhere."""
    if owner is None:
        return Stream.objects.none()
    key = "conference" if isinstance(owner, Conference) else "room"
    return Stream.objects.filter(**{key: owner}).exclude(sync_state__in=GONE_STREAMS)


def _summaries(rows: models.QuerySet[Stream]) -> list[StreamSummary]:
    return [
        StreamSummary(stream_host(s.url), s.stream_type, s.width, s.height, s.fps)
        for s in rows.order_by("pk")
    ]


def compare(*, row: Row, space: Space, stream_details: bool = False) -> Comparison:
    """Compare a row's settings with its counterpart's in another Space (read only)."""
    model = type(row)
    there = counterpart(row, space)
    fields = [
        FieldComparison(
            name=name,
            label=label(model, name),
            here=getattr(row, name),
            there=getattr(there, name) if there is not None else None,
            same=there is not None and same(name, getattr(row, name), getattr(there, name)),
        )
        for name in setting_fields(model)
    ]
    here_streams, there_streams = live_streams(row), live_streams(there)
    return Comparison(
        row=row,
        space=space,
        counterpart=there,
        fields=fields,
        streams_here=here_streams.count(),
        streams_there=there_streams.count(),
        stream_details_here=_summaries(here_streams) if stream_details else None,
        stream_details_there=_summaries(there_streams) if stream_details else None,
    )


# --- promote one --------------------------------------------------------------------------


@dataclass
class Promotion:
    """What promoting one row did in the other Space."""

    outcome: str
    target: Row
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    streams_copied: int = 0
    stream_errors: list[str] = field(default_factory=list)


def _differences(row: Row, there: Row) -> dict[str, tuple[Any, Any]]:
    return {
        name: (getattr(there, name), getattr(row, name))
        for name in setting_fields(type(row))
        if not same(name, getattr(row, name), getattr(there, name))
    }


def _create(row: Row, data: dict[str, Any], **kwargs: Any) -> Row:
    if isinstance(row, Conference):
        return services.conference_create(data=data, **kwargs)
    return services.room_create(data=data, **kwargs)


def _update(row: Row, there: Row, data: dict[str, Any], **kwargs: Any) -> Row:
    if isinstance(there, Conference):
        return services.conference_update(conference=there, data=data, **kwargs)
    assert isinstance(there, Room)
    return services.room_update(room=there, data=data, **kwargs)


def _copy_streams(
    row: Row, target: Row, *, actor: Any, source: str, client: SignalWireClient
) -> tuple[int, list[str]]:
    """Add to the target the source's streams it lacks; return how many and what failed."""
    if not target.remote_id or target.sync_state != SyncState.SYNCED:
        return 0, [f"The streams were not copied: “{target.name}” is not in SignalWire yet."]
    have = set(live_streams(target).values_list("url", flat=True))
    copied, errors = 0, []
    for stream in live_streams(row).order_by("pk"):
        if stream.url in have:
            continue
        try:
            streams.stream_create(
                owner=target, url=stream.url, actor=actor, source=source, client=client
            )
        except (ValidationError, SignalWireError) as exc:
            # The service masked the URL in its messages; the host alone names the stream.
            errors.append(f"{stream}: {bulk.refusal_message(exc)}")
            continue
        have.add(stream.url)
        copied += 1
    return copied, errors


def promote_one(
    *,
    row: Row,
    space: Space,
    actor: Any = None,
    copy_streams: bool = False,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Promotion:
    """Create a row's counterpart in another Space, or update it to match, remote first.

    Raises ValidationError (SignalWire's 422 by field, or why it cannot be done) and
    SignalWireError when the other Space refuses; then nothing changed in either Space.
    """
    if row.space_id == space.pk:
        raise ValidationError(f"“{row.name}” is already in {space.name}.")
    if copy_streams and not may_copy_streams(actor):
        raise ValidationError("Copying streams needs the permission to reveal stream URLs.")
    model = type(row)
    client = client if client is not None else client_for(space)
    with services.acting(source, actor):
        row = model._default_manager.get(pk=row.pk)
        wanted = {name: getattr(row, name) for name in setting_fields(model)}
        there = counterpart(row, space)
        kwargs: dict[str, Any] = {"actor": actor, "source": source, "client": client}
        if there is None:
            target = _create(row, {"space_id": space.pk, "name": row.name, **wanted}, **kwargs)
            promotion = Promotion(CREATED, target)
        elif there.sync_state == SyncState.DELETED_REMOTELY:
            raise ValidationError(
                f"“{there.name}” was deleted in {space.name}; sync that Space before "
                "promoting to it."
            )
        else:
            changes = _differences(row, there)
            target = _update(row, there, {k: v[1] for k, v in changes.items()}, **kwargs) if (
                changes
            ) else there
            promotion = Promotion(UPDATED if changes else SAME, target, changes)
        if target.sync_state == SyncState.PENDING_PUSH:
            promotion.outcome = PENDING
        if copy_streams:
            promotion.streams_copied, promotion.stream_errors = _copy_streams(
                row, target, actor=actor, source=source, client=client
            )
            if promotion.outcome == SAME and promotion.streams_copied:
                promotion.outcome = UPDATED
        if promotion.outcome != SAME:
            _record_on_source(row, space, promotion)
    return promotion


def _record_on_source(row: Row, space: Space, promotion: Promotion) -> None:
    """Write the source row's event: where it went, as what, and what changed there."""
    model = type(row)
    details: dict[str, Any] = {
        "space": space.name,
        "name": promotion.target.name,
        "outcome": promotion.outcome,
    }
    if promotion.outcome == CREATED or (
        promotion.outcome == PENDING and not promotion.changes
    ):
        details["changes"] = {}
    else:
        details["changes"] = {
            name: [
                audit.json_value(model._meta.get_field(name), old),
                audit.json_value(model._meta.get_field(name), new),
            ]
            for name, (old, new) in promotion.changes.items()
        }
    if promotion.streams_copied:
        details["streams_copied"] = promotion.streams_copied
    audit.record_event(obj=row, event=f"promoted to {space.name}", details=details)


# --- preview and promote many --------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRow:
    """What promoting one selected row would do: create, update (which fields) or nothing."""

    row: Row
    outcome: str
    fields: list[tuple[str, Any, Any]]
    note: str = ""


def promote_preview(*, rows: models.QuerySet[Any], space: Space) -> list[PreviewRow]:
    """Say for each selected row what a promotion would do; read only, no SignalWire."""
    model = rows.model
    names = list(rows.values_list("name", flat=True))
    theirs = {r.name: r for r in model._default_manager.filter(space=space, name__in=names)}
    preview = []
    for row in rows.order_by("pk"):
        there = theirs.get(row.name)
        if row.space_id == space.pk:
            preview.append(PreviewRow(row, SKIPPED_SAME_SPACE, [], f"already in {space.name}"))
        elif there is None:
            preview.append(PreviewRow(row, CREATED, []))
        elif there.sync_state == SyncState.DELETED_REMOTELY:
            preview.append(PreviewRow(row, FAILED, [], f"deleted in {space.name}; sync it first"))
        else:
            changes = _differences(row, there)
            diff = [(label(model, name), old, new) for name, (old, new) in changes.items()]
            preview.append(PreviewRow(row, UPDATED if diff else SAME, diff))
    return preview


def promote_many(
    *,
    model: type[models.Model],
    pks: list[int],
    space: Space,
    actor: Any = None,
    copy_streams: bool = False,
) -> ActionRun:
    """Record the promotion of many rows to a Space and queue its first batch.

    The run belongs to the target Space; the worker promotes each row as promote_one does.
    """
    setting_fields(model)
    if copy_streams and not may_copy_streams(actor):
        raise ValidationError("Copying streams needs the permission to reveal stream URLs.")
    user = actor if getattr(actor, "is_authenticated", False) else None
    pks = sorted(set(pks))
    with transaction.atomic():
        run = ActionRun.objects.create(
            space=space,
            action=ActionRun.Action.PROMOTE,
            kind=model._meta.model_name or "",
            requested_by=user,
            total=len(pks),
            pks=pks,
            changes={
                "space": space.name,
                "copy_streams": bool(copy_streams),
                # Where the rows come from: their names are shown only to whoever sees it.
                "source_space_ids": sorted(
                    set(model._default_manager.filter(pk__in=pks).values_list(
                        "space_id", flat=True
                    ))
                ),
            },
        )
        bulk.queue_after_commit(run, outbox.PROMOTE_RUN_TASK)
    return run


def promote_batch(*, run_id: int, offset: int = 0) -> int | None:
    """Promote one batch of a run's rows; return where the next batch starts, None when done."""
    run = ActionRun.objects.select_related("space", "requested_by").filter(pk=run_id).first()
    if run is None or run.state in bulk.DONE_STATES or run.done != offset:
        return None  # ended, or this batch was delivered again after it was recorded
    if run.started_at is None:
        ActionRun.objects.filter(pk=run.pk).update(
            state=ActionRun.State.RUNNING, started_at=timezone.now()
        )
    model = services.mirror_for(run.kind).model
    batch = run.pks[offset : offset + settings.ROOMS_ACTION_BATCH_SIZE]
    found = model._default_manager.in_bulk(batch)
    copy = bool(run.changes.get("copy_streams")) and may_copy_streams(run.requested_by)
    counts: Counter[str] = Counter()
    errors: list[str] = []
    failures: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    with audit.audit_context(
        source=AuditEntry.Source.ADMIN, actor=run.requested_by, correlation_id=run.run_id.hex
    ):
        client = client_for(run.space)
        for pk in batch:
            row = found.get(pk)
            if row is None:
                counts["gone_meanwhile"] += 1
                continue
            entry: dict[str, Any] = {"pk": pk, "name": str(row)}
            try:
                if row.space_id == run.space_id:
                    entry["outcome"] = SKIPPED_SAME_SPACE
                else:
                    done = promote_one(
                        row=row, space=run.space, actor=run.requested_by, copy_streams=copy,
                        client=client,
                    )
                    entry["outcome"] = done.outcome
                    entry["fields"] = [label(model, f) for f in done.changes]
                    if done.streams_copied:
                        entry["streams_copied"] = done.streams_copied
                    if done.stream_errors:
                        entry["message"] = "; ".join(done.stream_errors)
            except (SignalWireError, ValidationError) as exc:
                message = bulk.refusal_message(exc)
                entry.update(outcome=FAILED, message=message)
                errors.append(f"{row}: {message}")
                failures.append({"pk": pk, "name": str(row), "message": message})
            counts[entry["outcome"]] += 1
            outcomes.append(entry)
    next_offset = offset + len(batch)
    if not bulk.record_progress(
        run.pk, counts, errors, offset=offset, finished=next_offset >= len(run.pks),
        failures=failures, rows=outcomes,
    ):
        return None
    return None if next_offset >= len(run.pks) else next_offset
