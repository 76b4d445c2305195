"""Stream writes: remote first, then the local mirror, one short transaction each.

A stream belongs to a conference or a room and has no name, so it is created on, found
in and listed by its owner (rooms.registry.StreamResource). Like the conference and room
services, an edit records its intent (rooms.intents) before SignalWire is asked, asks
with no transaction open, and stores the answer in a second short transaction; when
SignalWire cannot be reached the edit is kept pending and rooms.tasks.push lands it.

Never duplicated: a create whose answer was lost is found again among the owner's
streams by its url (skipping streams another local row already holds) before any new
POST. The url is a secret: the audit trail masks it (rooms.models registers Stream with
a mask), log lines and errors here never carry it, and revealing it is audited.
"""

from __future__ import annotations

import logging
from typing import Any

from auditlog.context import disable_auditlog
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.db.models import QuerySet

from rooms import audit, intents, outbox
from rooms.models import (
    AuditEntry,
    Conference,
    RemoteIntent,
    Room,
    Stream,
    SyncState,
)
from rooms.registry import STREAM
from rooms.services import (
    PUSH_ROUNDS,
    TASK_LOCK_WAIT,
    RowBusyError,
    acting,
    api_client,
    form_error,
    push_mark_failed,
    row_lock,
)
from rooms.services.common import absorb_answer, note_queued, replay_row_intents
from rooms.services.mirror import delete_remote_object, keep_pending_delete
from rooms.services.pushes import REFUSED, refusal_text
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import (
    NotFoundError,
    SignalWireError,
)
from rooms.signalwire.errors import ValidationError as RemoteValidationError

logger = logging.getLogger("rooms.services.streams")

Owner = Conference | Room
# A web request waits this long at most for another push of the same stream.
INTERACTIVE_LOCK_WAIT = TASK_LOCK_WAIT
NOT_IN_SIGNALWIRE = (
    "This {kind} is not in SignalWire yet (its creation is still pending), so it cannot "
    "have a stream. Try again once it is synced."
)


ALREADY_STREAMS = (
    "This {kind} already has a stream to this URL (a form sent twice adds it once); "
    "nothing was added."
)


class OwnerNotReady(RowBusyError):
    """The stream's owner has no SignalWire id yet; its push waits for the owner's."""

    default_message = "the stream's conference or room is not in SignalWire yet"


def _streams_to(owner: Owner, kind: str, url: str) -> QuerySet[Stream]:
    """The owner's streams (not deleted in SignalWire) that send to this URL."""
    return Stream.objects.filter(**{kind: owner}, url=url).exclude(
        sync_state=SyncState.DELETED_REMOTELY
    )


def owner_kind_of(owner: Owner) -> str:
    """Say "conference" or "room" for a stream owner."""
    return Stream.OwnerKind.CONFERENCE if isinstance(owner, Conference) else Stream.OwnerKind.ROOM


def _forget(stream: Stream, intent: RemoteIntent | None) -> None:
    """Drop a row SignalWire never took, leaving no audit entry (nothing was created)."""
    with disable_auditlog(), transaction.atomic():
        Stream.objects.filter(pk=stream.pk).delete()
        intents.drop(intent)


# --- create, update, delete ------------------------------------------------------------


def stream_create(
    *,
    owner: Owner,
    url: str,
    actor: audit.Actor = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Stream:
    """Add a stream to a conference or room in SignalWire, then mirror it (pending if down).

    The result's sync_state tells which: synced, or pending push when SignalWire could
    not be reached (the push task lands it later, finding a lost create by its url).
    """
    kind = owner_kind_of(owner)
    # A stream lives in its owner's Space.
    stream = Stream(url=url, space_id=owner.space_id, **{kind: owner})
    stream.full_clean()
    if not owner.remote_id or owner.sync_state in (
        SyncState.PENDING_DELETE, SyncState.DELETED_REMOTELY
    ):
        raise DjangoValidationError(NOT_IN_SIGNALWIRE.format(kind=kind))
    with acting(source, actor):
        client = api_client(client, space=owner.space)
        # Stored first (quietly: the create is recorded once its outcome is known), so the
        # intent names the row and a lost answer is replayed onto it, never onto a new one.
        stream.sync_state = SyncState.PENDING_PUSH
        stream.local_version = 1
        with disable_auditlog(), transaction.atomic():
            # The owner's row lock makes two concurrent adds of one URL check in turn.
            type(owner).objects.select_for_update().filter(pk=owner.pk).exists()
            if _streams_to(owner, kind, url).exists():
                raise DjangoValidationError({"url": ALREADY_STREAMS.format(kind=kind)})
            stream.save()
            intent = intents.record(
                kind=STREAM.kind, model=Stream, action=RemoteIntent.Action.CREATE,
                # The owner too, so the intent says whose stream it was (a replay never
                # rebuilds a row deleted since: rooms.intents.replay drops its intent).
                row=stream, data={"url": url, f"{kind}_id": owner.pk},
            )
        try:
            answer = STREAM.create_for(client, kind, owner.remote_id, STREAM.create_body(stream))
        except RemoteValidationError as exc:
            _forget(stream, intent)
            # Its messages go on the form: SignalWire may echo the key without the URL.
            STREAM.hide_secrets(stream, exc)
            raise form_error(exc, Stream) from exc
        except NotFoundError as exc:
            _forget(stream, intent)
            raise DjangoValidationError(
                f"This {kind} no longer exists in SignalWire; no stream was added."
            ) from exc
        except SignalWireError as exc:
            if not exc.retryable:
                _forget(stream, intent)
                STREAM.hide_secrets(stream, exc)
                raise
            stream.last_error = STREAM.error_text(stream, exc)
            logger.info(
                "stream %s of %s %s left pending: %s", stream.pk, kind, owner.pk,
                stream.last_error,
            )
            with transaction.atomic():
                with disable_auditlog():
                    stream.save(update_fields=["last_error", "updated_at"])
                audit.bulk_record(model=Stream, entries=[(stream, AuditEntry.Action.CREATE, None)])
                intents.drop(intent)
                outbox.push_after_commit(STREAM.kind, stream.pk, report=note_queued(stream))
            return stream
        written = absorb_answer(STREAM, stream, answer)
        with transaction.atomic():
            with disable_auditlog():
                stream.save(update_fields=[*written, "updated_at"])
            audit.bulk_record(model=Stream, entries=[(stream, AuditEntry.Action.CREATE, None)])
            intents.drop(intent)
        return stream


def stream_update(
    *,
    stream: Stream,
    url: str,
    actor: audit.Actor = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> Stream:
    """Change a stream's url in SignalWire, then locally; the result's sync_state tells which."""
    with acting(source, actor):
        current = STREAM.rows().get(pk=stream.pk)
        if current.sync_state == SyncState.PENDING_DELETE:
            raise DjangoValidationError(
                "This stream is waiting to be deleted in SignalWire; it cannot be edited."
            )
        if current.url == url and current.sync_state == SyncState.SYNCED:
            return current
        replaced = current.url  # a secret too: masked in what SignalWire answers
        current.url = url
        current.full_clean(exclude=["conference", "room"])
        wait = INTERACTIVE_LOCK_WAIT if getattr(client, "profile", None) == "interactive" else None
        intent = None
        try:
            with row_lock(STREAM.kind, current.pk, wait=wait):
                fresh = STREAM.rows().get(pk=current.pk)
                replaced = fresh.url
                previous_state = fresh.sync_state
                before = {"url": fresh.url}
                fresh.url = url
                current = fresh
                client = api_client(client, space=current.space)
                intent = intents.record(
                    kind=STREAM.kind, model=Stream, action=RemoteIntent.Action.UPDATE,
                    row=current, data={"url": url}, before=before,
                )
                if not current.remote_id:
                    # Its create is still pending: the push creates it with this url.
                    raise OwnerNotReady("the stream's create is still on its way")
                answer = STREAM.update(client, current.remote_id, STREAM.update_body(current))
        except RemoteValidationError as exc:
            if intent is not None:
                intents.withdraw(model=Stream, intent=intent, previous_state=previous_state)
            STREAM.hide_secrets(current, exc, replaced)
            raise form_error(exc, Stream) from exc
        except NotFoundError as exc:
            intents.drop(intent)
            Stream.objects.filter(pk=current.pk).update(
                sync_state=SyncState.DELETED_REMOTELY,
                last_error=STREAM.error_text(current, exc, replaced),
            )
            raise DjangoValidationError(
                "This stream no longer exists in SignalWire; nothing was changed."
            ) from exc
        except SignalWireError as exc:
            if not exc.retryable:
                if intent is not None:
                    intents.withdraw(model=Stream, intent=intent, previous_state=previous_state)
                STREAM.hide_secrets(current, exc, replaced)
                raise
            current.sync_state = SyncState.PENDING_PUSH
            current.last_error = STREAM.error_text(current, exc, replaced)
            current.local_version += 1
            with transaction.atomic():
                current.save(update_fields=[
                    "url", "sync_state", "last_error", "local_version", "updated_at"
                ])
                intents.drop(intent)
                outbox.push_after_commit(STREAM.kind, current.pk, report=note_queued(current))
            return current
        written = absorb_answer(STREAM, current, answer)
        current.local_version += 1
        with transaction.atomic():
            current.save(update_fields=["url", *written, "local_version", "updated_at"])
            intents.drop(intent)
        return current


def stream_delete(
    *,
    stream: Stream,
    actor: audit.Actor = None,
    source: str = AuditEntry.Source.ADMIN,
    client: SignalWireClient | None = None,
) -> bool:
    """Delete a stream in SignalWire, then locally; False when left pending delete."""
    with acting(source, actor):
        current = STREAM.rows().filter(pk=stream.pk).first()
        if current is None:
            return True
        wait = INTERACTIVE_LOCK_WAIT if getattr(client, "profile", None) == "interactive" else None
        intent = None
        try:
            with row_lock(STREAM.kind, current.pk, wait=wait):
                client = api_client(client, space=current.space)
                intent = intents.record(
                    kind=STREAM.kind, model=Stream, action=RemoteIntent.Action.DELETE,
                    row=current, data={},
                )
                delete_remote_object(STREAM, current, client)
        except SignalWireError as exc:
            if not exc.retryable:
                if intent is not None:
                    intents.withdraw(model=Stream, intent=intent, previous_state=current.sync_state)
                STREAM.hide_secrets(current, exc)
                raise
            keep_pending_delete(STREAM, stream, current, exc, intent)
            return False
        pk = current.pk
        with transaction.atomic():
            current.delete()
            # Every intent of the row, not only this delete's: a create intent left by a
            # lost answer would otherwise be replayed into a new row and a new stream.
            intents.drop_row(kind=STREAM.kind, pk=pk)
        return True


def stream_url_reveal(
    *, stream: Stream, actor: audit.Actor = None, source: str = AuditEntry.Source.ADMIN
) -> str:
    """Return a stream's url and record who saw it (never the url itself)."""
    with acting(source, actor), transaction.atomic():
        audit.record_event(obj=stream, event="reveal")
    return stream.url


# --- pushes (run by the stream tasks of rooms.tasks.push) ------------------------------


def _land(stream: Stream, client: SignalWireClient) -> dict[str, Any]:
    """Send a pending stream to SignalWire: replace it, or find a lost create, or create it."""
    if stream.remote_id:
        return STREAM.update(client, stream.remote_id, STREAM.update_body(stream))
    kind, owner_id = STREAM.owner_route(stream)
    if not owner_id:
        raise OwnerNotReady()
    found = STREAM.find_for(client, kind, owner_id, stream.url, taken=STREAM.taken_ids(stream))
    if found is not None:
        logger.info("stream %s: its earlier create was found in SignalWire", stream.pk)
        return found
    return STREAM.create_for(client, kind, owner_id, STREAM.create_body(stream))


def stream_push(
    *, pk: int, version: int | None = None, client: SignalWireClient | None = None
) -> str:
    """Land a pending stream; the newest local version wins. Retryable errors propagate."""
    with acting(AuditEntry.Source.PUSH, None):
        with row_lock(STREAM.kind, pk, wait=TASK_LOCK_WAIT):
            replay_row_intents(STREAM, pk)
            for _ in range(PUSH_ROUNDS):
                row = STREAM.rows().filter(pk=pk).first()
                if row is None or row.sync_state != SyncState.PENDING_PUSH:
                    return "nothing to push"
                pushed = row.local_version
                Stream.objects.filter(pk=pk).update(push_attempts=models.F("push_attempts") + 1)
                try:
                    client = api_client(client, space=row.space)
                    answer = _land(row, client)
                except REFUSED as exc:
                    reason = STREAM.error_text(row, refusal_text(row, exc))
                    push_mark_failed(kind=STREAM.kind, pk=pk, error=reason)
                    return "failed"
                except SignalWireError as exc:
                    Stream.objects.filter(pk=pk).update(last_error=STREAM.error_text(row, exc))
                    STREAM.hide_secrets(row, exc)
                    raise
                with transaction.atomic():
                    fresh = Stream.objects.select_for_update().filter(pk=pk).first()
                    if fresh is None:
                        return "deleted meanwhile"
                    if fresh.local_version == pushed:
                        written = absorb_answer(STREAM, fresh, answer)
                        fresh.save(update_fields=[*written, "updated_at"])
                        return "pushed"
                    # Edited again while SignalWire answered: keep the identity, push again.
                    Stream.objects.filter(pk=pk, remote_id__isnull=True).update(
                        remote_id=str(answer["id"])
                    )
            raise RowBusyError("the stream kept changing while it was pushed")
