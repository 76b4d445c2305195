"""The registry of remote resources: every entry is wired through tasks, outbox, sync and admin."""

from __future__ import annotations

import pytest
from django.contrib import admin

from portal.celery import app
from rooms import outbox, registry, services, sync
from rooms.models import Conference, Room, Stream, SyncRun
from rooms.registry import RESOURCES, Resource
from rooms.signalwire.client import build_client
from rooms.tasks import push as push_tasks
from rooms.tasks import sync as sync_tasks

KINDS = sorted(RESOURCES)
# Resources with a unique name and a Space-wide listing; a stream belongs to an owner.
NAMED_KINDS = sorted(
    kind for kind, resource in RESOURCES.items() if isinstance(resource, registry.NamedResource)
)


# A new row's Space defaults to the environment's, read from the database.
@pytest.mark.django_db
def test_the_registry_holds_conferences_and_rooms_as_typed_resources():
    assert KINDS == ["conference", "room", "stream"]
    assert NAMED_KINDS == ["conference", "room"]
    assert all(isinstance(resource, Resource) for resource in RESOURCES.values())
    assert registry.resource_for(Conference) is registry.CONFERENCE
    assert registry.resource_for(Room(name="x")) is registry.ROOM
    assert registry.resource_for("room") is registry.ROOM
    assert registry.by_sync_kind(SyncRun.Kind.ROOMS) is registry.ROOM
    assert services.mirror_for("conference") is registry.CONFERENCE
    assert registry.resource_for(Stream) is registry.STREAM
    assert registry.by_sync_kind(SyncRun.Kind.STREAMS) is registry.STREAM


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_every_registered_resource_has_its_tasks_outbox_names_sync_and_admin(kind):
    resource = RESOURCES[kind]
    app.loader.import_default_modules()

    # Push and delete tasks, registered under the names the outbox sends.
    assert push_tasks.PUSH_TASKS[kind].name == resource.push_task == outbox.push_task_name(kind)
    assert push_tasks.DELETE_TASKS[kind].name == resource.delete_task
    assert resource.delete_task == outbox.push_task_name(kind, delete=True)
    assert {resource.push_task, resource.delete_task} <= set(app.tasks)
    assert push_tasks.PUSH_TASKS[kind].push_kind == kind
    # A listing sync, its task, and a SyncRun kind to record it under.
    assert resource.sync_kind in SyncRun.Kind.values
    assert sync_tasks.SYNC_TASKS[resource.sync_kind].name == resource.sync_task
    assert resource.sync_task in app.tasks
    assert callable(sync.sync_resource)
    # An admin page for its model, and payload fields its model has.
    assert resource.model in admin.site._registry
    model_fields = {f.name for f in resource.model._meta.get_fields()}
    assert set(resource.managed_fields) <= model_fields
    assert set(resource.create_fields) <= model_fields


def test_the_push_tasks_of_a_resource_are_named_after_its_kind():
    assert push_tasks.push_room is push_tasks.PUSH_TASKS["room"]
    assert push_tasks.delete_conference is push_tasks.DELETE_TASKS["conference"]
    assert sync_tasks.sync_rooms is sync_tasks.SYNC_TASKS[SyncRun.Kind.ROOMS]
    with pytest.raises(AttributeError):
        push_tasks.push_nothing  # noqa: B018


@pytest.mark.django_db
@pytest.mark.parametrize("kind", NAMED_KINDS)
def test_a_registered_resource_round_trips_through_the_sandbox(sandbox, kind):
    """Create, find by name, read, replace, list and delete through the entry's calls."""
    resource = RESOURCES[kind]
    client = build_client()
    row = resource.model(name=f"reg-{kind}", display_name="Registry")
    answer = resource.create(client, resource.create_body(row))
    remote_id = str(answer["id"])
    assert resource.fields(answer)["display_name"] == "Registry"
    assert resource.find(client, row.name)["id"] == answer["id"]
    assert resource.find(client, "no-such-name") is None
    row.display_name = "Renamed"
    updated = resource.update(client, remote_id, resource.update_body(row))
    assert resource.fields(updated)["display_name"] == "Renamed"
    assert resource.get(client, remote_id)["display_name"] == "Renamed"
    listed = [item["id"] for page in resource.list_pages(client, 50) for item in page]
    assert answer["id"] in listed
    resource.delete(client, remote_id)
    assert resource.find(client, row.name) is None


@pytest.mark.django_db
def test_the_stream_resource_round_trips_through_its_owner_in_the_sandbox(sandbox):
    """Create on a room, find by url, read, replace, list and delete through the entry."""
    resource = registry.STREAM
    client = build_client()
    room = client.create_room({"name": "reg-stream-owner"})
    row = Stream(url="rtmp://ingest.example.net/live/first-key")
    answer = resource.create_for(client, "room", room["id"], resource.create_body(row))
    remote_id = str(answer["id"])
    assert resource.fields(answer)["stream_type"] == "rtmp"
    assert "url" not in resource.fields(answer)["raw"]
    assert resource.find_for(client, "room", room["id"], row.url)["id"] == answer["id"]
    taken = frozenset({remote_id})
    assert resource.find_for(client, "room", room["id"], row.url, taken=taken) is None
    row.url = "rtmps://ingest.example.net/live/second-key"
    updated = resource.update(client, remote_id, resource.update_body(row))
    assert resource.fields(updated)["stream_type"] == "rtmps"
    assert resource.get(client, remote_id)["url"] == row.url
    assert [s["id"] for s in resource.list_for(client, "room", room["id"])] == [answer["id"]]
    resource.delete(client, remote_id)
    assert resource.list_for(client, "room", room["id"]) == []
    # Never created, found or listed Space-wide: those calls belong to named resources.
    assert not isinstance(resource, registry.NamedResource)
    assert not hasattr(resource, "find") and not hasattr(resource, "list_pages")
