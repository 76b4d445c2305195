"""The migration that adds the audit trail's related-object columns backfills existing rows."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("rooms", "0008_room_sessions_and_members")
AFTER = ("rooms", "0010_backfill_audit_related_objects")

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture
def old_apps():
    """The models as they were before the migration; the schema is put back afterwards."""
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes("rooms")
    yield _migrate(BEFORE)
    _migrate(leaves[0])


def test_backfill_names_each_token_entrys_parent_and_renames_old_reveals(old_apps):
    ContentType = old_apps.get_model("contenttypes", "ContentType")
    Conference = old_apps.get_model("rooms", "Conference")
    Room = old_apps.get_model("rooms", "Room")
    AuditEntry = old_apps.get_model("rooms", "AuditEntry")
    types = {
        name: ContentType.objects.get_or_create(app_label="rooms", model=name)[0]
        for name in ("conference", "room", "conferencetoken", "issuedroomtoken")
    }
    conference = Conference.objects.create(name="old-conf")
    room = Room.objects.create(name="old-room")

    def entry(model, pk, **fields):
        fields.setdefault("action", 0)
        return AuditEntry.objects.create(
            content_type=types[model], object_pk=str(pk), object_repr="x", **fields
        ).pk

    reveal = entry(
        "conferencetoken", 7, action=3,
        additional_data={"remote_id": "t", "conference_id": conference.pk, "access": "reveal"},
    )
    issued_by_data = entry("issuedroomtoken", 8, additional_data={"room_id": room.pk})
    issued_by_diff = entry(
        "issuedroomtoken", 9, additional_data=None, changes={"room": [None, str(room.pk)]}
    )
    own = entry("conference", conference.pk, additional_data={"remote_id": "", "name": "c"})
    orphan = entry("conferencetoken", 10, additional_data={})

    new_apps = _migrate(AFTER)
    rows = {e.pk: e for e in new_apps.get_model("rooms", "AuditEntry").objects.all()}

    def parent(pk):
        return rows[pk].related_object_type_id, rows[pk].related_object_id

    assert parent(reveal) == (types["conference"].pk, conference.pk)
    assert parent(issued_by_data) == (types["room"].pk, room.pk)
    assert parent(issued_by_diff) == (types["room"].pk, room.pk)
    assert parent(own) == parent(orphan) == (None, None)
    assert rows[reveal].additional_data == {
        "remote_id": "t", "conference_id": conference.pk, "event": "reveal"
    }
