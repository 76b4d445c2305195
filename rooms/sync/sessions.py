"""Mirror room sessions and their members: a cheap live refresh and an incremental history.

The live refresh lists only `status=in-progress` sessions (plus those it last saw live),
so its cost grows with the meetings going on, never with all rooms or all history. The
history sync reads completed sessions newest first (the engine's second shape) and stops
after the first page that holds a session already mirrored unchanged. Members are listed
under each session written. Every call to SignalWire happens outside a transaction; each
batch is written in one short transaction with a bounded number of queries. Unknown
fields and values stay in `raw`; a row that cannot be read is counted as an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from rooms.locks import Flight
from rooms.models import Conference, Room, RoomSession, SessionMember, Space, SyncRun
from rooms.models.sessions import COMPLETED, LIVE
from rooms.registry import MEMBER, SESSION
from rooms.services.usage import refresh_session_usage, session_key
from rooms.signalwire import payloads
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError, SignalWireError
from rooms.signalwire.sessions import member_totals
from rooms.sync.engine import NewestFirstSync, newest_first_run
from rooms.sync.runs import Progress, locked_run

# Sessions written per transaction.
WRITE_BATCH = 500
SESSION_FIELDS = (
    "conference_id", "room_id", "remote_room_id", "room_name", "status", "start_time",
    "end_time", "duration", "locked", "cost_in_dollars", "remote_updated_at", "raw", "sync_note",
)
MEMBER_TOTALS = ("members_now", "member_count", "member_seconds")
MEMBER_FIELDS = (
    "name", "join_time", "leave_time", "duration", "cost_in_dollars", "raw", "sync_note",
)


def sessions_sync_history(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    full: bool = False,
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Mirror a Space's completed sessions new or changed since the last run (all if `full`)."""

    return newest_first_run(
        SessionSync, SyncRun.Kind.SESSIONS, client=client, trigger=trigger, page_size=page_size,
        full=full, progress=progress, space=space,
    )


def sessions_refresh_live(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    progress: Progress | None = None,
    space: Space | None = None,
) -> SyncRun:
    """Refresh a Space's sessions in progress and their members; close those that ended."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        SessionSync(run, flight, api, progress).refresh_live()

    return locked_run(SyncRun.Kind.LIVE_SESSIONS, trigger, client, work, space)


def sessions_link_owners(space_id: int) -> int:
    """Link a Space's sessions mirrored before their conference or room was; return how many."""
    orphans = RoomSession.objects.filter(
        space_id=space_id, conference__isnull=True, room__isnull=True
    )
    linked = 0
    with transaction.atomic():
        for model, field in ((Conference, "conference"), (Room, "room")):
            mine = model.objects.filter(space_id=space_id)
            by_id = mine.filter(remote_id=OuterRef("remote_room_id")).values("pk")[:1]
            by_name = mine.filter(name=OuterRef("room_name")).values("pk")[:1]
            for matching, owner in (
                (orphans.exclude(remote_room_id="").filter(Exists(by_id)), by_id),
                (orphans.filter(remote_room_id="").filter(Exists(by_name)), by_name),
            ):
                if matching.exists():  # an unchanged mirror gets no UPDATE at all
                    linked += matching.update(**{f"{field}_id": Subquery(owner)})
    return linked


class SessionSync(NewestFirstSync):
    """The sessions' history (newest first), the live refresh, and members under each."""

    mirror = SESSION
    version_columns = ("remote_updated_at", "status")
    noun = "session"

    def pages(self, *, page_size: int | None, full: bool) -> Iterator[list[dict[str, Any]]]:
        return SESSION.pages(self.client, status=COMPLETED, page_size=page_size)

    def version(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """Its update time and status."""
        text = payloads.remote_text
        return (text(row.get("updated_at")), text(row.get("status")))

    def store(self, rows: list[dict[str, Any]]) -> None:
        store_sessions(self.run_record, rows, self.fetch_members(rows), timezone.now())

    def finish(self, *, full: bool, complete: bool) -> None:
        self.run_record.updated += sessions_link_owners(self.space_id)

    def refresh_live(self) -> None:
        """Read the live listing and each session that left it, then write them all."""
        run = self.run_record
        rows: list[dict[str, Any]] = []
        # One set for every page: the rows are stored together, so a repeat on any page
        # would be written twice.
        listed: set[str] = set()
        for page in SESSION.pages(self.client, status=LIVE):
            run.pages += 1
            run.seen += len(page)
            rows.extend(self.readable(page, listed))
        ended = RoomSession.objects.filter(space_id=self.space_id, status=LIVE).exclude(
            remote_id__in=listed
        )
        for remote_id, room_name in ended.values_list("remote_id", "room_name"):
            row = self.ended_session(remote_id, room_name)
            if row is not None:
                run.seen += 1
                rows.extend(self.readable([row], listed))
        members = self.fetch_members(rows)
        known = self.stored_versions(rows)
        store_sessions(run, rows, members, timezone.now())
        run.unchanged += sum(1 for row in rows if row["id"] in known) - run.updated
        if self.progress is not None:
            self.progress(run)

    def ended_session(self, remote_id: str, room_name: str) -> dict[str, Any] | None:
        """Read a session that left the live listing: from its room's newest, else by id."""
        try:
            if room_name:
                pages = SESSION.pages(self.client, room_name=room_name, page_size=20)
                for row in next(iter(pages), []):
                    if isinstance(row, dict) and row.get("id") == remote_id:
                        return row
            return SESSION.get(self.client, remote_id)
        except NotFoundError:
            self.error(f"Session {remote_id} is no longer in SignalWire.")
            return None

    def fetch_members(self, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """List the members under each session; one that cannot be read keeps its old ones.

        A session lists at most a few hundred members; a listing longer than
        SIGNALWIRE_MAX_SESSION_MEMBERS is not read on (an error of the run).
        """
        cap = settings.SIGNALWIRE_MAX_SESSION_MEMBERS
        members: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            shown = payloads.shown_id(row["id"])
            try:
                listed = MEMBER.list_for(self.client, row["id"], limit=cap + 1)
            except NotFoundError:
                continue
            except SignalWireError as exc:
                if exc.retryable:
                    raise
                self.error(f"Members of session {shown}: {exc}")
                continue
            if len(listed) > cap:
                self.error(
                    f"Members of session {shown}: SignalWire lists more than {cap} "
                    "(SIGNALWIRE_MAX_SESSION_MEMBERS); stopped reading them and kept the "
                    "members mirrored before."
                )
                continue
            identified = [
                m for m in listed if isinstance(m, dict) and payloads.remote_text(m.get("id"))
            ]
            members[row["id"]] = self.readable(identified, set(), noun="member")
        return members


# --- writing the mirror (short transactions, bounded queries) ---------------------------


def store_sessions(
    run: SyncRun, rows: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]],
    now: datetime,
) -> None:
    """Write sessions (and the members listed under them) in batches of WRITE_BATCH."""
    for start in range(0, len(rows), WRITE_BATCH):
        with transaction.atomic():
            _store_batch(run, rows[start : start + WRITE_BATCH], members, now)


def _store_batch(
    run: SyncRun, rows: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]],
    now: datetime,
) -> None:
    space_id: int = run.space.pk
    owners = Owners(rows, space_id)
    existing = {
        s.remote_id: s
        for s in RoomSession.objects.filter(
            space_id=space_id, remote_id__in=[row["id"] for row in rows]
        )
    }
    new: list[RoomSession] = []
    changed: list[RoomSession] = []
    # The rollup keys this batch touches: a changed session's old key and its new one.
    touched = set()
    for row in rows:
        values = SESSION.fields(row)
        values["conference_id"], values["room_id"] = owners.of(
            payloads.remote_text(row.get("room_id")), payloads.remote_text(row.get("name"))
        )
        listed = members.get(row["id"])
        if listed is not None:
            values.update(member_totals(listed))
        session = existing.get(row["id"])
        if session is None:
            new.append(
                RoomSession(space_id=space_id, remote_id=row["id"], last_synced_at=now, **values)
            )
            continue
        if any(getattr(session, name) != value for name, value in values.items()):
            touched.add(session_key(session))
            for name, value in values.items():
                setattr(session, name, value)
            session.last_synced_at = now
            changed.append(session)
    # The live refresh and the history sync may both meet a session that just ended: the
    # one that writes second updates the row the other created instead of failing its run.
    RoomSession.objects.bulk_create(
        new,
        update_conflicts=True,
        unique_fields=["space", "remote_id"],
        update_fields=[*SESSION_FIELDS, "last_synced_at"],
    )
    if changed:
        RoomSession.objects.bulk_update(
            changed, [*SESSION_FIELDS, *MEMBER_TOTALS, "last_synced_at"]
        )
    touched.update(session_key(session) for session in [*new, *changed])
    refresh_session_usage(touched)
    run.created += len(new)
    run.updated += len(changed)
    if members:
        by_remote = {s.remote_id: s for s in [*existing.values(), *new]}
        _store_members(
            space_id,
            {by_remote[rid].pk: listed for rid, listed in members.items() if rid in by_remote},
        )


def _store_members(space_id: int, members: dict[int, list[dict[str, Any]]]) -> None:
    """Create new members and update changed ones of these sessions (bounded queries)."""
    existing = {m.remote_id: m for m in SessionMember.objects.filter(session_id__in=list(members))}
    new: list[SessionMember] = []
    changed: list[SessionMember] = []
    seen: set[str] = set()
    for session_pk, listed in members.items():
        for row in listed:
            remote_id = row["id"]
            if remote_id in seen:
                continue
            seen.add(remote_id)
            values = MEMBER.fields(row)
            member = existing.get(remote_id)
            if member is None:
                new.append(
                    SessionMember(
                        space_id=space_id, session_id=session_pk, remote_id=remote_id, **values
                    )
                )
            elif any(getattr(member, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(member, name, value)
                changed.append(member)
    SessionMember.objects.bulk_create(
        new, update_conflicts=True, unique_fields=["space", "remote_id"],
        update_fields=list(MEMBER_FIELDS),
    )
    if changed:
        SessionMember.objects.bulk_update(changed, list(MEMBER_FIELDS))


class Owners:
    """The conference or room each session belongs to, looked up once per batch."""

    def __init__(self, rows: list[dict[str, Any]], space_id: int) -> None:
        text = payloads.remote_text
        ids = {text(row.get("room_id")) for row in rows} - {""}
        names = {text(row.get("name")) for row in rows} - {""}
        conferences = Conference.objects.filter(space_id=space_id)
        rooms = Room.objects.filter(space_id=space_id)
        self.conference_ids = dict(
            conferences.filter(remote_id__in=ids).values_list("remote_id", "pk")
        )
        self.room_ids = dict(rooms.filter(remote_id__in=ids).values_list("remote_id", "pk"))
        self.conference_names = dict(
            conferences.filter(name__in=names).values_list("name", "pk")
        )
        self.room_names = dict(rooms.filter(name__in=names).values_list("name", "pk"))

    def of(self, room_id: str, name: str) -> tuple[int | None, int | None]:
        """Return (conference pk, room pk): by SignalWire's room id, else by room name."""
        if room_id and (room_id in self.conference_ids or room_id in self.room_ids):
            return self.conference_ids.get(room_id), self.room_ids.get(room_id)
        return self.conference_names.get(name), self.room_names.get(name)
