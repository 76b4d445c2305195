"""Mirror room sessions and their members: a cheap live refresh and an incremental history.

The live refresh lists only `status=in-progress` sessions (plus those it last saw live),
so its cost grows with the meetings going on, never with all rooms or all history. The
history sync reads completed sessions newest first and stops after the first page that
holds a session already mirrored unchanged, so a run touches only what is new or changed.
Every call to SignalWire happens outside a transaction; each batch is written in one
short transaction with a bounded number of queries. Unknown fields and values stay in
`raw`; a row that cannot be read is counted as an error, never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from rooms.locks import Flight
from rooms.models import Conference, Room, RoomSession, SessionMember, SyncRun
from rooms.models.sessions import COMPLETED, LIVE
from rooms.signalwire import activity, payloads
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import NotFoundError, SignalWireError
from rooms.sync.runs import add_error

logger = logging.getLogger("rooms.sessions")

Kind = SyncRun.Kind
Progress = Callable[[SyncRun], None]
# Sessions written per transaction.
WRITE_BATCH = 500
SESSION_FIELDS = (
    "conference_id",
    "room_id",
    "remote_room_id",
    "room_name",
    "status",
    "start_time",
    "end_time",
    "duration",
    "locked",
    "cost_in_dollars",
    "remote_updated_at",
    "raw",
    "sync_note",
)
MEMBER_TOTALS = ("members_now", "member_count", "member_seconds")
MEMBER_FIELDS = (
    "name", "join_time", "leave_time", "duration", "cost_in_dollars", "raw", "sync_note",
)
# Payload keys of a session and of a member that are read as values, and the field each fills.
SESSION_CHECKED = {
    "start_time": "start_time", "end_time": "end_time", "duration": "duration",
    "cost_in_dollars": "cost_in_dollars",
}
MEMBER_CHECKED = {
    "join_time": "join_time", "leave_time": "leave_time", "duration": "duration",
    "cost_in_dollars": "cost_in_dollars",
}


# --- public services --------------------------------------------------------------------


def sessions_sync_history(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    page_size: int | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncRun:
    """Mirror completed sessions new or changed since the last run (all of them if `full`)."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        for page in activity.iter_session_pages(api, status=COMPLETED, page_size=page_size):
            run.pages += 1
            run.seen += len(page)
            rows = readable_rows(run, page, set(), kind="session")
            known = _known(rows)
            changed = [row for row in rows if known.get(row["id"]) != _version(row)]
            members = _fetch_members(run, api, changed)
            _store(run, changed, members, timezone.now())
            run.unchanged += len(rows) - len(changed)
            if progress is not None:
                progress(run)
            if len(changed) < len(rows) and not full:
                break  # older sessions are mirrored already
        run.updated += sessions_link_owners()

    return _run(Kind.SESSIONS, trigger, client, work)


def sessions_refresh_live(
    *,
    client: SignalWireClient | None = None,
    trigger: str = "schedule",
    progress: Progress | None = None,
) -> SyncRun:
    """Refresh the sessions in progress and their members; close those that have ended."""

    def work(run: SyncRun, flight: Flight, api: SignalWireClient) -> None:
        rows: list[dict] = []
        # One set for every page: the rows are stored together, so a repeat on any page
        # would be written twice.
        listed: set[str] = set()
        for page in activity.iter_session_pages(api, status=LIVE):
            run.pages += 1
            run.seen += len(page)
            rows.extend(readable_rows(run, page, listed, kind="session"))
        ended = RoomSession.objects.filter(status=LIVE).exclude(remote_id__in=listed)
        for remote_id, room_name in ended.values_list("remote_id", "room_name"):
            row = _ended_session(run, api, remote_id, room_name)
            if row is not None:
                run.seen += 1
                rows.extend(readable_rows(run, [row], listed, kind="session"))
        members = _fetch_members(run, api, rows)
        known = _known(rows)
        _store(run, rows, members, timezone.now())
        run.unchanged += sum(1 for row in rows if row["id"] in known) - run.updated
        if progress is not None:
            progress(run)

    return _run(Kind.LIVE_SESSIONS, trigger, client, work)


def sessions_link_owners() -> int:
    """Link sessions mirrored before their conference or room was; return how many."""
    orphans = RoomSession.objects.filter(conference__isnull=True, room__isnull=True)
    linked = 0
    with transaction.atomic():
        for model, field in ((Conference, "conference"), (Room, "room")):
            by_id = model.objects.filter(remote_id=OuterRef("remote_room_id")).values("pk")[:1]
            by_name = model.objects.filter(name=OuterRef("room_name")).values("pk")[:1]
            for matching, owner in (
                (orphans.exclude(remote_room_id="").filter(Exists(by_id)), by_id),
                (orphans.filter(remote_room_id="").filter(Exists(by_name)), by_name),
            ):
                if matching.exists():  # an unchanged mirror gets no UPDATE at all
                    linked += matching.update(**{f"{field}_id": Subquery(owner)})
    return linked


# --- the run frame ----------------------------------------------------------------------


def _run(
    kind: str,
    trigger: str,
    client: SignalWireClient | None,
    work: Callable[[SyncRun, Flight, SignalWireClient], None],
) -> SyncRun:
    """Run under the kind's single-flight lock with a SyncRun record, as the other syncs do."""
    from rooms.sync.runs import locked_run

    return locked_run(kind, trigger, client, work)


# --- reading SignalWire (no transaction open) -------------------------------------------


def readable_rows(
    run: SyncRun, page: Iterable[Any], listed: set[str], *, kind: str
) -> list[dict]:
    """Keep the rows the database can store, each id once; count the others as errors.

    listed: ids already kept from this listing (a repeat is left out); updated in place.
    """
    refuses_nul = connection.vendor == "postgresql"
    rows = []
    for row in page:
        if not (isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"]):
            add_error(run, f"SignalWire listed a {kind} without an id; skipped it.")
            continue
        shown = payloads.shown_id(row["id"])
        if row["id"] in listed:
            add_error(run, f"{kind.capitalize()} {shown}: its id is listed twice; "
                      "the repeat was left out.")
            continue
        problem = payloads.listed_row_problem(row, refuses_nul=refuses_nul)
        if problem is not None:
            add_error(run, f"{kind.capitalize()} {shown}: not stored because {problem}.")
            continue
        listed.add(row["id"])
        rows.append(row)
    return rows


def _ended_session(
    run: SyncRun, api: SignalWireClient, remote_id: str, room_name: str
) -> dict | None:
    """Read a session that left the live listing: from its room's newest, else by id."""
    try:
        if room_name:
            pages = activity.iter_session_pages(api, room_name=room_name, page_size=20)
            for row in next(iter(pages), []):
                if isinstance(row, dict) and row.get("id") == remote_id:
                    return row
        return activity.get_session(api, remote_id)
    except NotFoundError:
        add_error(run, f"Session {remote_id} is no longer in SignalWire.")
        return None


def _fetch_members(run: SyncRun, api: SignalWireClient, rows: list[dict]) -> dict[str, list[dict]]:
    """Fetch the members of each session; one that cannot be read keeps its old members.

    A session lists at most a few hundred members; a listing longer than
    SIGNALWIRE_MAX_SESSION_MEMBERS is not read on (an error of the run).
    """
    cap = settings.SIGNALWIRE_MAX_SESSION_MEMBERS
    members: dict[str, list[dict]] = {}
    for row in rows:
        shown = payloads.shown_id(row["id"])
        try:
            listed = activity.list_session_members(api, row["id"], limit=cap + 1)
        except NotFoundError:
            continue
        except SignalWireError as exc:
            if exc.retryable:
                raise
            add_error(run, f"Members of session {shown}: {exc}")
            continue
        if len(listed) > cap:
            add_error(
                run,
                f"Members of session {shown}: SignalWire lists more than {cap} "
                "(SIGNALWIRE_MAX_SESSION_MEMBERS); stopped reading them and kept the "
                "members mirrored before.",
            )
            continue
        identified = [m for m in listed if isinstance(m, dict) and _text(m.get("id"))]
        members[row["id"]] = readable_rows(run, identified, set(), kind="member")
    return members


# --- writing the mirror (short transactions, bounded queries) ---------------------------


def _version(row: dict) -> tuple[str, str]:
    """What tells a changed session from an unchanged one: its update time and status."""
    return (_text(row.get("updated_at")), _text(row.get("status")))


def _known(rows: list[dict]) -> dict[str, tuple[str, str]]:
    """The stored version of each listed session that is mirrored already (one query)."""
    ids = [row["id"] for row in rows]
    stored = RoomSession.objects.filter(remote_id__in=ids).values_list(
        "remote_id", "remote_updated_at", "status"
    )
    return {remote_id: (updated, status) for remote_id, updated, status in stored}


def _store(run: SyncRun, rows: list[dict], members: dict[str, list[dict]], now: datetime) -> None:
    """Write sessions (and the members fetched for them) in batches of WRITE_BATCH."""
    for start in range(0, len(rows), WRITE_BATCH):
        batch = rows[start : start + WRITE_BATCH]
        with transaction.atomic():
            _store_batch(run, batch, members, now)


def _store_batch(
    run: SyncRun, rows: list[dict], members: dict[str, list[dict]], now: datetime
) -> None:
    owners = _Owners(rows)
    existing = {
        s.remote_id: s
        for s in RoomSession.objects.filter(remote_id__in=[row["id"] for row in rows])
    }
    new: list[RoomSession] = []
    changed: list[RoomSession] = []
    for row in rows:
        values = map_session(row, owners)
        listed = members.get(row["id"])
        if listed is not None:
            values.update(member_totals(listed))
        session = existing.get(row["id"])
        if session is None:
            new.append(RoomSession(remote_id=row["id"], last_synced_at=now, **values))
            continue
        if any(getattr(session, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(session, name, value)
            session.last_synced_at = now
            changed.append(session)
    # The live refresh and the history sync may both meet a session that just ended: the
    # one that writes second updates the row the other created instead of failing its run.
    RoomSession.objects.bulk_create(
        new,
        update_conflicts=True,
        unique_fields=["remote_id"],
        update_fields=[*SESSION_FIELDS, "last_synced_at"],
    )
    if changed:
        RoomSession.objects.bulk_update(
            changed, [*SESSION_FIELDS, *MEMBER_TOTALS, "last_synced_at"]
        )
    run.created += len(new)
    run.updated += len(changed)
    if members:
        by_remote = {s.remote_id: s for s in [*existing.values(), *new]}
        _store_members(
            {by_remote[rid].pk: listed for rid, listed in members.items() if rid in by_remote}
        )


def _store_members(members: dict[int, list[dict]]) -> None:
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
            values = map_member(row)
            member = existing.get(remote_id)
            if member is None:
                new.append(SessionMember(session_id=session_pk, remote_id=remote_id, **values))
            elif any(getattr(member, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(member, name, value)
                changed.append(member)
    SessionMember.objects.bulk_create(
        new, update_conflicts=True, unique_fields=["remote_id"], update_fields=list(MEMBER_FIELDS)
    )
    if changed:
        SessionMember.objects.bulk_update(changed, list(MEMBER_FIELDS))


class _Owners:
    """The conference or room each session belongs to, looked up once per batch."""

    def __init__(self, rows: list[dict]) -> None:
        ids = {_text(row.get("room_id")) for row in rows} - {""}
        names = {_text(row.get("name")) for row in rows} - {""}
        self.conference_ids = dict(
            Conference.objects.filter(remote_id__in=ids).values_list("remote_id", "pk")
        )
        self.room_ids = dict(Room.objects.filter(remote_id__in=ids).values_list("remote_id", "pk"))
        self.conference_names = dict(
            Conference.objects.filter(name__in=names).values_list("name", "pk")
        )
        self.room_names = dict(Room.objects.filter(name__in=names).values_list("name", "pk"))

    def of(self, room_id: str, name: str) -> tuple[int | None, int | None]:
        """Return (conference pk, room pk): by SignalWire's room id, else by room name."""
        if room_id and (room_id in self.conference_ids or room_id in self.room_ids):
            return self.conference_ids.get(room_id), self.room_ids.get(room_id)
        return self.conference_names.get(name), self.room_names.get(name)


# --- payload mapping --------------------------------------------------------------------


def map_session(row: dict, owners: _Owners) -> dict[str, Any]:
    """Turn a session payload into field values; odd values become None, raw keeps all."""
    room_id, name = _text(row.get("room_id")), _text(row.get("name"))
    conference_pk, room_pk = owners.of(room_id, name)
    values = {
        "conference_id": conference_pk,
        "room_id": room_pk,
        "remote_room_id": room_id[:64],
        "room_name": name[:100],
        "status": _text(row.get("status"))[:40],
        "start_time": _moment(row.get("start_time")),
        "end_time": _moment(row.get("end_time")),
        "duration": _seconds(row.get("duration")),
        "locked": row.get("locked") if isinstance(row.get("locked"), bool) else None,
        "cost_in_dollars": _money(row.get("cost_in_dollars")),
        "remote_updated_at": _text(row.get("updated_at"))[:40],
        "raw": row,
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, SESSION_CHECKED)
    return values


def map_member(row: dict) -> dict[str, Any]:
    """Turn a member payload into field values; odd values become None, raw keeps all."""
    values = {
        "name": _text(row.get("name"))[:255],
        "join_time": _moment(row.get("join_time")),
        "leave_time": _moment(row.get("leave_time")),
        "duration": _seconds(row.get("duration")),
        "cost_in_dollars": _money(row.get("cost_in_dollars")),
        "raw": row,
    }
    values["sync_note"] = payloads.unknown_values_note(row, values, MEMBER_CHECKED)
    return values


def member_totals(members: list[dict]) -> dict[str, int]:
    """Members present, members in all, and the seconds of those who left (each id once)."""
    unique: dict[Any, dict] = {}
    for member in members:
        unique.setdefault(member.get("id"), member)
    present = sum(1 for m in unique.values() if m.get("leave_time") is None)
    seconds = sum(_seconds(m.get("duration")) or 0 for m in unique.values())
    return {"members_now": present, "member_count": len(unique), "member_seconds": seconds}


# Read as SignalWire's other payloads are (odd values become None; raw keeps them).
_text = payloads.remote_text
_moment = payloads.parse_remote_datetime
_seconds = payloads.remote_seconds
_money = payloads.remote_money
