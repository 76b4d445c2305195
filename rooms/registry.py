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
from rooms.models import Conference, Room, SyncRun
from rooms.signalwire import payloads, schema
from rooms.signalwire.errors import NotFoundError

if TYPE_CHECKING:
    from rooms.signalwire.client import SignalWireClient

M = TypeVar("M", bound=models.Model)


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

    def list_pages(
        self, client: SignalWireClient, page_size: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        return client.iter_room_pages(page_size)


CONFERENCE = ConferenceResource()
ROOM = RoomResource()

# Every mirrored resource, by kind. A new resource: its model, one class above, one line here.
RESOURCES: dict[str, Resource[Any]] = {
    resource.kind: resource for resource in (CONFERENCE, ROOM)
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
