"""Token refresh: mirror the moderator and guest tokens of conferences, a batch at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from rooms.audit import bulk_record
from rooms.locks import Flight
from rooms.models import AuditEntry, Conference, ConferenceToken, SyncRun, SyncState
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError
from rooms.sync.pages import WRITE_CHUNK, wide_batches
from rooms.sync.runs import Progress, SyncAborted, note_error, save_run

Action = AuditEntry.Action
TOKEN_BATCH = 100


class TokenSync:
    """Mirror conference tokens, a batch of conferences at a time."""

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
        with wide_batches():
            while True:
                batch = list(
                    conferences.filter(pk__gt=last_pk)
                    .order_by("pk")
                    .values_list("pk", "remote_id", "name")[:TOKEN_BATCH]
                )
                if not batch:
                    break
                last_pk = batch[-1][0]
                fetched: dict[int, list[dict[str, Any]]] = {}
                asked: dict[int, datetime] = {}
                for pk, remote_id, name in batch:
                    if self.flight.lost:
                        raise SyncAborted("Lost the sync lock; stopped so two runs never overlap.")
                    try:
                        asked[pk] = timezone.now()
                        fetched[pk] = self.client.list_conference_tokens(remote_id)
                    except NotFoundError:
                        self.error(f"{name}: SignalWire no longer has conference {remote_id}.")
                with transaction.atomic():
                    self.write({pk: name for pk, _, name in batch}, fetched, asked)
                    self.run_record.pages += 1
                    save_run(self.run_record)
                if self.progress is not None:
                    self.progress(self.run_record)

    def error(self, reason: str) -> None:
        note_error(self.run_record, self.reasons, reason)

    def write(
        self,
        names: dict[int, str],
        fetched: dict[int, list[dict[str, Any]]],
        asked: dict[int, datetime],
    ) -> None:
        """Upsert the fetched tokens and drop local ones SignalWire no longer lists.

        A token rotated here after its conference's listing was asked for (a reset while
        the batch was fetched) keeps its newer value; the listing is older than it.
        """
        run = self.run_record
        now = timezone.now()
        incoming: dict[str, tuple[int, dict[str, Any]]] = {}
        refused: set[str] = set()
        for conference_pk, tokens in fetched.items():
            for answer in tokens:
                try:
                    values = payloads.token_fields(answer)
                except Exception as exc:  # one odd token must not stop the batch
                    self.error(f"A token of {names[conference_pk]} is not readable ({exc}).")
                    continue
                problem = payloads.listed_row_problem(
                    {**answer, "id": values["remote_id"]}, refuses_nul=self.refuses_nul
                )
                if problem is None and len(values["token"]) > 255:
                    problem = "token is longer than 255 characters"
                if problem is not None:
                    # Listed, so never dropped; a mirrored token keeps its last values.
                    refused.add(values["remote_id"])
                    self.error(
                        f"Token {payloads.shown_id(values['remote_id'])}: not stored "
                        f"because {problem}."
                    )
                    continue
                incoming[values["remote_id"]] = (conference_pk, values)
        run.seen += len(incoming)
        existing: dict[str, ConferenceToken] = {
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
        creates: list[ConferenceToken] = []
        updates: list[ConferenceToken] = []
        entries: list[tuple[ConferenceToken, int, dict[str, list[Any]] | None]] = []
        for remote_id, (conference_pk, values) in incoming.items():
            conference = Conference(pk=conference_pk, name=names[conference_pk])
            if remote_id not in existing:
                token = ConferenceToken(conference=conference, last_synced_at=now, **values)
                creates.append(token)
                entries.append((token, Action.CREATE, None))
                continue
            token = existing.pop(remote_id)
            if token.rotated_at is not None and token.rotated_at >= asked[conference_pk]:
                run.unchanged += 1
                continue
            changes: dict[str, list[Any]] = {}
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
        stale = [
            t.pk for t in existing.values()
            if t.conference_id in fetched and t.remote_id not in refused
        ]
        if stale:
            # Tokens are not pushed anywhere, so auditlog's own delete entries (masked)
            # are the record here.
            for start in range(0, len(stale), WRITE_CHUNK):
                ConferenceToken.objects.filter(pk__in=stale[start : start + WRITE_CHUNK]).delete()
        run.created += len(creates)
        run.updated += len(updates)
        run.marked_deleted += len(stale)

