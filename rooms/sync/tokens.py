"""Token refresh: mirror the moderator and guest tokens listed under each conference.

The engine's third shape (a listing under each parent), a batch of conferences at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from rooms.audit import bulk_record
from rooms.locks import Flight
from rooms.models import AuditEntry, Conference, ConferenceToken, Space, SyncRun
from rooms.registry import TOKEN
from rooms.signalwire.client import SignalWireClient
from rooms.sync.engine import UnderParentSync, live_parents
from rooms.sync.pages import WRITE_CHUNK
from rooms.sync.runs import Progress, locked_run

Action = AuditEntry.Action


def sync_conference_tokens(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    missing_only: bool = False,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Mirror a Space's conference tokens (only of conferences without any, if asked)."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        TokenSync(run, flight, api, progress, missing_only=missing_only).run()

    return locked_run(SyncRun.Kind.TOKENS, trigger, client, work, space)


class TokenSync(UnderParentSync):
    """Mirror conference tokens, a batch of conferences at a time."""

    mirror = TOKEN
    noun = "Token"

    def __init__(
        self,
        run: SyncRun,
        flight: Flight,
        client: SignalWireClient,
        progress: Progress | None,
        *,
        missing_only: bool = False,
    ) -> None:
        super().__init__(run, flight, client, progress)
        self.missing_only = missing_only

    def parents(self) -> Iterator[tuple[str, QuerySet[Any]]]:
        """The live conferences (only those with no token mirrored, if asked)."""
        conferences = live_parents(Conference, self.space_id)
        if self.missing_only:
            conferences = conferences.filter(
                ~Exists(ConferenceToken.objects.filter(conference=OuterRef("pk")))
            )
        yield "conference", conferences

    def fetch(self, kind: str, remote_id: str) -> list[dict[str, Any]]:
        return TOKEN.list_for(self.client, remote_id)

    def unreadable(self, parent_name: str, exc: Exception) -> str:
        return f"A token of {parent_name} is not readable ({exc})."

    def too_long(self, values: dict[str, Any]) -> str | None:
        return "token is longer than 255 characters" if len(values["token"]) > 255 else None

    def write(
        self,
        kind: str,
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
        incoming = self.read(names, fetched)
        existing: dict[str, ConferenceToken] = {
            token.remote_id: token
            for token in ConferenceToken.objects.filter(conference_id__in=list(fetched))
        }
        # Tokens that moved from another conference; a Space may list any number of them.
        existing.update(self.by_remote_id([rid for rid in incoming if rid not in existing]))
        creates: list[ConferenceToken] = []
        updates: list[ConferenceToken] = []
        entries: list[tuple[ConferenceToken, int, dict[str, list[Any]] | None]] = []
        for remote_id, (conference_pk, values) in incoming.items():
            conference = Conference(
                pk=conference_pk, space_id=self.space_id, name=names[conference_pk]
            )
            if remote_id not in existing:
                token = ConferenceToken(
                    space_id=self.space_id, conference=conference, last_synced_at=now, **values
                )
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
            if t.conference_id in fetched and t.remote_id not in self.refused
        ]
        if stale:
            # Tokens are not pushed anywhere, so auditlog's own delete entries (masked)
            # are the record here.
            for start in range(0, len(stale), WRITE_CHUNK):
                ConferenceToken.objects.filter(pk__in=stale[start : start + WRITE_CHUNK]).delete()
        run.created += len(creates)
        run.updated += len(updates)
        run.marked_deleted += len(stale)

