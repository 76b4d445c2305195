"""Recording services: a fresh download link, remote-first delete, and the retention policy.

A download asks SignalWire for the recording at that moment and hands its freshly signed
`uri` to the caller, audited (who, which recording, when) and never stored, logged or put
in the audit row. A delete removes the recording in SignalWire first, with no transaction
open; when SignalWire cannot be reached it is kept as *pending delete* and a background
task finishes it. Retention deletes completed recordings older than
RECORDING_RETENTION_DAYS the same way, as one recorded run.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from rooms import audit, intents, outbox
from rooms.locks import single_flight
from rooms.models import ActionRun, AuditEntry, Recording, RecordingState, RemoteIntent
from rooms.models.recordings import COMPLETED
from rooms.services import alerts
from rooms.services.common import acting, api_client
from rooms.signalwire import recordings as api_recordings
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError, SignalWireError
from rooms.sync.recordings import recordings_mark_deleted

logger = logging.getLogger("rooms.services.recordings")

KIND = "recording"
DELETE_TASK = "rooms.tasks.delete_recording"
# Audit events of a recording that removed its file.
DELETE_EVENTS = ("delete", "retention_delete")
# Outcomes of a delete, as runs count them.
DELETED, PENDING, ALREADY_GONE = "deleted", "pending_delete", "already_gone"
# Outcomes of a pending delete the background task could not finish.
DELETE_FAILED, IN_THE_AIR = "delete_failed", "delete in the air"
# How last_error begins on a recording whose delete SignalWire refused.
REFUSED = "SignalWire refused to delete it: "


class RecordingLinkUnavailable(Exception):
    """SignalWire gives no download link for this recording now; the message says why."""


def _client(
    client: SignalWireClient | None, profile: str, recording: Recording
) -> SignalWireClient:
    """Use the caller's client, else one for the recording's own Space."""
    return api_client(client, profile, space=recording.space)


# --- download ---------------------------------------------------------------------------


def recording_link(
    *,
    recording: Recording,
    actor: audit.Actor,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> str:
    """Ask SignalWire for a fresh link to the recording's file; audit who asked (not the link).

    Raises RecordingLinkUnavailable when the recording is gone or not completed (then
    SignalWire's answer has no link), SignalWireError when SignalWire cannot be asked.
    """
    api = _client(client, "interactive", recording)
    try:
        answer = api_recordings.get_recording(api, recording.remote_id)
    except NotFoundError as exc:
        with acting(source, actor), transaction.atomic():
            recordings_mark_deleted(Recording.objects.filter(pk=recording.pk))
        raise RecordingLinkUnavailable(
            f"SignalWire no longer has the recording {recording}: it was deleted there."
        ) from exc
    uri = answer.get("uri")
    status = answer.get("status") if isinstance(answer.get("status"), str) else "unknown"
    _store_answer(recording, answer)
    if status != COMPLETED or not isinstance(uri, str) or not uri.startswith(("https:", "http:")):
        raise RecordingLinkUnavailable(
            f"The recording {recording} is {status} in SignalWire, so it has no download link "
            "yet. Try again once it is completed."
        )
    with acting(source, actor), transaction.atomic():
        audit.record_event(
            obj=recording,
            event="download",
            details={"status": status, "size_in_bytes": recording.size_in_bytes},
        )
    return uri


def _store_answer(recording: Recording, answer: dict[str, Any]) -> None:
    """Keep what SignalWire just said about the recording (without its link)."""
    values = api_recordings.recording_fields(answer)
    changed = [name for name, value in values.items() if getattr(recording, name) != value]
    if not changed:
        return
    for name in changed:
        setattr(recording, name, values[name])
    recording.last_synced_at = timezone.now()
    with transaction.atomic():
        recording.save(update_fields=[*changed, "last_synced_at"])


# --- delete -----------------------------------------------------------------------------


def _facts(recording: Recording) -> dict[str, Any]:
    """What an audit entry keeps of a deleted recording: enough to say what was freed."""
    return {
        "status": recording.status,
        "size_in_bytes": recording.size_in_bytes,
        "cost_in_dollars": str(recording.cost_in_dollars)
        if recording.cost_in_dollars is not None
        else None,
        "duration": recording.duration,
        "started_at": recording.started_at.isoformat() if recording.started_at else None,
        "finished_at": recording.finished_at.isoformat() if recording.finished_at else None,
    }


def recording_delete(
    *,
    recording: Recording,
    actor: audit.Actor,
    source: str,
    client: SignalWireClient | None = None,
    reason: str = "",
) -> str:
    """Delete a recording in SignalWire, then here; keep it pending delete if SignalWire is down.

    Returns "deleted", "pending_delete" (a background task finishes it) or "already_gone".
    Raises SignalWireError when SignalWire refuses the delete (nothing changes then).
    """
    with acting(source, actor):
        previous = recording.sync_state
        intent = intents.record(
            kind=KIND,
            model=Recording,
            action=RemoteIntent.Action.DELETE,
            row=recording,
            data={"remote_id": recording.remote_id},
        )
        # A staff member's page waits on this call; tasks and commands may wait longer.
        profile = "interactive" if source == AuditEntry.Source.ADMIN else "background"
        try:
            api_recordings.delete_recording(
                _client(client, profile, recording), recording.remote_id
            )
        except NotFoundError:
            _finish_delete(recording, intent, reason=reason, gone=True)
            return ALREADY_GONE
        except SignalWireError as exc:
            if not exc.retryable:
                # A refused retry of a pending delete is no longer pending: the staff member
                # was told, and the periodic push must not ask again and again.
                retried = previous == RecordingState.PENDING_DELETE
                intents.withdraw(
                    model=Recording,
                    intent=intent,
                    previous_state=RecordingState.SYNCED if retried else previous,
                )
                if retried:
                    Recording.objects.filter(pk=recording.pk).update(
                        last_error=f"{REFUSED}{exc}"[:2000]
                    )
                raise
            _keep_pending(recording, intent, exc, reason=reason)
            return PENDING
        _finish_delete(recording, intent, reason=reason)
        return DELETED


def _finish_delete(
    recording: Recording, intent: RemoteIntent | None, *, reason: str, gone: bool = False
) -> None:
    """Record the delete and drop the local row, in one short transaction."""
    details = {**_facts(recording), "reason": reason or "asked"}
    if gone:
        details["already_gone_in_signalwire"] = True
    with transaction.atomic():
        audit.record_event(
            obj=recording,
            event="retention_delete" if reason.startswith("retention") else "delete",
            details=details,
            action=AuditEntry.Action.DELETE,
        )
        intents.drop(intent)
        Recording.objects.filter(pk=recording.pk).delete()


def _keep_pending(
    recording: Recording, intent: RemoteIntent, exc: SignalWireError, *, reason: str
) -> None:
    """Keep the recording as pending delete, say so in the audit trail, queue the task."""
    ctx = audit.current_context()
    with transaction.atomic():
        Recording.objects.filter(pk=recording.pk).update(
            sync_state=RecordingState.PENDING_DELETE,
            last_error=f"Waiting for SignalWire: {exc}"[:2000],
        )
        recording.sync_state = RecordingState.PENDING_DELETE
        audit.record_event(
            obj=recording,
            event="delete_requested",
            details={**_facts(recording), "reason": reason or "asked", "waiting_for": str(exc)},
        )
        # The row's state is the durable record now; the intent (kind "recording") is not
        # one the generic replay of rooms.services knows, so it is never left behind.
        intents.drop(intent)
        actor_pk = getattr(ctx.actor, "pk", None)
        transaction.on_commit(
            lambda: outbox.send(DELETE_TASK, recording.pk, actor_pk, reason)
        )


def recording_delete_pending(
    *, pk: int, actor: audit.Actor = None, reason: str = "",
    client: SignalWireClient | None = None,
) -> str:
    """Finish a pending delete (run by the background task); errors that can heal propagate.

    A refusal no retry heals (401, 403, 400, 422) puts the recording back to synced with
    the error, audited as "delete_failed": staff see why and may try the delete again.
    A delete another request is still waiting on (a fresh intent) is left to that request.
    """
    recording = Recording.objects.select_related("session").filter(pk=pk).first()
    if recording is None or recording.sync_state != RecordingState.PENDING_DELETE:
        return "nothing to delete"
    if intents.delete_asked(kind=KIND, pk=pk)[1]:
        return IN_THE_AIR
    with audit.audit_context(source=AuditEntry.Source.PUSH, actor=actor,
                             actor_label="" if actor else "push"):
        try:
            api_recordings.delete_recording(
                _client(client, "background", recording), recording.remote_id
            )
        except NotFoundError:
            _finish_delete(recording, None, reason=reason, gone=True)
            return ALREADY_GONE
        except SignalWireError as exc:
            if not exc.retryable:
                _refused(recording, exc, reason=reason)
                return DELETE_FAILED
            Recording.objects.filter(pk=pk, sync_state=RecordingState.PENDING_DELETE).update(
                last_error=f"Waiting for SignalWire: {exc}"[:2000]
            )
            raise
        _finish_delete(recording, None, reason=reason)
        return DELETED


def _refused(recording: Recording, exc: SignalWireError, *, reason: str) -> None:
    """Give a pending delete SignalWire refused back its synced state, with why; audit it."""
    with transaction.atomic():
        back = Recording.objects.filter(
            pk=recording.pk, sync_state=RecordingState.PENDING_DELETE
        ).update(sync_state=RecordingState.SYNCED, last_error=f"{REFUSED}{exc}"[:2000])
        if not back:
            return  # something else settled it meanwhile
        recording.sync_state = RecordingState.SYNCED
        audit.record_event(
            obj=recording,
            event="delete_failed",
            details={**_facts(recording), "reason": reason or "asked", "message": str(exc)},
        )


def recordings_pending_delete() -> list[int]:
    """The recordings whose delete still waits for SignalWire and no request is making."""
    # A fresh intent: an admin, bulk or retention delete is waiting on SignalWire for it.
    in_the_air = (
        RemoteIntent.objects.filter(
            kind=KIND, action=RemoteIntent.Action.DELETE, object_pk__isnull=False
        )
        .exclude(pk__in=intents.stale().values("pk"))
        .values("object_pk")
    )
    return list(
        Recording.objects.filter(sync_state=RecordingState.PENDING_DELETE)
        .exclude(pk__in=in_the_air)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def recordings_replay_intents() -> int:
    """Turn recording deletes whose outcome was never stored into pending deletes."""
    stale = list(intents.stale().filter(kind=KIND))
    for intent in stale:
        with transaction.atomic():
            Recording.objects.filter(pk=intent.object_pk or 0).update(
                sync_state=RecordingState.PENDING_DELETE
            )
            intents.drop(intent)
    return len(stale)


# --- what runs freed --------------------------------------------------------------------


@dataclass
class Freed:
    """How many recordings a run deleted and the size and cost that freed."""

    count: int = 0
    size: int = 0
    cost: Decimal = field(default_factory=lambda: Decimal("0"))

    def add(self, size: Any, cost: Any) -> None:
        """Count one deleted recording."""
        self.count += 1
        self.size += size if isinstance(size, int) else 0
        self.cost += Decimal(cost) if isinstance(cost, str | int) else Decimal("0")

    def add_recording(self, recording: Recording) -> None:
        """Count one deleted recording by its stored size and cost."""
        cost = recording.cost_in_dollars
        self.add(recording.size_in_bytes, str(cost) if cost is not None else None)

    def as_dict(self) -> dict[str, Any]:
        """The figures as a run keeps them in its `changes` (JSON: the cost as text)."""
        return {"count": self.count, "size": self.size, "cost": str(self.cost)}

    @classmethod
    def from_dict(cls, kept: Any) -> Freed:
        """Read the figures a run kept back (zero for anything unreadable)."""
        kept = kept if isinstance(kept, dict) else {}
        count, size = kept.get("count"), kept.get("size")
        freed = cls(
            count=count if isinstance(count, int) else 0,
            size=size if isinstance(size, int) else 0,
        )
        freed.cost = Decimal(kept["cost"]) if isinstance(kept.get("cost"), str) else Decimal(0)
        return freed


# Outcomes of a delete that freed the recording's file.
FREEING = (DELETED, ALREADY_GONE)


def freed_added(changes: Any, freed: Freed) -> dict[str, Any]:
    """A run's `changes` with one batch's freed figures added to those it kept."""
    kept: dict[str, Any] = dict(changes) if isinstance(changes, dict) else {}
    total = Freed.from_dict(kept.get("freed"))
    total.count, total.size = total.count + freed.count, total.size + freed.size
    total.cost += freed.cost
    kept["freed"] = total.as_dict()
    return kept


def run_freed(run: ActionRun) -> Freed:
    """What a run's deletes freed: as the run kept it (runs of before then: audit entries)."""
    if isinstance(run.changes, dict) and "freed" in run.changes:
        return Freed.from_dict(run.changes["freed"])
    entries = AuditEntry.objects.filter(
        cid=run.run_id.hex,
        content_type=ContentType.objects.get_for_model(Recording),
        action=AuditEntry.Action.DELETE,
    ).values_list("additional_data", flat=True)
    freed = Freed()
    for extra in entries.iterator():
        if isinstance(extra, dict) and extra.get("event") in DELETE_EVENTS:
            details = extra.get("details") or {}
            freed.add(details.get("size_in_bytes"), details.get("cost_in_dollars"))
    if run.finished_at is not None:  # kept from now on: the entries are read only once
        run.changes = freed_added(run.changes, freed)
        ActionRun.objects.filter(pk=run.pk).update(changes=run.changes)
    return freed


# --- retention --------------------------------------------------------------------------


# A hundred years: far beyond any recording, and a cutoff date that can always be computed.
RETENTION_DAYS_MAX = 36500


def retention_days_problem(days: Any) -> str | None:
    """Say what is wrong with a retention period in days, or None when it can be used."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        return f"must be 0 (keep every recording) or a positive number of days, not {days!r}"
    if days > RETENTION_DAYS_MAX:
        return f"must be at most {RETENTION_DAYS_MAX} days (100 years), not {days}"
    return None


def retention_days() -> int:
    """Return RECORDING_RETENTION_DAYS; refuse a negative or huge value with a clear error."""
    days = settings.RECORDING_RETENTION_DAYS
    problem = retention_days_problem(days)
    if problem:
        raise ImproperlyConfigured(f"RECORDING_RETENTION_DAYS {problem}.")
    return int(days)


def retention_candidates(*, days: int, now: datetime | None = None) -> QuerySet[Recording]:
    """The completed recordings older than `days` (by finish, else creation time)."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return (
        Recording.objects.select_related("session")
        .filter(status=COMPLETED, sync_state=RecordingState.SYNCED)
        .annotate(ended=Coalesce("finished_at", "remote_created_at", "started_at"))
        .filter(ended__lt=cutoff)
        .order_by(F("ended").asc(), "pk")
    )


@dataclass
class RetentionResult:
    """What a retention pass found and did."""

    days: int
    cutoff: datetime | None
    dry_run: bool
    candidates: list[Recording] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    freed: Freed = field(default_factory=Freed)
    failures: list[dict[str, Any]] = field(default_factory=list)
    # What became of each candidate (by pk): deleted, pending_delete, already_gone, failed.
    outcomes: dict[int, str] = field(default_factory=dict)
    run: ActionRun | None = None
    skipped_busy: bool = False

    @property
    def would_free(self) -> Freed:
        """What deleting every candidate would free."""
        total = Freed()
        for r in self.candidates:
            total.add(r.size_in_bytes, str(r.cost_in_dollars) if r.cost_in_dollars else None)
        return total


def _space_client(
    clients: dict[int | None, SignalWireClient | SignalWireError],
    client: SignalWireClient | None,
    recording: Recording,
) -> SignalWireClient:
    """Return the client for a recording's Space, or raise why that Space cannot be used."""
    if client is not None:
        return client
    if recording.space_id not in clients:
        try:
            clients[recording.space_id] = _client(None, "background", recording)
        except SignalWireError as exc:
            clients[recording.space_id] = exc
    found = clients[recording.space_id]
    if isinstance(found, SignalWireError):
        raise found
    return found


def recordings_apply_retention(
    *,
    dry_run: bool = False,
    days: int | None = None,
    now: datetime | None = None,
    source: str = AuditEntry.Source.COMMAND,
    client: SignalWireClient | None = None,
) -> RetentionResult:
    """Delete the completed recordings older than the policy, as one recorded run.

    A dry run only lists them: no call to SignalWire that changes anything, no row
    written. A policy of 0 days keeps everything. Recordings still recording, paused or
    processing, and those pending delete, are never touched.
    """
    days = retention_days() if days is None else days
    problem = retention_days_problem(days)
    if problem:
        raise ImproperlyConfigured(f"The retention period {problem}.")
    now = now or timezone.now()
    if days == 0:
        return RetentionResult(days=0, cutoff=None, dry_run=dry_run)
    cutoff = now - timedelta(days=days)
    candidates = list(retention_candidates(days=days, now=now))
    result = RetentionResult(days=days, cutoff=cutoff, dry_run=dry_run, candidates=candidates)
    if dry_run:
        return result
    with single_flight("retention:recordings") as flight:
        if not flight.acquired:
            result.skipped_busy = True
            return result
        # One run per Space, so each Space's staff see what was deleted from theirs; one
        # client per Space: a Space whose settings are broken fails only its recordings.
        by_space: dict[int, list[Recording]] = {}
        for recording in candidates:
            by_space.setdefault(cast(int, recording.space_id), []).append(recording)
        for space_id, rows in sorted(by_space.items()):
            _retention_run(result, space_id, rows, source=source, client=client)
        failed = result.counts["failed"]
        if result.run is not None:
            result.run.refresh_from_db()
        if failed:
            alerts.soon()
    return result


def _retention_run(
    result: RetentionResult, space_id: int, rows: list[Recording], *, source: str,
    client: SignalWireClient | None,
) -> None:
    """Delete one Space's old recordings as that Space's run; add its figures to `result`."""
    cutoff = result.cutoff.isoformat() if result.cutoff else ""
    run = ActionRun.objects.create(
        space_id=space_id,
        action=ActionRun.Action.RETENTION,
        kind=KIND,
        total=len(rows),
        pks=[r.pk for r in rows],
        state=ActionRun.State.RUNNING,
        started_at=timezone.now(),
        changes={"days": result.days, "cutoff": cutoff},
    )
    result.run = result.run or run
    clients: dict[int | None, SignalWireClient | SignalWireError] = {}
    counts: Counter[str] = Counter()
    freed = Freed()
    failures: list[dict[str, Any]] = []
    reason = f"retention: older than {result.days} days"
    with audit.audit_context(source=source, actor_label="retention", correlation_id=run.run_id.hex):
        for recording in rows:
            try:
                api = _space_client(clients, client, recording)
                outcome = recording_delete(
                    recording=recording, actor=None, source=source, client=api, reason=reason,
                )
            except SignalWireError as exc:
                outcome = "failed"
                failures.append({"pk": recording.pk, "name": str(recording), "message": str(exc)})
            counts[outcome] += 1
            result.outcomes[recording.pk] = outcome
            if outcome in (DELETED, ALREADY_GONE):
                freed.add(
                    recording.size_in_bytes,
                    str(recording.cost_in_dollars) if recording.cost_in_dollars else None,
                )
    failed = counts["failed"]
    ActionRun.objects.filter(pk=run.pk).update(
        changes=freed_added(run.changes, freed),
        done=sum(counts.values()),
        counts=dict(counts),
        errors=failed,
        error="\n".join(f"{f['name']}: {f['message']}" for f in failures)[:4000],
        failures=failures[:500],
        finished_at=timezone.now(),
        state=ActionRun.State.FINISHED_WITH_ERRORS if failed else ActionRun.State.SUCCEEDED,
    )
    result.counts.update(counts)
    result.failures.extend(failures)
    for recording in rows:
        if result.outcomes.get(recording.pk) in (DELETED, ALREADY_GONE):
            result.freed.add(
                recording.size_in_bytes,
                str(recording.cost_in_dollars) if recording.cost_in_dollars else None,
            )
