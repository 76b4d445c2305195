"""The remote resources the portal mirrors: one typed class per kind, read by every layer.

Each entry says which model mirrors the resource, how a row becomes a request body and an
answer becomes field values, which client calls create, read, replace, delete, find by
name and list it, and which Celery tasks push it. Services, the sync, the push tasks, the
outbox and the tests all look resources up here, so a new resource is one new class (and
its model), not edits in five places.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django.db import models

from rooms import outbox
from rooms.models import Conference, ConferenceToken, Room, Stream, SyncRun
from rooms.secrets import mask_secrets_in
from rooms.signalwire import payloads, schema
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


class Resource(ABC, Generic[M]):
    """How one mirrored model maps to its SignalWire resource."""

    kind: ClassVar[str]
    """The singular name used in intents, locks, outbox calls and audit rows."""
    sync_kind: ClassVar[str]
    """The SyncRun kind of its periodic listing."""
    model: type[M]
    create_fields: ClassVar[tuple[str, ...]]
    """Fields the create request accepts (the update may take more)."""
    managed_fields: ClassVar[tuple[str, ...]]
    """Model fields filled from SignalWire's answer."""
    has_tokens: ClassVar[bool] = False
    owned: ClassVar[bool] = False
    """Created, found and listed through an owner (a stream): created, edited, pushed and
    synced by its own services (rooms.streams, rooms.sync.streams), not the name-based
    generic ones; its pending deletes are finished by the shared push."""
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

    @abstractmethod
    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Model field values from one of SignalWire's answers."""

    # --- client calls ---

    @abstractmethod
    def create(self, client: SignalWireClient, body: dict[str, Any]) -> dict[str, Any]:
        """Create the remote object; return SignalWire's answer."""

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
    def find(self, client: SignalWireClient, name: str) -> dict[str, Any] | None:
        """Find the remote object by its unique name; None when there is none."""

    @abstractmethod
    def find_lost_create(self, client: SignalWireClient, row: M) -> dict[str, Any] | None:
        """The remote object a create of the row may have made unheard; None if none."""

    @abstractmethod
    def list_pages(
        self, client: SignalWireClient, page_size: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the Space's whole listing, one page at a time."""


class ConferenceResource(Resource[Conference]):
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


class RoomResource(Resource[Room]):
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


class OwnerRequired(TypeError):
    """An owner-less call (create, find by name, Space listing) on a resource with owners."""


class StreamResource(Resource[Stream]):
    """Streams: RTMP/RTMPS outputs of a conference or a room, with no name of their own.

    A stream is created on, found in and listed by its owner: create_for, list_for and
    find_for. The base class's owner-less calls raise OwnerRequired; the stream services
    and the stream sync use the owner's calls instead (owned = True tells them apart).
    """

    kind = "stream"
    sync_kind = SyncRun.Kind.STREAMS
    model = Stream
    create_fields = schema.STREAM_BODY_FIELDS
    managed_fields = payloads.STREAM_MODEL_FIELDS
    owned = True
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

    def create(self, client: SignalWireClient, body: dict[str, Any]) -> dict[str, Any]:
        raise OwnerRequired("a stream is created on its owner: use create_for()")

    def get(self, client: SignalWireClient, remote_id: str) -> dict[str, Any]:
        return client.get_stream(remote_id)

    def update(
        self, client: SignalWireClient, remote_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return client.update_stream(remote_id, body)

    def delete(self, client: SignalWireClient, remote_id: str) -> None:
        client.delete_stream(remote_id)

    def find(self, client: SignalWireClient, name: str) -> dict[str, Any] | None:
        raise OwnerRequired("a stream has no name: use find_for() with its owner and url")

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

    def list_pages(
        self, client: SignalWireClient, page_size: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        raise OwnerRequired("streams are listed per owner: use list_for()")

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


CONFERENCE = ConferenceResource()
ROOM = RoomResource()
STREAM = StreamResource()

# Every mirrored resource, by kind. A new resource: its model, one class above, one line here.
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
