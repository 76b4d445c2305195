"""Conference and room forms take only what SignalWire's API can take, through the admin.

Clearing a field PUT cannot clear is refused on the field; meta must be a JSON object; a
value the sync took in that the form would refuse does not block the rest of the form.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from rooms import services, sync
from rooms.models import Conference, Room
from rooms.signalwire import schema

pytestmark = pytest.mark.django_db

SOON = timezone.now().replace(microsecond=0) + timedelta(days=2)
ROOM_VALUES = {
    "join_from": SOON,
    "join_until": SOON + timedelta(hours=3),
    "remove_at": SOON + timedelta(hours=4),
    "remove_after_seconds_elapsed": 900,
    "meta": {"team": "blue"},
}
# How each field is cleared in the posted form (the split date and time widget has two).
CLEARED = {
    "join_from": {"join_from_0": "", "join_from_1": ""},
    "join_until": {"join_until_0": "", "join_until_1": ""},
    "remove_at": {"remove_at_0": "", "remove_at_1": ""},
    "remove_after_seconds_elapsed": {"remove_after_seconds_elapsed": ""},
    "meta": {"meta": ""},
}


def change_url(obj) -> str:
    return reverse(f"admin:rooms_{obj._meta.model_name}_change", args=[obj.pk])


def puts(space) -> list[dict]:
    """The PUT requests the sandbox received."""
    return [r for r in space.requests if r["method"] == "PUT"]


@pytest.mark.parametrize("field", sorted(CLEARED))
def test_clearing_a_room_field_put_cannot_clear_is_refused_on_it(
    sandbox, admin_client, form_post_data, field
):
    room = services.room_create(data={"name": "scheduled", **ROOM_VALUES})
    before = dict(sandbox.rooms[room.remote_id])
    page = admin_client.get(change_url(room))

    response = admin_client.post(change_url(room), form_post_data(page, **CLEARED[field]))

    assert response.status_code == 200, "the form must not say it saved"
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    message = " ".join(errors[field])
    assert "cannot clear" in message and "instead" in message
    assert puts(sandbox) == []
    assert sandbox.rooms[room.remote_id] == before
    room.refresh_from_db()
    assert getattr(room, field) == ROOM_VALUES[field]


def test_the_refusal_offers_what_can_be_done_instead(sandbox, admin_client, form_post_data):
    room = services.room_create(data={"name": "capped", "remove_after_seconds_elapsed": 60})
    page = admin_client.get(change_url(room))
    cleared = admin_client.post(
        change_url(room), form_post_data(page, remove_after_seconds_elapsed="")
    )
    assert str(schema.REMOVE_AFTER_MAX) in str(cleared.context["adminform"].form.errors)

    # Doing what the message suggests saves, and SignalWire holds it.
    response = admin_client.post(
        change_url(room),
        form_post_data(page, remove_after_seconds_elapsed=str(schema.REMOVE_AFTER_MAX)),
    )

    assert response.status_code == 302
    assert sandbox.rooms[room.remote_id]["remove_after_seconds_elapsed"] == schema.REMOVE_AFTER_MAX


@pytest.mark.parametrize("field", ["join_from", "join_until"])
def test_clearing_a_conference_join_window_is_refused_on_it(
    sandbox, admin_client, form_post_data, field
):
    conference = services.conference_create(
        data={
            "name": "window",
            "display_name": "Window",
            "join_from": ROOM_VALUES["join_from"],
            "join_until": ROOM_VALUES["join_until"],
        }
    )
    page = admin_client.get(change_url(conference))

    response = admin_client.post(change_url(conference), form_post_data(page, **CLEARED[field]))

    assert response.status_code == 200
    assert "cannot clear" in " ".join(response.context["adminform"].form.errors[field])
    assert puts(sandbox) == []
    assert getattr(Conference.objects.get(pk=conference.pk), field) == ROOM_VALUES[field]


def test_other_edits_of_a_scheduled_room_still_save(sandbox, admin_client, form_post_data):
    room = services.room_create(data={"name": "keep-window", **ROOM_VALUES})
    page = admin_client.get(change_url(room))

    response = admin_client.post(change_url(room), form_post_data(page, max_members="9"))

    assert response.status_code == 302
    assert sandbox.rooms[room.remote_id]["max_members"] == 9
    assert Room.objects.get(pk=room.pk).join_until == ROOM_VALUES["join_until"]


@pytest.mark.parametrize("meta", ["[]", "[1]", '"text"', "7", "true"])
def test_room_meta_must_be_a_json_object(sandbox, admin_client, form_post_data, meta):
    add = reverse("admin:rooms_room_add")
    page = admin_client.get(add)

    response = admin_client.post(add, form_post_data(page, name="metered", meta=meta))

    errors = response.context["adminform"].form.errors
    assert list(errors) == ["meta"] and "JSON object" in " ".join(errors["meta"])
    assert sandbox.requests == [] and not Room.objects.exists()


def test_an_empty_object_is_valid_meta(sandbox, admin_client, form_post_data):
    room = services.room_create(data={"name": "emptied", "meta": {"team": "blue"}})
    page = admin_client.get(change_url(room))

    response = admin_client.post(change_url(room), form_post_data(page, meta="{}"))

    assert response.status_code == 302
    assert sandbox.rooms[room.remote_id]["meta"] == {}


# --- values the sync took in that the form would refuse -------------------------------

ODD = [
    pytest.param("description", "d" * (schema.DESCRIPTION_MAX + 500), "3000", id="long"),
    pytest.param("display_name", "Odd\x00Name", "Null characters", id="nul"),
]


def synced_odd_room(sandbox, field: str, value: str) -> Room | None:
    """A room whose remote value the form would refuse, taken in by a real sync.

    None on PostgreSQL for a NUL character, which its text and jsonb cannot hold: there
    the sync refuses the room with the reason in its run (so the form never sees it).
    """
    remote = sandbox.create_room({"name": "odd-room", "max_members": 5})
    sandbox.update_room(remote["id"], {field: value}, validate=False)
    run = sync.sync_rooms()
    if "\x00" in value and connection.vendor == "postgresql":
        assert run.errors == 1 and f"{field} holds a NUL character" in run.error
        assert not Room.objects.filter(remote_id=remote["id"]).exists()
        return None
    room = Room.objects.get(remote_id=remote["id"])
    assert getattr(room, field) == value
    return room


@pytest.mark.parametrize(("field", "value", "reason"), ODD)
def test_an_odd_synced_value_does_not_block_other_edits(
    sandbox, admin_client, form_post_data, field, value, reason
):
    room = synced_odd_room(sandbox, field, value)
    if room is None:
        return  # refused by the sync on PostgreSQL, as synced_odd_room asserted
    page = admin_client.get(change_url(room))
    # The page says which value is odd, and why.
    help_text = page.context["adminform"].form.fields[field].help_text
    assert "SignalWire holds a value here that the portal would refuse" in help_text
    assert reason in help_text

    response = admin_client.post(change_url(room), form_post_data(page, max_members="7"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    remote = sandbox.rooms[room.remote_id]
    assert remote["max_members"] == 7 and remote[field] == value
    assert field not in puts(sandbox)[-1]["body"]
    room.refresh_from_db()
    assert room.max_members == 7 and getattr(room, field) == value


@pytest.mark.parametrize(("field", "value", "reason"), ODD)
def test_an_odd_synced_value_that_is_edited_is_checked_again(
    sandbox, admin_client, form_post_data, field, value, reason
):
    room = synced_odd_room(sandbox, field, value)
    if room is None:
        return  # refused by the sync on PostgreSQL, as synced_odd_room asserted
    page = admin_client.get(change_url(room))

    still_odd = value + "x"
    refused = admin_client.post(change_url(room), form_post_data(page, **{field: still_odd}))
    fixed = admin_client.post(change_url(room), form_post_data(page, **{field: "Fixed"}))

    assert field in refused.context["adminform"].form.errors
    assert fixed.status_code == 302
    assert sandbox.rooms[room.remote_id][field] == "Fixed"


def test_an_odd_value_set_here_is_validated_like_input(sandbox, admin_client, form_post_data):
    room = services.room_create(data={"name": "scripted", "max_members": 5})
    # A script stored a value SignalWire does not hold (and would refuse).
    Room.objects.filter(pk=room.pk).update(description="d" * (schema.DESCRIPTION_MAX + 1))
    page = admin_client.get(change_url(room))
    note = page.context["adminform"].form.fields["description"].help_text
    assert "This row holds a value" in note

    response = admin_client.post(change_url(room), form_post_data(page, max_members="7"))

    assert "description" in response.context["adminform"].form.errors
    assert puts(sandbox) == []
