"""Upgrading a one-Space portal: every existing row joins the Space the environment configures."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from rooms.models import Room, Space, environment_space
from rooms.models.spaces import environment_space_name
from rooms.outbox import pushes_suppressed

BEFORE = ("rooms", "0023_usage_totals")
AFTER = ("rooms", "0024_spaces")

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture
def old_apps():
    """The models as they were with one Space; the schema is put back afterwards."""
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes("rooms")
    yield _migrate(BEFORE)
    _migrate(leaves[0])


def test_upgrading_attaches_every_existing_row_to_the_environments_space(old_apps):
    get = old_apps.get_model
    now = timezone.now()
    conference = get("rooms", "Conference").objects.create(name="lobby", remote_id="c-1")
    room = get("rooms", "Room").objects.create(name="standup", remote_id="r-1")
    get("rooms", "Stream").objects.create(room=room, url="rtmp://example.com/live/k")
    get("rooms", "ConferenceToken").objects.create(
        conference=conference, remote_id="t-1", name="moderator", token="secret-value"
    )
    session = get("rooms", "RoomSession").objects.create(
        remote_id="s-1", room=room, room_name="standup", status="completed", start_time=now
    )
    get("rooms", "SessionMember").objects.create(session=session, remote_id="m-1", name="Ann")
    get("rooms", "Recording").objects.create(remote_id="rec-1", session=session, status="completed")
    get("rooms", "VideoLog").objects.create(remote_id="log-1", room_name="standup")
    get("rooms", "IssuedRoomToken").objects.create(room=room, room_name="standup", fingerprint="f")
    get("rooms", "RemoteIntent").objects.create(kind="room", action="update", name="standup")
    get("rooms", "SyncRun").objects.create(kind="rooms")
    get("rooms", "ActionRun").objects.create(action="refresh", kind="room")
    get("rooms", "UsageDay").objects.create(
        day=date(2026, 1, 5), room_name="standup", sessions=1, estimated_cost=Decimal("0.5")
    )
    get("rooms", "UsageDayTotal").objects.create(day=date(2026, 1, 5), sessions=1)
    get("rooms", "UsageMonth").objects.create(
        month=date(2026, 1, 1), room_name="standup", sessions=1
    )
    ContentType = get("contenttypes", "ContentType")
    room_type = ContentType.objects.get_or_create(app_label="rooms", model="room")[0]
    user_type = ContentType.objects.get_or_create(app_label="auth", model="user")[0]
    entries = get("rooms", "AuditEntry").objects
    about_room = entries.create(
        content_type=room_type, object_pk=str(room.pk), object_repr="standup", action=1
    )
    about_user = entries.create(
        content_type=user_type, object_pk="1", object_repr="ann", action=1
    )

    User = get("auth", "User")
    staff = User.objects.create(username="ops", is_staff=True)
    User.objects.create(username="visitor", is_staff=False)

    new_apps = _migrate(AFTER)

    spaces = list(new_apps.get_model("rooms", "Space").objects.all())
    assert [(s.name, s.from_settings) for s in spaces] == [(environment_space_name(), True)]
    first = spaces[0].pk
    for name in (
        "Conference", "Room", "Stream", "ConferenceToken", "RoomSession", "SessionMember",
        "Recording", "VideoLog", "IssuedRoomToken", "RemoteIntent", "SyncRun", "ActionRun",
        "UsageDay", "UsageDayTotal", "UsageMonth",
    ):
        rows = new_apps.get_model("rooms", name).objects
        assert rows.count() == 1, name
        assert rows.filter(space_id=first).count() == 1, f"{name} is not in the first Space"
    audit = new_apps.get_model("rooms", "AuditEntry").objects
    assert audit.get(pk=about_room.pk).space_id == first
    # Staff accounts belong to no Space.
    assert audit.get(pk=about_user.pk).space_id is None
    # Existing staff keep the Space they worked in; others get nothing.
    granted = new_apps.get_model("rooms", "Space").objects.get().staff.all()
    assert [user.pk for user in granted] == [staff.pk]
    # What staff typed is kept as it was.
    assert new_apps.get_model("rooms", "ConferenceToken").objects.get().token == "secret-value"


def test_a_room_name_is_unique_in_a_space_not_across_spaces():
    first = environment_space()
    second = Space.objects.create(
        name="Staging", space_url="https://staging.example.com", project_id="p"
    )
    with pushes_suppressed():
        Room.objects.create(space=first, name="lobby")
        Room.objects.create(space=second, name="lobby")
        with pytest.raises(IntegrityError), transaction.atomic():
            Room.objects.create(space=second, name="lobby")
    assert Room.objects.filter(name="lobby").count() == 2
