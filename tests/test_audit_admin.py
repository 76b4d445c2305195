"""Audit in admin: request context, the read-only change log, history pages and restore.

The conference and room admins are written elsewhere; these tests mount their own admin
site (as urlconf of this module) whose Conference and Room admins inherit
AuditHistoryMixin, so the audit pages are tested whatever those admins look like.
"""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone

from rooms import services
from rooms.admin.audit import AuditEntryAdmin
from rooms.admin.history import AuditHistoryMixin
from rooms.audit import audit_context, bulk_record, record_event
from rooms.models import AuditEntry, Conference, ConferenceToken, IssuedRoomToken, Room
from rooms.services import tokens
from rooms.signalwire.client import SignalWireClient
from rooms.signalwire.errors import ValidationError as RemoteValidationError

Action = AuditEntry.Action


class ConferenceHistoryAdmin(AuditHistoryMixin, admin.ModelAdmin):
    fields = ["name", "display_name", "description"]


class RoomHistoryAdmin(AuditHistoryMixin, admin.ModelAdmin):
    fields = ["name", "display_name", "max_members"]


site = admin.AdminSite(name="admin")
site.register(AuditEntry, AuditEntryAdmin)
site.register(Conference, ConferenceHistoryAdmin)
site.register(Room, RoomHistoryAdmin)
urlpatterns = [path("admin/", site.urls)]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def history_url(obj):
    return reverse(f"admin:rooms_{obj._meta.model_name}_history", args=[obj.pk])


# --- the request context ---------------------------------------------------------------


def test_admin_request_records_staff_user_source_and_request_id(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:rooms_conference_add"),
        {"name": "from-admin", "display_name": "From admin", "description": ""},
    )
    assert response.status_code == 302
    request_id = response["X-Request-Id"]
    conference = Conference.objects.get(name="from-admin")

    entry = AuditEntry.objects.get_for_object(conference).get(action=Action.CREATE)
    assert entry.source == AuditEntry.Source.ADMIN
    assert entry.actor == admin_user
    assert entry.actor_label == admin_user.get_username()
    assert entry.cid == request_id
    assert entry.remote_addr == "127.0.0.1"
    assert entry.changes["display_name"] == [None, "From admin"]


def test_each_request_gets_its_own_id_and_non_staff_get_no_context(admin_client, client):
    first = admin_client.get(reverse("admin:rooms_auditentry_changelist"))
    second = admin_client.get(reverse("admin:rooms_auditentry_changelist"))
    assert first["X-Request-Id"] != second["X-Request-Id"]

    client.force_login(
        get_user_model().objects.create_user("outsider", password="pw", is_staff=False)
    )
    response = client.get(reverse("admin:index"))
    assert "X-Request-Id" not in response


# --- the change log --------------------------------------------------------------------


def _bulk_entries(count):
    users = [
        get_user_model().objects.get_or_create(username=f"staff{i}", is_staff=True)[0]
        for i in range(3)
    ]
    types = list(ContentType.objects.get_for_models(Conference, Room, ConferenceToken).values())
    AuditEntry.objects.bulk_create(
        AuditEntry(
            content_type=types[i % 3],
            object_pk=str(i),
            object_id=i,
            object_repr=f"thing-{i}",
            action=i % 3,
            changes={"display_name": [f"old {i}", f"new {i}"], "quality": ["720p", "1080p"]},
            actor=users[i % 3] if i % 2 else None,
            actor_label="sync" if i % 2 == 0 else users[i % 3].username,
            source="sync" if i % 2 == 0 else "admin",
            cid=f"cid-{i % 7}",
            object_remote_id=f"remote-{i}",
            timestamp=timezone.now(),
        )
        for i in range(count)
    )


def _changelist_queries(client, **params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:rooms_auditentry_changelist"), params)
    assert response.status_code == 200
    return len(queries.captured_queries), response


def test_change_log_query_count_stays_constant_as_rows_grow(admin_client):
    _bulk_entries(10)
    few, _ = _changelist_queries(admin_client)
    few_filtered, _ = _changelist_queries(admin_client, source="sync", q="thing")
    _bulk_entries(190)
    many, response = _changelist_queries(admin_client)
    many_filtered, _ = _changelist_queries(admin_client, source="sync", q="thing")

    assert AuditEntry.objects.count() == 200
    assert response.context["cl"].result_list.__len__() == 100
    assert many == few
    assert many_filtered == few_filtered


def test_change_log_filters_and_search(admin_client):
    _bulk_entries(20)
    _, by_cid = _changelist_queries(admin_client, cid="cid-3")
    assert {e.cid for e in by_cid.context["cl"].result_list} == {"cid-3"}
    _, by_remote = _changelist_queries(admin_client, q="remote-17")
    assert [e.object_pk for e in by_remote.context["cl"].result_list] == ["17"]
    _, by_source = _changelist_queries(admin_client, source="admin", action="1")
    assert {(e.source, e.action) for e in by_source.context["cl"].result_list} == {("admin", 1)}
    room_type = ContentType.objects.get_for_model(Room)
    _, by_type = _changelist_queries(admin_client, content_type=room_type.pk, actor="none")
    rows = by_type.context["cl"].result_list
    assert rows and {(e.content_type_id, e.actor_id) for e in rows} == {(room_type.pk, None)}
    _, by_date = _changelist_queries(
        admin_client, timestamp__year=timezone.now().year, timestamp__month=timezone.now().month
    )
    assert len(by_date.context["cl"].result_list) == 20


def test_nobody_can_add_edit_or_delete_audit_rows(admin_client, admin_user):
    assert admin_user.is_superuser
    Conference.objects.create(name="audited")
    entry = AuditEntry.objects.latest("pk")

    assert admin_client.get(reverse("admin:rooms_auditentry_add")).status_code == 403
    change = reverse("admin:rooms_auditentry_change", args=[entry.pk])
    delete = reverse("admin:rooms_auditentry_delete", args=[entry.pk])
    assert admin_client.get(change).status_code == 403
    assert admin_client.post(change, {"object_repr": "forged"}).status_code == 403
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403

    response = admin_client.get(reverse("admin:rooms_auditentry_changelist"))
    assert b"delete_selected" not in response.content
    assert response.context.get("action_form") is None
    response = admin_client.post(
        reverse("admin:rooms_auditentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    entry.refresh_from_db()
    assert entry.object_repr == "audited"


def test_the_portals_own_admin_site_uses_the_read_only_change_log():
    assert isinstance(admin.site._registry[AuditEntry], AuditEntryAdmin)


# --- history ---------------------------------------------------------------------------


def test_history_page_shows_readable_diffs_with_request_links(admin_client, admin_user):
    with audit_context(source="sync", actor_label="sync", correlation_id="run-77"):
        conference = Conference.objects.create(name="historic", display_name="First")
    with audit_context(source="admin", actor=admin_user, correlation_id="req-88"):
        conference.display_name = "Second"
        conference.save()
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="tok-h", name="guest", token="HISTORY-SECRET-999"
    )

    response = admin_client.get(history_url(conference))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Display name" in html
    assert "First" in html and "Second" in html
    assert "run-77"[:8] in html and "?cid=run-77" in html and "?cid=req-88" in html
    assert admin_user.get_username() in html and "Sync" in html
    assert "HISTORY-SECRET-999" not in html
    rows = response.context["entries"]
    assert [r.entry.action for r in rows][-2:] == [Action.UPDATE, Action.CREATE]
    assert any(r.entry.object_pk == str(token.pk) for r in rows)  # its tokens' entries too
    update = next(r for r in rows if r.entry.action == Action.UPDATE and r.entry.cid == "req-88")
    assert [(c.label, c.old, c.new) for c in update.changes] == [
        ("Display name", "First", "Second")
    ]
    assert update.restore_url


def test_room_history_includes_its_issued_tokens(admin_client, admin_user):
    room = Room.objects.create(name="with-tokens")
    IssuedRoomToken.objects.create(
        room=room, room_name=room.name, user_name="carol", scopes=["room.self.audio_mute"],
        fingerprint="a" * 64, issued_by=admin_user,
    )
    other = Room.objects.create(name="without-tokens")

    response = admin_client.get(history_url(room))
    assert response.status_code == 200
    kinds = [r.entry.content_type.model for r in response.context["entries"]]
    assert kinds.count("issuedroomtoken") == 1
    assert "carol" in response.content.decode()
    response = admin_client.get(history_url(other))
    assert [r.entry.content_type.model for r in response.context["entries"]] == ["room"]


def test_history_finds_token_entries_by_the_related_columns_alone(admin_client):
    conference = Conference.objects.create(name="by-columns")
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="tok-col", name="guest", token="COLUMN-SECRET-1"
    )
    # Entries written before additional_data named the conference are still found.
    AuditEntry.objects.filter(content_type__model="conferencetoken").update(additional_data={})

    response = admin_client.get(history_url(conference))
    assert any(r.entry.object_pk == str(token.pk) for r in response.context["entries"])
    other = Conference.objects.create(name="no-tokens")
    response = admin_client.get(history_url(other))
    assert [r.entry.content_type.model for r in response.context["entries"]] == ["conference"]


def test_history_links_the_change_log_filtered_to_the_object_and_its_tokens(admin_client):
    conference = Conference.objects.create(name="linked")
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="tok-link", name="guest", token="LINK-SECRET-1"
    )
    Conference.objects.create(name="unrelated")

    link = admin_client.get(history_url(conference)).context["changelog_url"]
    response = admin_client.get(link)
    assert response.status_code == 200
    shown = {(e.content_type.model, e.object_pk) for e in response.context["cl"].result_list}
    assert shown == {("conference", str(conference.pk)), ("conferencetoken", str(token.pk))}
    bad = admin_client.get(reverse("admin:rooms_auditentry_changelist"), {"about": "x.1"})
    assert bad.status_code == 400


def test_token_events_read_the_same_in_history_and_the_change_log(admin_client, admin_user):
    conference = Conference.objects.create(name="eventful")
    token = ConferenceToken.objects.create(
        conference=conference, remote_id="tok-ev", name="guest", token="EVENT-SECRET-42"
    )
    tokens.conference_token_reveal(token=token, actor=admin_user)
    with audit_context(source="admin", actor=admin_user):
        record_event(obj=token, event="reset", details={"answer_lost": True})

    rows = admin_client.get(history_url(conference)).context["entries"]
    events = [(r.action, r.about, r.details) for r in rows if r.event]
    assert events == [
        ("Reset", "Conference token: eventful · guest", "{\"answer_lost\": true}"),
        ("Reveal", "Conference token: eventful · guest", ""),
    ]
    log = admin_client.get(reverse("admin:rooms_auditentry_changelist"))
    html = log.content.decode()
    assert "Reveal" in html and "Reset" in html and "answer_lost" in html
    assert "EVENT-SECRET-42" not in html


def _history_queries(client, obj):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(history_url(obj))
    assert response.status_code == 200
    return len(queries.captured_queries), response


def test_history_query_count_stays_constant_as_token_entries_grow(admin_client, admin_user):
    conference = Conference.objects.create(name="many-tokens")
    tokens = [
        ConferenceToken.objects.create(
            conference=conference, remote_id=f"tok-{i}", name=f"t{i}", token=f"QC-SECRET-{i}"
        )
        for i in range(2)
    ]
    _history_queries(admin_client, conference)  # warm the session and content-type caches
    few, _ = _history_queries(admin_client, conference)
    for i in range(2, 30):
        tokens.append(
            ConferenceToken.objects.create(
                conference=conference, remote_id=f"tok-{i}", name=f"t{i}", token=f"QC-{i}"
            )
        )
    with audit_context(source="admin", actor=admin_user):
        for token in tokens:
            record_event(obj=token, event="reveal")
    many, response = _history_queries(admin_client, conference)

    assert len(response.context["entries"]) == 50  # a full page, mixed creates and events
    assert many == few


# --- restore ---------------------------------------------------------------------------


@pytest.fixture
def landed_conference(sandbox, admin_user):
    """A conference created and then edited through the services against the sandbox."""
    conference = services.conference_create(
        data={"name": "restorable", "display_name": "Before", "quality": "720p"},
        actor=admin_user,
    )
    conference = services.conference_update(
        conference=conference,
        data={"display_name": "After", "quality": "1080p", "record_on_start": True},
        actor=admin_user,
    )
    assert sandbox.conferences[conference.remote_id]["display_name"] == "After"
    entry = AuditEntry.objects.get_for_object(conference).filter(action=Action.UPDATE).latest("pk")
    return conference, entry


def restore_url(conference, entry):
    return reverse("admin:rooms_conference_audit_restore", args=[conference.pk, entry.pk])


def test_restore_confirms_then_pushes_old_values_to_signalwire(
    landed_conference, sandbox, admin_client, admin_user
):
    conference, entry = landed_conference
    url = restore_url(conference, entry)

    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert ("Display name", "After", "Before") in confirm.context["rows"]
    assert sandbox.conferences[conference.remote_id]["display_name"] == "After"

    sandbox.clear_requests()
    response = admin_client.post(url)
    assert response.status_code == 302
    remote = sandbox.conferences[conference.remote_id]
    assert (remote["display_name"], remote["quality"], remote["record_on_start"]) == (
        "Before",
        "720p",
        False,
    )
    puts = [r for r in sandbox.requests if r["method"] == "PUT"]
    assert len(puts) == 1
    conference.refresh_from_db()
    assert (conference.display_name, conference.quality) == ("Before", "720p")

    restored = AuditEntry.objects.get_for_object(conference).latest("pk")
    assert restored.action == Action.UPDATE
    assert (restored.source, restored.actor) == (AuditEntry.Source.ADMIN, admin_user)
    assert restored.cid == response["X-Request-Id"]
    assert restored.changes["display_name"] == ["After", "Before"]
    assert restored.changes["quality"] == ["1080p", "720p"]


def test_restore_refused_by_signalwire_changes_nothing(
    landed_conference, sandbox, admin_client, monkeypatch
):
    conference, entry = landed_conference
    before = AuditEntry.objects.count()

    def refuse(self, conference_id, data):
        raise RemoteValidationError(field_errors={"display_name": ["Display name is invalid"]})

    monkeypatch.setattr(SignalWireClient, "update_conference", refuse)
    response = admin_client.post(restore_url(conference, entry), follow=True)

    assert response.status_code == 200
    assert "Display name is invalid" in response.content.decode()
    assert "nothing changed" in response.content.decode()
    conference.refresh_from_db()
    assert conference.display_name == "After"
    assert sandbox.conferences[conference.remote_id]["display_name"] == "After"
    assert AuditEntry.objects.count() == before


def test_restore_only_offers_updates_of_managed_fields(landed_conference, admin_client):
    conference, _ = landed_conference
    create = AuditEntry.objects.get_for_object(conference).get(action=Action.CREATE)
    assert admin_client.get(restore_url(conference, create)).status_code == 404


def test_restore_a_room_reverts_a_remote_edit_seen_by_the_sync(sandbox, admin_client):
    room = services.room_create(
        data={"name": "restorable-room", "max_members": 10, "description": "local"}
    )
    # A remote edit arrives through the sync as a bulk-recorded change.
    sandbox.update_room(room.remote_id, {"max_members": 25, "description": "remote"})
    Room.objects.filter(pk=room.pk).update(max_members=25, description="remote")
    with audit_context(source="sync", actor_label="sync", correlation_id="run-9"):
        bulk_record(
            model=Room,
            entries=[
                (
                    Room.objects.get(pk=room.pk),
                    Action.UPDATE,
                    {
                        "max_members": (10, 25),
                        "description": ("local", "remote"),
                        "raw.fps": (20, 30),
                        "deleted_in_signalwire": (True, False),
                    },
                )
            ],
        )
    entry = AuditEntry.objects.filter(cid="run-9").get()
    history = admin_client.get(history_url(room))
    labels = [c.label for r in history.context["entries"] for c in r.changes]
    assert "fps (SignalWire only)" in labels and "Deleted in signalwire" in labels

    url = reverse("admin:rooms_room_audit_restore", args=[room.pk, entry.pk])
    assert admin_client.post(url).status_code == 302
    remote = sandbox.rooms[room.remote_id]
    assert (remote["max_members"], remote["description"]) == (10, "local")
    assert AuditEntry.objects.get_for_object(room).latest("pk").changes["max_members"] == [25, 10]
