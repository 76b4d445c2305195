"""The remote resources the portal mirrors: one typed class per kind, read by every layer.

Each entry says which model mirrors the resource, the shape of its listing (which the
sync engine, rooms.sync.engine, follows), how an answer becomes field values, which
client calls read it, whether its changes are audited and its SyncRun kind. An editable
resource (a Resource) also says how a row becomes a request body, which calls create,
replace, delete and find it, and which Celery tasks push it. Services, the sync, the push
tasks, the outbox and the tests all look resources up here, so a new resource is one new
class (and its model), not edits in five places.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django.db import models

from rooms import outbox
from rooms.models import (
    Conference,
    ConferenceToken,
    Recording,
    Room,
    RoomSession,
    SessionMember,
    Stream,
    SyncRun,
    VideoLog,
)
from rooms.secrets import mask_secrets_in
from rooms.signalwire import logs as remote_logs
from rooms.signalwire import payloads, schema
from rooms.signalwire import recordings as remote_recordings
from rooms.signalwire import sessions as remote_sessions
from rooms.signalwire.errors import NotFoundError, SignalWireError
from rooms.signalwire.errors import ValidationError as RemoteValidationError
from rooms.stream_urls import mask_stream_urls_in

if TYPE_CHECKING:
    from rooms.signalwire.client import SignalWireClient

M = TypeVar("M", bound=models.Model)


def conference_token_values(conference_id: int | None) -> list[str]:
    """The token values of a conference, to mask in what SignalWire answered about it."""
    if not conference_id:
        return []
    return list(
        ConferenceToken.objects.filter(conference_id=conference_id).values_list("token", flat=True)
    )


def mask_error(exc: SignalWireError, mask: Any) -> None:
    """Apply a masking function to an error's message and to each 422 message it carries."""
    exc.message = mask(exc.message)
    exc.args = (exc.message, *exc.args[1:])
    if isinstance(exc, RemoteValidationError):
        exc.field_errors = {
            field: [mask(m) for m in messages] for field, messages in exc.field_errors.items()
        }
        exc.non_field_errors = [mask(m) for m in exc.non_field_errors]


class Shape(enum.Enum):
    """The three shapes of listing the Video API has, each followed by one engine class."""

    FULL_LISTING = "a full listing, reconciled: new, changed, deleted remotely, restored"
    NEWEST_FIRST = "newest first, read until mirrored; what is unfinished read again"
    UNDER_PARENT = "listed under a parent row: a conference, a room, a session"


class Mirror(ABC, Generic[M]):
    """What the sync engine needs of a mirrored resource: shape, model, mapping, run kind."""

    kind: ClassVar[str]
    """The singular name used in intents, locks, outbox calls and audit rows."""
    sync_kind: ClassVar[str]
    """The SyncRun kind of its periodic listing."""
    model: type[M]
    shape: ClassVar[Shape]
    audited: ClassVar[bool] = True
    """Whether the sync writes an audit entry for each row it creates or changes."""

    @abstractmethod
    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Model field values from one of SignalWire's answers."""

    def audited_rows(self, rows: models.QuerySet[M]) -> models.QuerySet[M]:
        """The rows with what their audit entries read joined (one query for any number)."""
        return rows


class Resource(Mirror[M]):
    """How one mirrored model that the portal also edits maps to its SignalWire resource."""

    shape: ClassVar[Shape] = Shape.FULL_LISTING
    create_fields: ClassVar[tuple[str, ...]]
    """Fields the create request accepts (the update may take more)."""
    managed_fields: ClassVar[tuple[str, ...]]
    """Model fields filled from SignalWire's answer."""
    has_tokens: ClassVar[bool] = False
    row_noun: ClassVar[str] = "row"
    """How a busy-row message names one row ("an edit of this row is still on its way")."""

    def rows(self) -> models.QuerySet[M]:
        """The rows a service reads one row from, with what its calls need joined."""
        return self.model._default_manager.all()

    def error_text(self, row_or_pk: M | int, exc: BaseException | str) -> str:
        """An error's text as last_error and log lines may show it (secrets masked)."""
        return str(exc)[:2000]

    def hide_secrets(self, row: M, exc: SignalWireError) -> None:
        """Mask in an error itself what it echoed of the row's secrets, before it propagates.

        A task's error travels on by itself (Celery logs it and stores it as the result).
        Nothing to mask by default.
        """

    @property
    def push_task(self) -> str:
        """The registered name of the task that lands a pending row."""
        return outbox.push_task_name(self.kind)

    @property
    def delete_task(self) -> str:
        """The registered name of the task that finishes a pending delete."""
        return outbox.push_task_name(self.kind, delete=True)

    @property
    def sync_task(self) -> str:
        """The registered name of the task that reconciles the whole listing."""
        return f"rooms.tasks.sync_{self.sync_kind}"

    # --- payload mapping ---

    @abstractmethod
    def create_body(self, row: M) -> dict[str, Any]:
        """The POST body that creates the row's remote object."""

    @abstractmethod
    def update_body(self, row: M) -> dict[str, Any]:
        """The full PUT body of the fields the portal manages."""

    # --- client calls ---

    @abstractmethod
    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        """Read one remote object by id."""

    @abstractmethod
    def update(
        self, client: SignalWireClient, remote_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace the remote object's managed fields; return the answer."""

    @abstractmethod
    def delete(self, client: SignalWireClient, remote_id: str) -> None:
        """Delete the remote object."""

    @abstractmethod
    def find_lost_create(self, client: SignalWireClient, row: M) -> dict[str, Any] | None:
        """The remote object a create of the row may have made unheard; None if none."""


class NamedResource(Resource[M]):
    """A resource created, found by its unique name and listed Space-wide (not per owner)."""

    @abstractmethod
    def create(self, client: SignalWireClient, body: dict[str, Any]) -> dict[str, Any]:
        """Create the remote object; return SignalWire's answer."""

    @abstractmethod
    def find(self, client: SignalWireClient, name: str) -> dict[str, Any] | None:
        """Find the remote object by its unique name; None when there is none."""

    @abstractmethod
    def list_pages(
        self, client: SignalWireClient, page_size: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the Space's whole listing, one page at a time."""


class ConferenceResource(NamedResource[Conference]):
    """Conferences: rooms with SignalWire's prebuilt UI, each with moderator and guest tokens."""

    kind = "conference"
    sync_kind = SyncRun.Kind.CONFERENCES
    model = Conference
    create_fields = schema.CONFERENCE_CREATE_FIELDS
    managed_fields = payloads.CONFERENCE_MODEL_FIELDS
    has_tokens = True

    def error_text(self, row_or_pk: Conference | int, exc: BaseException | str) -> str:
        """An error's text with the conference's token values masked."""
        pk = row_or_pk.pk if isinstance(row_or_pk, Conference) else row_or_pk
        return mask_secrets_in(str(exc), conference_token_values(pk))[:2000]

    def hide_secrets(self, row: Conference, exc: SignalWireError) -> None:
        """Mask the conference's token values the error echoed."""
        tokens = conference_token_values(row.pk)
        mask_error(exc, lambda text: mask_secrets_in(text, tokens))

    def create_body(self, row: Conference) -> dict[str, Any]:
        return payloads.conference_create_body(row)

    def update_body(self, row: Conference) -> dict[str, Any]:
        return payloads.conference_update_body(row)

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return payloads.conference_fields(answer)

    def create(self, client: SignalWireClient, body: dict[str, Any]) -> dict[str, Any]:
        return client.create_conference(body)

    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        return client.get_conference(remote_id)

    def update(
        self, client: SignalWireClient, remote_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return client.update_conference(remote_id, body)

    def delete(self, client: SignalWireClient, remote_id: str) -> None:
        client.delete_conference(remote_id)

    def find(self, client: SignalWireClient, name: str) -> dict[str, Any] | None:
        return client.find_conference_by_name(name)

    def find_lost_create(
        self, client: SignalWireClient, row: Conference
    ) -> dict[str, Any] | None:
        return self.find(client, row.name)

    def list_pages(
        self, client: SignalWireClient, page_size: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        return client.iter_conference_pages(page_size)


class RoomResource(NamedResource[Room]):
    """Rooms without the prebuilt UI; found by name through their own endpoint."""

    kind = "room"
    sync_kind = SyncRun.Kind.ROOMS
    model = Room
    create_fields = schema.ROOM_CREATE_FIELDS
    managed_fields = payloads.ROOM_MODEL_FIELDS

    def create_body(self, row: Room) -> dict[str, Any]:
        return payloads.room_create_body(row)

    def update_body(self, row: Room) -> dict[str, Any]:
        return payloads.room_update_body(row)

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return payloads.room_fields(answer)

    def create(self, client: SignalWireClient, body: dict[str, Any]) -> dict[str, Any]:
        return client.create_room(body)

    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        return client.get_room(remote_id)

    def update(
        self, client: SignalWireClient, remote_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return client.update_room(remote_id, body)

    def delete(self, client: SignalWireClient, remote_id: str) -> None:
        client.delete_room(remote_id)

    def find(self, client: SignalWireClient, name: str) -> dict[str, Any] | None:
        try:
            return client.get_room_by_name(name)
        except NotFoundError:
            return None

    def find_lost_create(self, client: SignalWireClient, row: Room) -> dict[str, Any] | None:
        return self.find(client, row.name)

    def list_pages(
        self, client: SignalWireClient, page_size: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        return client.iter_room_pages(page_size)


class StreamResource(Resource[Stream]):
    """Streams: RTMP/RTMPS outputs of a conference or a room, with no name of their own.

    A stream is created on, found in and listed by its owner (create_for, find_for,
    list_for), never Space-wide: it is a Resource but not a NamedResource, and the stream
    services and the stream sync use the owner's calls.
    """

    kind = "stream"
    sync_kind = SyncRun.Kind.STREAMS
    model = Stream
    create_fields = schema.STREAM_BODY_FIELDS
    managed_fields = payloads.STREAM_MODEL_FIELDS
    shape = Shape.UNDER_PARENT
    row_noun = "stream"

    def rows(self) -> models.QuerySet[Stream]:
        """Streams with their owner joined: its kind and remote id route the stream calls."""
        return Stream.objects.select_related("conference", "room")

    def error_text(
        self, row_or_pk: Stream | int, exc: BaseException | str, *also: str
    ) -> str:
        """An error's text with the stream's key in any form, and other secrets, masked.

        `also`: other URLs of the stream to mask (the one an edit replaces).
        """
        row = row_or_pk if isinstance(row_or_pk, Stream) else (
            Stream.objects.filter(pk=row_or_pk).only("url", "conference_id").first()
        )
        if row is None:
            return mask_stream_urls_in(str(exc), *also)[:2000]
        return self._mask(row, also)(str(exc))[:2000]

    def hide_secrets(self, row: Stream, exc: SignalWireError, *also: str) -> None:
        """Mask in the error the stream's key in any form, other stream URLs, owner tokens."""
        mask_error(exc, self._mask(row, also))

    @staticmethod
    def _mask(row: Stream, also: tuple[str, ...]) -> Any:
        tokens = tuple(conference_token_values(row.conference_id))
        return lambda text: mask_stream_urls_in(text, row.url, *also, secrets=tokens)

    def create_body(self, row: Stream) -> dict[str, Any]:
        return payloads.stream_body(row)

    def update_body(self, row: Stream) -> dict[str, Any]:
        return payloads.stream_body(row)

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return payloads.stream_fields(answer)

    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        return client.get_stream(remote_id)

    def update(
        self, client: SignalWireClient, remote_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return client.update_stream(remote_id, body)

    def delete(self, client: SignalWireClient, remote_id: str) -> None:
        client.delete_stream(remote_id)

    def find_lost_create(self, client: SignalWireClient, row: Stream) -> dict[str, Any] | None:
        """The owner's stream with the row's url that no other row holds; None if none.

        None too when the owner has no SignalWire id or SignalWire no longer has it.
        """
        owner_kind, owner_id = self.owner_route(row)
        if not owner_id:
            return None
        try:
            return self.find_for(client, owner_kind, owner_id, row.url, taken=self.taken_ids(row))
        except NotFoundError:
            return None

    # --- the owner's calls ---

    def owner_route(self, row: Stream) -> tuple[str, str | None]:
        """The owner's kind and SignalWire id, as the stream endpoints name them."""
        owner = row.owner
        return str(row.owner_kind), owner.remote_id if owner is not None else None

    def taken_ids(self, row: Stream) -> frozenset[str]:
        """Remote ids other local rows of the same owner hold: never adopted a second time."""
        if row.conference_id:
            siblings = Stream.objects.filter(conference_id=row.conference_id)
        else:
            siblings = Stream.objects.filter(room_id=row.room_id or 0)
        held = siblings.filter(remote_id__isnull=False).exclude(pk=row.pk)
        return frozenset(rid for rid in held.values_list("remote_id", flat=True) if rid)

    def create_for(
        self, client: SignalWireClient, owner_kind: str, owner_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a stream on a room or conference ("room" or "conference")."""
        return client.create_stream(owner_kind, owner_id, body)

    def list_for(
        self, client: SignalWireClient, owner_kind: str, owner_id: str
    ) -> list[dict[str, Any]]:
        """Every stream of a room or conference."""
        return client.list_streams(owner_kind, owner_id)

    def find_for(
        self,
        client: SignalWireClient,
        owner_kind: str,
        owner_id: str,
        url: str,
        *,
        taken: frozenset[str] = frozenset(),
    ) -> dict[str, Any] | None:
        """Find the owner's stream with this url that no local row holds yet; None if none."""
        for stream in self.list_for(client, owner_kind, owner_id):
            if stream.get("url") == url and str(stream.get("id")) not in taken:
                return stream
        return None


class TokenMirror(Mirror[ConferenceToken]):
    """A conference's moderator and guest tokens, listed under the conference."""

    kind = "conference_token"
    sync_kind = SyncRun.Kind.TOKENS
    model = ConferenceToken
    shape = Shape.UNDER_PARENT

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return payloads.token_fields(answer)

    def list_for(self, client: SignalWireClient, conference_id: str) -> list[dict[str, Any]]:
        """Every token of a conference."""
        return client.list_conference_tokens(conference_id)


class SessionMirror(Mirror[RoomSession]):
    """Room sessions: newest first; the live ones read again until they end. Not audited."""

    kind = "room_session"
    sync_kind = SyncRun.Kind.SESSIONS
    model = RoomSession
    shape = Shape.NEWEST_FIRST
    audited = False

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return remote_sessions.session_fields(answer)

    def pages(
        self,
        client: SignalWireClient,
        *,
        status: str | None = None,
        room_name: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the sessions (newest first) of a status or a room, page by page."""
        return remote_sessions.iter_session_pages(
            client, status=status, room_name=room_name, page_size=page_size
        )

    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        """Read one session by id."""
        return remote_sessions.get_session(client, remote_id)


class MemberMirror(Mirror[SessionMember]):
    """The members of a room session, listed under the session. Not audited."""

    kind = "session_member"
    sync_kind = SyncRun.Kind.SESSIONS
    model = SessionMember
    shape = Shape.UNDER_PARENT
    audited = False

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return remote_sessions.member_fields(answer)

    def list_for(
        self, client: SignalWireClient, session_id: str, *, limit: int
    ) -> list[dict[str, Any]]:
        """The first `limit` members of a session, in the order they joined."""
        return remote_sessions.list_session_members(client, session_id, limit=limit)


class RecordingMirror(Mirror[Recording]):
    """Room recordings: newest first; unfinished ones read again by id; a daily full pass."""

    kind = "recording"
    sync_kind = SyncRun.Kind.RECORDINGS
    model = Recording
    shape = Shape.NEWEST_FIRST

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return remote_recordings.recording_fields(answer)

    def audited_rows(self, rows: models.QuerySet[Recording]) -> models.QuerySet[Recording]:
        """The recordings with their session, whose owner each audit entry names."""
        return rows.select_related("session")

    def pages(
        self, client: SignalWireClient, *, page_size: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the recordings (newest first), page by page."""
        return remote_recordings.iter_recording_pages(client, page_size=page_size)

    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        """Read one recording by id (its signed link is dropped by the mapping)."""
        return remote_recordings.get_recording(client, remote_id)


class LogMirror(Mirror[VideoLog]):
    """Video logs: newest first from the newest one mirrored; discarded ones listed too."""

    kind = "video_log"
    sync_kind = SyncRun.Kind.LOGS
    model = VideoLog
    shape = Shape.NEWEST_FIRST
    audited = False

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return remote_logs.log_fields(answer)

    def pages(
        self,
        client: SignalWireClient,
        *,
        created_after: datetime | None,
        page_size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the logs (newest first, discarded ones too) made after a moment, if given."""
        return remote_logs.iter_log_pages(
            client, created_after=created_after, include_deleted=True, page_size=page_size
        )


CONFERENCE = ConferenceResource()
ROOM = RoomResource()
STREAM = StreamResource()
TOKEN = TokenMirror()
SESSION = SessionMirror()
MEMBER = MemberMirror()
RECORDING = RecordingMirror()
LOG = LogMirror()

# The resources the portal edits and pushes, by kind: its model, one class above, one line.
RESOURCES: dict[str, Resource[Any]] = {
    resource.kind: resource for resource in (CONFERENCE, ROOM, STREAM)
}

def resource_for(model_or_kind: str | models.Model | type[models.Model]) -> Resource:
    """Return the resource of a kind name, a model class or an instance."""
    if isinstance(model_or_kind, str):
        return RESOURCES[model_or_kind]
    model = model_or_kind if isinstance(model_or_kind, type) else type(model_or_kind)
    return RESOURCES[model._meta.model_name or ""]


def by_sync_kind(sync_kind: str) -> Resource:
    """Return the resource whose listing a SyncRun of this kind reconciles."""
    for resource in RESOURCES.values():
        if resource.sync_kind == sync_kind:
            return resource
    raise KeyError(sync_kind)
