"""Room admin over the sandbox: remote-first forms, read-only API fields, list efficiency."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rooms import services
from rooms.models import Room, SyncState
from rooms.services import tokens

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rooms_room_changelist")
ADD = reverse("admin:rooms_room_add")


def change_url(obj) -> str:
    return reverse("admin:rooms_room_change", args=[obj.pk])


def test_add_creates_in_signalwire_first(sandbox, admin_client, form_post_data):
    page = admin_client.get(ADD)
    data = form_post_data(page, name="huddle", max_members="8", meta='{"team": "blue"}')

    response = admin_client.post(ADD, data)

    assert response.status_code == 302
    room = Room.objects.get(name="huddle")
    remote = sandbox.rooms[room.remote_id]
    assert (remote["max_members"], remote["meta"]) == (8, {"team": "blue"})
    assert room.remote_created_at is not None and room.fps == remote["fps"]


def test_add_while_down_keeps_the_room_pending(
    sandbox, admin_client, form_post_data, queued, run_queued, django_capture_on_commit_callbacks
):
    page = admin_client.get(ADD)
    sandbox.inject_fault(503)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD, form_post_data(page, name="offline"))

    assert response.status_code == 302
    room = Room.objects.get(name="offline")
    assert room.sync_state == SyncState.PENDING_PUSH and room.remote_id is None
    listing = admin_client.get(CHANGELIST)
    assert b"sw-badge--pending_push" in listing.content
    sandbox.clear_faults()
    run_queued()
    room.refresh_from_db()
    assert room.remote_id in sandbox.rooms


def test_out_of_range_input_is_refused_locally(sandbox, admin_client, form_post_data):
    page = admin_client.get(ADD)
    response = admin_client.post(
        ADD, form_post_data(page, name="big", max_members="301", meta="[1, 2]")
    )

    errors = response.context["adminform"].form.errors
    assert {"max_members", "meta"} <= set(errors)
    assert sandbox.requests == [] and not Room.objects.exists()


HOSTILE_META = {
    "deep": ("[" * 5000, "nested more than 32 levels"),
    "deep_object": ('{"a":' * 40 + "1" + "}" * 40, "nested more than 32 levels"),
    "nan": ('{"a": NaN}', "Only finite numbers"),
    "infinity": ('{"a": -Infinity}', "Only finite numbers"),
    "huge": ('{"a": 1e999}', "Only finite numbers"),
}


@pytest.mark.parametrize("meta", HOSTILE_META, ids=list(HOSTILE_META))
def test_meta_that_is_not_strict_json_is_refused_on_its_field(
    sandbox, admin_client, form_post_data, meta
):
    text, message = HOSTILE_META[meta]
    room = services.room_create(data={"name": "kept", "meta": {"team": "blue"}})
    sandbox.clear_requests()

    added = admin_client.post(ADD, form_post_data(admin_client.get(ADD), name="new", meta=text))
    page = admin_client.get(change_url(room))
    changed = admin_client.post(change_url(room), form_post_data(page, meta=text))

    for response in (added, changed):
        assert response.status_code == 200
        assert message in " ".join(response.context["adminform"].form.errors["meta"])
    assert sandbox.requests == [] and not Room.objects.filter(name="new").exists()
    room.refresh_from_db()
    assert room.meta == {"team": "blue"} and room.sync_state == SyncState.SYNCED


@pytest.mark.parametrize("meta", [{"a": float("nan")}, {"a": float("inf")}])
def test_a_script_saving_a_non_finite_meta_is_refused_before_anything_is_stored(sandbox, meta):
    from django.core.exceptions import ValidationError

    from rooms.models import RemoteIntent

    room = services.room_create(data={"name": "kept", "meta": {"team": "blue"}})
    sandbox.clear_requests()

    with pytest.raises(ValidationError) as caught:
        services.room_update(room=room, data={"meta": meta})

    assert "Only finite numbers" in str(caught.value.message_dict["meta"])
    assert sandbox.requests == [] and not RemoteIntent.objects.exists()
    assert Room.objects.get(pk=room.pk).meta == {"team": "blue"}


def test_fields_the_api_cannot_change_are_read_only(sandbox, admin_client):
    room = services.room_create(data={"name": "fixed", "max_members": 5})
    page = admin_client.get(change_url(room))

    form = page.context["adminform"].form
    for name in ("name", "fps", "prioritize_handraise", "tone_on_entry_and_exit", "remote_id"):
        assert name not in form.fields
    assert {"display_name", "max_members", "layout"} <= set(form.fields)
    assert b"sw-json" in page.content  # the raw payload, pretty-printed


def test_change_lands_and_stays_synced(sandbox, admin_client, form_post_data):
    room = services.room_create(data={"name": "edit-me", "max_members": 5})
    page = admin_client.get(change_url(room))

    response = admin_client.post(change_url(room), form_post_data(page, max_members="9"))

    assert response.status_code == 302
    assert sandbox.rooms[room.remote_id]["max_members"] == 9
    assert Room.objects.get(pk=room.pk).sync_state == SyncState.SYNCED


def test_filters_and_search(sandbox, admin_client):
    Room.objects.bulk_create(
        [
            Room(name="alpha", remote_id="r-a", sync_state=SyncState.DELETED_REMOTELY),
            Room(name="beta", remote_id="r-b", quality="1080p"),
        ]
    )

    deleted = admin_client.get(CHANGELIST, {"deleted_remotely": "yes"})
    assert [r.name for r in deleted.context["cl"].result_list] == ["alpha"]
    hd = admin_client.get(CHANGELIST, {"quality": "1080p"})
    assert [r.name for r in hd.context["cl"].result_list] == ["beta"]
    by_id = admin_client.get(CHANGELIST, {"q": "r-b"})
    assert [r.name for r in by_id.context["cl"].result_list] == ["beta"]


def _changelist_queries(admin_client, count: int) -> int:
    Room.objects.all().delete()
    Room.objects.bulk_create(
        Room(name=f"room-{i:05d}", remote_id=f"r-{i}", layout="2x2") for i in range(count)
    )
    admin_client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"layout": "2x2", "o": "-2"})
    assert response.status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_rows(admin_client):
    assert _changelist_queries(admin_client, 10) == _changelist_queries(admin_client, 1000)


def test_issued_token_pages_render_read_only(sandbox, admin_client, admin_user):
    room = services.room_create(data={"name": "issued"})
    _, record = tokens.room_token_mint(room=room, role="guest", actor=admin_user)

    listing = admin_client.get(reverse("admin:rooms_issuedroomtoken_changelist"))
    assert listing.status_code == 200 and b"issued" in listing.content
    detail = admin_client.get(reverse("admin:rooms_issuedroomtoken_change", args=[record.pk]))
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert admin_client.get(reverse("admin:rooms_issuedroomtoken_add")).status_code == 403


@pytest.mark.parametrize("name", ["admin:rooms_room_changelist", "admin:rooms_room_add"])
def test_pages_render(admin_client, name):
    assert admin_client.get(reverse(name)).status_code == 200


def test_change_delete_and_mint_pages_render(sandbox, admin_client):
    room = services.room_create(data={"name": "pages"})
    for name in ("change", "delete", "history", "mint_token"):
        url = reverse(f"admin:rooms_room_{name}", args=[room.pk])
        assert admin_client.get(url).status_code == 200, name
