"""The audit trail: sources and actors, diffs, bulk records, events, secrets, retention."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rooms import audit
from rooms.audit import (
    MASK,
    audit_context,
    bulk_record,
    current_context,
    delete_expired_entries,
    record_event,
    scrub,
)
from rooms.models import AuditEntry, Conference, ConferenceToken, IssuedRoomToken, Room
from rooms.tasks.maintenance import audit_cleanup

pytestmark = pytest.mark.django_db

Action = AuditEntry.Action


def entries_for(obj):
    """Return an object's audit entries, oldest first."""
    return list(AuditEntry.objects.get_for_object(obj).order_by("timestamp", "pk"))


def last_entry(obj):
    return entries_for(obj)[-1]


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw", is_staff=True)


# --- sources and actors ----------------------------------------------------------------


def test_shell_save_is_recorded_as_shell_without_noise():
    conference = Conference.objects.create(name="shell-made", display_name="Shell")

    entry = last_entry(conference)
    assert entry.action == Action.CREATE
    assert entry.source == AuditEntry.Source.SHELL
    assert entry.actor is None
    assert entry.actor_label == "shell"
    assert entry.changes["name"] == [None, "shell-made"]
    assert entry.changes["display_name"] == [None, "Shell"]
    # Reverse relations, the primary key and mirror bookkeeping are no part of a diff.
    for noise in ("tokens", "id", "raw", "sync_state", "local_version", "updated_at"):
        assert noise not in entry.changes
    assert entry.additional_data["name"] == "shell-made"

    room = Room.objects.create(name="shell-room")
    assert "issued_tokens" not in last_entry(room).changes


def test_a_command_context_records_the_command_and_groups_by_run_id():
    with audit_context(source=AuditEntry.Source.COMMAND, actor_label="import_rooms") as ctx:
        first = Conference.objects.create(name="from-command-1")
        second = Conference.objects.create(name="from-command-2")

    for obj in (first, second):
        entry = last_entry(obj)
        assert entry.source == AuditEntry.Source.COMMAND
        assert entry.actor_label == "import_rooms"
        assert entry.actor is None
        assert entry.cid == ctx.correlation_id
    assert current_context().source == AuditEntry.Source.SHELL


def test_a_command_context_works_as_a_decorator_with_a_new_run_each_call():
    @audit_context(source=AuditEntry.Source.COMMAND, actor_label="cleanup_rooms")
    def handle(name):
        Conference.objects.create(name=name)

    handle("decorated-1")
    handle("decorated-2")

    one = last_entry(Conference.objects.get(name="decorated-1"))
    two = last_entry(Conference.objects.get(name="decorated-2"))
    assert one.source == two.source == AuditEntry.Source.COMMAND
    assert one.cid and two.cid and one.cid != two.cid


def test_push_task_context_names_the_system_actor_and_run():
    conference = Conference.objects.create(name="pushed")
    with audit_context(source="push", actor_label="push", correlation_id="run-push-1"):
        conference.display_name = "Pushed"
        conference.save()

    entry = last_entry(conference)
    assert (entry.source, entry.actor_label, entry.cid) == ("push", "push", "run-push-1")
    assert entry.actor is None


def test_staff_context_names_the_user(staff):
    with audit_context(source="admin", actor=staff, correlation_id="req-1"):
        conference = Conference.objects.create(name="by-alice")

    entry = last_entry(conference)
    assert entry.actor == staff
    assert entry.actor_email == "alice@example.com"
    assert entry.actor_label == "alice"
    assert (entry.source, entry.cid) == ("admin", "req-1")


def test_nested_contexts_stamp_the_innermost_and_the_outer_again_after(staff):
    conference = Conference.objects.create(name="nested")
    with audit_context(source="admin", actor=staff, correlation_id="req-outer"):
        conference.display_name = "Outer 1"
        conference.save()
        with audit_context(source="push", actor_label="push", correlation_id="run-inner"):
            conference.display_name = "Inner"
            conference.save()
        conference.display_name = "Outer 2"
        conference.save()

    stamps = [(e.source, e.actor_id, e.actor_label, e.cid) for e in entries_for(conference)[1:]]
    assert stamps == [
        ("admin", staff.pk, "alice", "req-outer"),
        ("push", None, "push", "run-inner"),
        ("admin", staff.pk, "alice", "req-outer"),
    ]
    conference.display_name = "After"
    conference.save()
    after = last_entry(conference)
    assert (after.source, after.actor_id, after.cid) == ("shell", None, None)


def test_auditlog_reads_the_correlation_id_through_its_public_getter():
    from auditlog.cid import get_cid

    assert get_cid() is None
    with audit_context(source="sync", actor_label="sync", correlation_id="run-cid"):
        assert get_cid() == "run-cid"
        with audit_context(source=AuditEntry.Source.COMMAND, actor_label="inner") as inner:
            assert get_cid() == inner.correlation_id
        assert get_cid() == "run-cid"
    assert get_cid() is None


def test_token_entries_name_their_conference_or_room_in_indexed_columns(staff):
    conference = Conference.objects.create(name="parent")
    room = Room.objects.create(name="parent-room")
    conference_type = ContentType.objects.get_for_model(Conference)
    room_type = ContentType.objects.get_for_model(Room)
    with audit_context(source="sync", actor_label="sync"):
        token = ConferenceToken.objects.create(
            conference=conference, remote_id="t-rel", name="guest", token="REL-SECRET-1"
        )
        bulk_record(
            model=ConferenceToken,
            entries=[(token, Action.UPDATE, {"token": ("REL-SECRET-1", "REL-SECRET-2")})],
        )
    issued = IssuedRoomToken.objects.create(
        room=room, room_name=room.name, fingerprint="e" * 64, issued_by=staff
    )
    record_event(obj=issued, event="issue", details={"user_name": "x"})

    token_entries = AuditEntry.objects.filter(content_type__model="conferencetoken")
    assert token_entries.count() == 2
    assert {(e.related_object_type_id, e.related_object_id) for e in token_entries} == {
        (conference_type.pk, conference.pk)
    }
    assert {e.object_remote_id for e in token_entries} == {"t-rel"}
    issued_entries = AuditEntry.objects.filter(content_type__model="issuedroomtoken")
    assert [a for a, in issued_entries.values_list("action").order_by("pk")] == [
        Action.CREATE, Action.UPDATE
    ]
    assert {(e.related_object_type_id, e.related_object_id) for e in issued_entries} == {
        (room_type.pk, room.pk)
    }
    # The room and conference's own entries name no parent.
    own = AuditEntry.objects.filter(content_type__in=[conference_type, room_type])
    assert set(own.values_list("related_object_id", flat=True)) == {None}


# --- diffs -----------------------------------------------------------------------------


def test_update_diff_holds_old_and_new_values():
    conference = Conference.objects.create(name="diffed", quality="720p")
    conference.quality = "1080p"
    conference.join_from = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
    conference.meta = {"team": "ops"}
    conference.save()

    entry = last_entry(conference)
    assert entry.action == Action.UPDATE
    assert entry.changes == {
        "quality": ["720p", "1080p"],
        "join_from": [None, "2030-01-02 09:30:00"],
        "meta": [None, {"team": "ops"}],
    }


def test_no_op_and_bookkeeping_only_saves_write_no_entry():
    conference = Conference.objects.create(name="quiet")
    before = AuditEntry.objects.count()

    Conference.objects.get(pk=conference.pk).save()
    conference = Conference.objects.get(pk=conference.pk)
    conference.sync_state = "push_failed"
    conference.last_error = "boom"
    conference.push_attempts = 3
    conference.raw = {"id": "x"}
    conference.save()

    assert AuditEntry.objects.count() == before


def test_delete_keeps_name_and_remote_id_readable():
    conference = Conference.objects.create(name="doomed", remote_id="rem-doomed")
    pk = conference.pk
    conference.delete()

    entry = AuditEntry.objects.filter(object_pk=str(pk), action=Action.DELETE).get()
    assert entry.object_repr == "doomed"
    assert entry.object_remote_id == "rem-doomed"
    assert entry.additional_data == {"remote_id": "rem-doomed", "name": "doomed"}


# --- the sync's bulk records -----------------------------------------------------------


def test_sync_run_bulk_records_changed_rows_only_in_one_insert():
    rows = [Conference.objects.create(name=f"sync-{i}", remote_id=f"r{i}") for i in range(4)]
    start = AuditEntry.objects.count()
    stamp = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)

    with audit_context(source="sync", actor_label="sync", correlation_id="run-42"):
        entries = [
            (rows[0], Action.UPDATE, {"display_name": ("", "Remote edit")}),
            (rows[1], Action.UPDATE, {"join_until": (None, stamp)}),
            (rows[2], Action.UPDATE, {}),  # unchanged
            (rows[3], Action.UPDATE, {"last_synced_at": (None, stamp), "raw": ({}, {"a": 1})}),
        ]
        with CaptureQueriesContext(connection) as queries:
            written = bulk_record(model=Conference, entries=entries)

    assert written == 2
    inserts = [q for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    new = AuditEntry.objects.order_by("pk")[start:]
    assert {e.cid for e in new} == {"run-42"}
    assert {(e.source, e.actor_label, e.actor_id) for e in new} == {("sync", "sync", None)}
    by_pk = {e.object_pk: e for e in new}
    assert by_pk[str(rows[0].pk)].changes == {"display_name": ["", "Remote edit"]}
    assert by_pk[str(rows[1].pk)].changes == {"join_until": [None, "2031-05-06 07:08:09"]}
    assert by_pk[str(rows[0].pk)].object_remote_id == "r0"
    assert by_pk[str(rows[0].pk)].additional_data == {"remote_id": "r0", "name": "sync-0"}


def test_bulk_record_keeps_remote_deletion_marks():
    conference = Conference.objects.create(name="gone-remotely", remote_id="r-gone")
    with audit_context(source="sync", actor_label="sync", correlation_id="run-43"):
        bulk_record(
            model=Conference,
            entries=[(conference, Action.UPDATE, {"sync_state": ("synced", "deleted_remotely")})],
        )
    assert last_entry(conference).changes == {"sync_state": ["synced", "deleted_remotely"]}


def test_bulk_record_changes_look_exactly_like_auditlogs_own():
    stamp = datetime(2030, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    saved = Conference.objects.create(name="saved-way")
    saved.join_from, saved.meta, saved.enable_chat = stamp, {"a": [1, 2]}, False
    saved.save()
    own = last_entry(saved).changes

    bulked = Conference.objects.create(name="bulk-way")
    with audit_context(source="sync", actor_label="sync"):
        bulk_record(
            model=Conference,
            entries=[
                (
                    bulked,
                    Action.UPDATE,
                    {
                        "join_from": (None, stamp.astimezone(timezone.get_fixed_timezone(120))),
                        "meta": (None, {"a": [1, 2]}),
                        "enable_chat": (True, False),
                    },
                )
            ],
        )
    assert last_entry(bulked).changes == own


def test_bulk_record_create_and_delete_diff_like_auditlog_and_mask_tokens():
    conference = Conference.objects.create(name="tok-parent")
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="t-1", name="moderator", token="BULK-SECRET-VALUE-1"
    )
    own_create = last_entry(token).changes
    with audit_context(source="sync", actor_label="sync"):
        bulk_record(
            model=ConferenceToken,
            entries=[
                (token, Action.CREATE, None),
                (token, Action.UPDATE, {"token": ("BULK-SECRET-VALUE-1", "BULK-SECRET-VALUE-2")}),
            ],
        )
    create, update = entries_for(token)[-2:]
    assert create.changes == own_create
    assert create.changes["token"] == [MASK, MASK]
    assert update.changes == {"token": [MASK, MASK]}


# --- events and secrets ----------------------------------------------------------------


def test_record_event_reveal_is_an_access_entry_without_the_value(staff):
    conference = Conference.objects.create(name="events")
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="t-ev", name="guest", token="EVENT-SECRET-123456"
    )
    with audit_context(source="admin", actor=staff):
        entry = record_event(
            obj=token,
            event="reveal",
            details={"token": "EVENT-SECRET-123456", "note": "copied EVENT-SECRET-123456"},
        )

    entry.refresh_from_db()
    assert entry.action == Action.ACCESS
    assert entry.actor == staff
    assert entry.additional_data["event"] == "reveal"
    assert entry.additional_data["remote_id"] == "t-ev"
    assert entry.additional_data["details"] == {"token": MASK, "note": MASK}
    reset = record_event(obj=token, event="reset")
    assert reset.action == Action.UPDATE


def test_every_event_has_one_shape_and_reads_are_access_entries(staff):
    conference = Conference.objects.create(name="shapes")
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="t-shape", name="guest", token="SHAPE-SECRET-1"
    )
    with audit_context(source="admin", actor=staff):
        entries = {
            name: record_event(obj=token, event=name, details={"why": name})
            for name in ("reveal", "reset", "issue", "download")
        }

    for name, entry in entries.items():
        entry.refresh_from_db()
        assert entry.additional_data == {
            "remote_id": "t-shape",
            "conference_id": conference.pk,
            "event": name,
            "details": {"why": name},
        }
    actions = {name: entry.action for name, entry in entries.items()}
    assert actions == {
        "reveal": Action.ACCESS,
        "reset": Action.UPDATE,
        "issue": Action.UPDATE,
        "download": Action.ACCESS,
    }


def test_scrub_masks_secret_keys_at_any_depth():
    details = {
        "Password": "p",
        "nested": [{"api_token": "x", "scopes": ["room.self.audio_mute"]}],
        "user_name": "bob",
        "old_token": "y",
        "jwt_in_text": "joined with eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlMTIz",
    }
    assert scrub(details) == {
        "Password": MASK,
        "nested": [{"api_token": MASK, "scopes": ["room.self.audio_mute"]}],
        "user_name": "bob",
        "old_token": MASK,
        "jwt_in_text": MASK,
    }


def _scan_for(values):
    """Return every audit row field that holds one of the given secret values."""
    leaks = []
    for entry in AuditEntry.objects.all():
        for name in (
            "changes",
            "changes_text",
            "additional_data",
            "serialized_data",
            "object_repr",
        ):
            text = str(getattr(entry, name))
            leaks.extend((entry.pk, name, v) for v in values if v in text)
    return leaks


def test_token_values_never_reach_the_audit_tables(staff):
    first, second, third = "SECRET-FIRST-abcdef0123", "SECRET-SECOND-abcdef0123", "SECRET-3-x9"
    conference = Conference.objects.create(name="secretive")
    with audit_context(source="sync", actor_label="sync"):
        token = ConferenceToken.objects.create(
            conference=conference, remote_id="t-s", name="moderator", token=first
        )
    with audit_context(source="admin", actor=staff):
        record_event(obj=token, event="reveal", details={"value": first, "token": first})
        token.token = second  # a reset
        token.rotated_at = timezone.now()
        token.save()
        record_event(obj=token, event="reset", details={"old_token": first, "new": second})
        bulk_record(
            model=ConferenceToken, entries=[(token, Action.UPDATE, {"token": (second, third)})]
        )
        room = Room.objects.create(name="tok-room")
        IssuedRoomToken.objects.create(
            room=room,
            room_name=room.name,
            user_name="bob",
            scopes=["room.self.audio_mute"],
            fingerprint="f" * 64,
            issued_by=staff,
        )
        record_event(obj=room, event="issue", details={"user_name": "bob", "token": third})
    token.delete()

    assert AuditEntry.objects.filter(content_type__model="conferencetoken").count() >= 5
    assert _scan_for([first, second, third]) == []


# --- retention -------------------------------------------------------------------------


def _aged_entries(count, days_old):
    conference = Conference.objects.create(name=f"aged-{days_old}-{count}")
    AuditEntry.objects.filter(object_pk=str(conference.pk)).delete()
    for i in range(count):
        conference.description = f"v{i}"
        conference.save()
    old = timezone.now() - timedelta(days=days_old)
    AuditEntry.objects.filter(object_pk=str(conference.pk)).update(timestamp=old)
    return conference


def test_retention_deletes_only_expired_rows_in_batches():
    _aged_entries(5, days_old=100)
    recent = _aged_entries(2, days_old=1)

    assert delete_expired_entries(days=0) == 0
    with CaptureQueriesContext(connection) as queries:
        assert delete_expired_entries(days=30, batch_size=2) == 5
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3
    assert AuditEntry.objects.count() == 2
    assert {e.object_pk for e in AuditEntry.objects.all()} == {str(recent.pk)}


def test_cleanup_task_follows_the_retention_setting(settings):
    _aged_entries(3, days_old=10)
    settings.AUDIT_RETENTION_DAYS = 0
    assert audit_cleanup() == 0
    settings.AUDIT_RETENTION_DAYS = 7
    assert audit_cleanup() == 3
    assert not AuditEntry.objects.exists()
    assert audit_cleanup.name == "rooms.tasks.audit_cleanup"


def test_registered_models_exclude_reverse_relations():
    from auditlog.registry import auditlog

    assert "tokens" in auditlog.get_model_fields(Conference)["exclude_fields"]
    assert "issued_tokens" in auditlog.get_model_fields(Room)["exclude_fields"]
    assert auditlog.get_model_fields(ConferenceToken)["mask_fields"] == ["token"]
    assert audit.mask_value("anything") == MASK
