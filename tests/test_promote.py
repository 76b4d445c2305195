"""Compare with and promote to another Space: field by field, remote first, audited in both."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from rooms import services
from rooms.models import (
    ActionRun,
    Alert,
    AlertKind,
    AuditEntry,
    Conference,
    Room,
    Space,
    Stream,
    SyncState,
    environment_space,
)
from rooms.services import alerts, promote, streams
from rooms.services.common import client_for
from sandbox import SandboxServer
from tests.waiting import run_ended

B_PROJECT = "sandbox-b-project"
B_TOKEN = "sandbox-b-token-for-promote-tests-41d2"
STREAM_URL = "rtmps://live.example.com/app/stream-key-never-shown-5e1f"


@pytest.fixture(scope="session")
def sandbox_b_server():
    """A second sandbox Space with its own project, token and data, over real HTTP."""
    server = SandboxServer(host="127.0.0.1", port=0, project_id=B_PROJECT, api_token=B_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def space_b(sandbox, sandbox_b_server, db):
    """The second Space ("Production"), empty, its token stored encrypted."""
    assert sandbox_b_server.wait_until_answered()
    sandbox_b_server.space.reset()
    space = Space(name="Production", space_url=sandbox_b_server.url, project_id=B_PROJECT)
    space.set_token(B_TOKEN)
    space.save()
    yield space
    sandbox_b_server.wait_until_answered()
    sandbox_b_server.space.reset()


@pytest.fixture
def sandbox_b(space_b, sandbox_b_server):
    return sandbox_b_server.space


def _in_b(space_b, kind: str, **data):
    """Make a row in Space B through the services, as an edit there would."""
    client = client_for(space_b)
    create = services.conference_create if kind == "conference" else services.room_create
    return create(data={"space_id": space_b.pk, **data}, client=client)


def compare_url(row, space=None) -> str:
    url = reverse(f"admin:rooms_{row._meta.model_name}_compare", args=[row.pk])
    return f"{url}?space={space.pk}" if space is not None else url


def promote_url(row) -> str:
    return reverse(f"admin:rooms_{row._meta.model_name}_promote", args=[row.pk])


def _promote_post(client, row, space, **extra):
    """Open the compare page, then send its promote form (with its one-time nonce)."""
    page = client.get(compare_url(row, space))
    assert page.status_code == 200 and page.context["nonce"]
    return client.post(
        promote_url(row), {"space": space.pk, "nonce": page.context["nonce"], **extra}
    )


def _remote_by_name(collection: dict, name: str) -> dict | None:
    return next((o for o in collection.values() if o["name"] == name), None)


@pytest.fixture
def staff(client, django_user_model, sandbox):
    """Log in staff with these permissions, granted these Spaces."""

    def login(*codenames: str, spaces=()):
        user = django_user_model.objects.create_user(
            f"staff-{len(codenames)}-{len(spaces)}", password="pw", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        for space in spaces:
            space.staff.add(user)
        client.force_login(user)
        return client

    return login


EDIT_ROOMS = ("view_room", "change_room", "view_stream")


# --- compare ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_compare_shows_each_setting_beside_the_counterpart_and_marks_the_differences(
    sandbox, space_b, admin_client
):
    here = services.room_create(
        data={"name": "lobby", "display_name": "Lobby", "max_members": 12, "layout": "2x2"}
    )
    _in_b(space_b, "room", name="lobby", display_name="Lobby", max_members=30, layout="5up")
    alone = services.room_create(data={"name": "only-here", "display_name": "Only here"})

    page = admin_client.get(compare_url(here, space_b))

    comparison = page.context["comparison"]
    assert comparison.counterpart.space == space_b
    assert comparison.differences == ["max_members", "layout"]
    by_name = {f.name: f for f in comparison.fields}
    assert (by_name["max_members"].here, by_name["max_members"].there) == (12, 30)
    assert by_name["display_name"].same and by_name["quality"].same
    assert {"meta", "join_from", "join_until", "record_on_start"} <= set(by_name)
    html = page.content.decode()
    assert 'class="sw-compare-row sw-different" data-field="max_members"' in html
    assert 'class="sw-compare-row sw-same" data-field="display_name"' in html
    assert "2 setting(s) differ" in html

    missing = admin_client.get(compare_url(alone, space_b)).content.decode()
    assert "Not in that Space" in missing and "(not in that Space)" in missing
    # The change page links to it.
    change = admin_client.get(reverse("admin:rooms_room_change", args=[here.pk])).content.decode()
    assert compare_url(here) in change and "Promote to…" in change


# --- promote one --------------------------------------------------------------------------


@pytest.mark.django_db
def test_promote_creates_the_conference_in_the_target_space_audited_in_both_under_one_id(
    sandbox, sandbox_b, space_b, admin_client, admin_user
):
    source = services.conference_create(
        data={"name": "allhands", "display_name": "All hands", "layout": "2x2",
              "dark_primary": "#112233", "record_on_start": True}
    )
    source_tokens = set(source.tokens.values_list("token", flat=True))
    before_a = dict(sandbox.conferences[source.remote_id])
    sandbox.clear_requests()

    response = _promote_post(admin_client, source, space_b)

    assert response.status_code == 302
    remote = _remote_by_name(sandbox_b.conferences, "allhands")
    assert remote is not None
    assert (remote["display_name"], remote["layout"], remote["dark_primary"]) == (
        "All hands", "2x2", "#112233"
    )
    assert remote["record_on_start"] is True
    target = Conference.objects.get(space=space_b, name="allhands")
    assert (target.remote_id, target.sync_state) == (remote["id"], SyncState.SYNCED)
    # The source Space was only read, never written.
    assert sandbox.conferences[source.remote_id] == before_a
    assert [r for r in sandbox.requests if r["method"] != "GET"] == []
    # Tokens are the target's own: the source's values went nowhere.
    assert source_tokens and not source_tokens & set(target.tokens.values_list("token", flat=True))
    assert {t.space for t in target.tokens.all()} == {space_b}
    sent = " ".join(str(r) for r in sandbox_b.requests)
    assert not any(t in sent for t in source_tokens)

    created = AuditEntry.objects.get(object_pk=str(target.pk), action=AuditEntry.Action.CREATE,
                                     content_type__model="conference")
    event = AuditEntry.objects.get(object_pk=str(source.pk),
                                   additional_data__event="promoted to Production")
    assert created.space == space_b and event.space == environment_space()
    assert created.cid and created.cid == event.cid
    assert event.actor == admin_user and created.actor == admin_user
    assert event.additional_data["details"]["outcome"] == "created"
    assert event.additional_data["details"]["name"] == "allhands"


@pytest.mark.django_db
def test_promote_updates_an_existing_counterpart_and_the_source_event_says_what_changed(
    sandbox, sandbox_b, space_b, admin_user
):
    source = services.room_create(
        data={"name": "standup", "display_name": "Standup", "max_members": 8,
              "meta": {"team": "core"}}
    )
    there = _in_b(space_b, "room", name="standup", display_name="Old name", max_members=8)

    done = promote.promote_one(row=source, space=space_b, actor=admin_user)

    assert done.outcome == promote.UPDATED
    assert set(done.changes) == {"display_name", "meta"}
    remote = sandbox_b.rooms[there.remote_id]
    assert (remote["display_name"], remote["meta"]) == ("Standup", {"team": "core"})
    there.refresh_from_db()
    assert (there.display_name, there.meta, there.sync_state) == (
        "Standup", {"team": "core"}, SyncState.SYNCED
    )
    update = AuditEntry.objects.get(object_pk=str(there.pk), action=AuditEntry.Action.UPDATE,
                                    content_type__model="room")
    event = AuditEntry.objects.get(object_pk=str(source.pk),
                                   additional_data__event="promoted to Production")
    assert update.space == space_b and event.space == environment_space()
    assert update.cid == event.cid
    assert event.additional_data["details"]["changes"]["display_name"] == ["Old name", "Standup"]

    # Promoting again finds it the same: nothing is sent, nothing is recorded.
    sandbox_b.clear_requests()
    again = promote.promote_one(row=source, space=space_b, actor=admin_user)
    assert again.outcome == promote.SAME
    assert [r for r in sandbox_b.requests if r["method"] != "GET"] == []
    assert AuditEntry.objects.filter(additional_data__event="promoted to Production").count() == 1


@pytest.mark.django_db
def test_a_422_from_the_target_is_shown_on_the_page_and_changes_nothing_anywhere(
    sandbox, sandbox_b, space_b, admin_client
):
    source = services.room_create(data={"name": "review", "display_name": "Review"})
    there = _in_b(space_b, "room", name="review", display_name="Before")
    entries = AuditEntry.objects.count()
    sandbox_b.inject_fault(422, count=1, methods=["PUT"])

    response = _promote_post(admin_client, source, space_b)

    assert response.status_code == 200
    assert "Production refused the promotion; nothing was changed." in (
        response.content.decode()
    )
    assert sandbox_b.rooms[there.remote_id]["display_name"] == "Before"
    there.refresh_from_db()
    assert (there.display_name, there.sync_state) == ("Before", SyncState.SYNCED)
    assert AuditEntry.objects.count() == entries

    # A refused create leaves no row in the target either.
    other = services.room_create(data={"name": "fresh"})
    entries = AuditEntry.objects.count()
    sandbox_b.inject_fault(422, count=1, methods=["POST"])
    _promote_post(admin_client, other, space_b)
    assert not Room.objects.filter(space=space_b, name="fresh").exists()
    assert _remote_by_name(sandbox_b.rooms, "fresh") is None
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
def test_a_promote_form_sent_twice_promotes_once(sandbox, sandbox_b, space_b, admin_client):
    source = services.room_create(data={"name": "once", "display_name": "Once"})
    page = admin_client.get(compare_url(source, space_b))
    form = {"space": space_b.pk, "nonce": page.context["nonce"]}

    first = admin_client.post(promote_url(source), form)
    again = admin_client.post(promote_url(source), form, follow=True)

    assert first.status_code == 302
    assert "That promotion was sent already" in again.content.decode()
    creates = [r for r in sandbox_b.requests if r["method"] == "POST"]
    assert len(creates) == 1
    assert AuditEntry.objects.filter(additional_data__event="promoted to Production").count() == 1


# --- streams ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_streams_are_counted_without_the_reveal_permission_and_copied_only_with_it_and_a_tick(
    sandbox, sandbox_b, space_b, staff
):
    a = environment_space()
    source = services.room_create(data={"name": "broadcast", "display_name": "Broadcast"})
    streams.stream_create(owner=source, url=STREAM_URL)

    client = staff(*EDIT_ROOMS, spaces=[a, space_b])
    page = client.get(compare_url(source, space_b))
    html = page.content.decode()
    assert page.context["comparison"].streams_here == 1
    assert page.context["comparison"].stream_details_here is None
    assert "live.example.com" not in html and "stream-key" not in html
    assert 'name="copy_streams"' not in html
    # Ticking it anyway is refused; promoting without it copies no stream.
    forced = client.post(promote_url(source), {"space": space_b.pk, "copy_streams": "on",
                                               "nonce": page.context["nonce"]})
    assert forced.status_code == 403
    assert _promote_post(client, source, space_b).status_code == 302
    target = Room.objects.get(space=space_b, name="broadcast")
    assert not Stream.objects.filter(room=target).exists() and sandbox_b.streams == {}

    revealer = staff(*EDIT_ROOMS, "reveal_stream_url", spaces=[a, space_b])
    page = revealer.get(compare_url(source, space_b))
    html = page.content.decode()
    assert "live.example.com" in html and "stream-key" not in html
    assert 'name="copy_streams"' in html
    # Without the tick nothing is copied, even for someone who may.
    assert _promote_post(revealer, source, space_b).status_code == 302
    assert sandbox_b.streams == {}

    assert _promote_post(revealer, source, space_b, copy_streams="on").status_code == 302
    copied = Stream.objects.get(room=target)
    assert (copied.url, copied.space, copied.sync_state) == (STREAM_URL, space_b, SyncState.SYNCED)
    assert [s["url"] for s in sandbox_b.streams.values()] == [STREAM_URL]
    events = AuditEntry.objects.filter(
        object_pk=str(source.pk), additional_data__event="promoted to Production"
    )
    event = events.order_by("pk").last()
    assert event.additional_data["details"]["streams_copied"] == 1
    assert "stream-key" not in str(event.additional_data)


# --- access -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_without_access_to_the_target_space_cannot_compare_or_promote_there(
    sandbox, sandbox_b, space_b, staff
):
    source = services.room_create(data={"name": "private", "display_name": "Private"})
    client = staff(*EDIT_ROOMS, spaces=[environment_space()])

    assert client.get(compare_url(source, space_b)).status_code == 404
    assert client.post(promote_url(source), {"space": space_b.pk, "nonce": "x"}).status_code == 404
    page = client.get(compare_url(source))
    assert page.status_code == 200 and list(page.context["spaces"]) == []
    listing = client.post(reverse("admin:rooms_room_changelist"), {
        "action": "promote_selected", "_selected_action": [source.pk],
        "promote_step": "preview", "space": space_b.pk,
    })
    assert listing.status_code == 404
    assert sandbox_b.requests == [] and not Room.objects.filter(space=space_b).exists()

    viewer = staff("view_room", spaces=[environment_space(), space_b])
    page = viewer.get(compare_url(source, space_b))
    assert page.status_code == 200 and not page.context["can_promote"]
    assert viewer.post(promote_url(source), {"space": space_b.pk, "nonce": "x"}).status_code == 403


# --- many rows ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_bulk_promote_previews_then_the_worker_promotes_each_row_as_one_run(
    sandbox, sandbox_b, space_b, admin_client, admin_user, celery_worker
):
    rows = [
        services.conference_create(data={"name": name, "display_name": name.title(),
                                         "layout": "2x2"})
        for name in ("alpha", "bravo", "charlie", "delta")
    ]
    _in_b(space_b, "conference", name="bravo", display_name="Bravo", layout="2x2")
    _in_b(space_b, "conference", name="charlie", display_name="Old", layout="5up")
    gone = _in_b(space_b, "conference", name="delta", display_name="Delta", layout="5up")
    Conference.objects.filter(pk=gone.pk).update(sync_state=SyncState.DELETED_REMOTELY)
    changelist = reverse("admin:rooms_conference_changelist")
    sandbox_b.clear_requests()
    selection = {"action": "promote_selected", "_selected_action": [r.pk for r in rows]}

    choose = admin_client.post(changelist, selection)
    assert 'name="promote_step" value="preview"' in choose.content.decode()
    preview = admin_client.post(changelist, {**selection, "promote_step": "preview",
                                             "space": space_b.pk})
    assert preview.context["counts"] == {
        "created": 1, "updated": 1, "already_same": 1, "failed": 1, "skipped_same_space": 0
    }
    charlie = next(p for p in preview.context["preview"] if p.row.name == "charlie")
    assert {label for label, _, _ in charlie.fields} == {"display name", "layout"}
    assert ActionRun.objects.count() == 0 and sandbox_b.requests == []

    confirm = {**selection, "promote_step": "confirm", "space": space_b.pk,
               "nonce": preview.context["nonce"]}
    response = admin_client.post(changelist, confirm)
    again = admin_client.post(changelist, confirm)

    run = run_ended(ActionRun.objects.get())
    assert again.status_code == 302 and ActionRun.objects.count() == 1
    assert response["Location"] == reverse("admin:rooms_actionrun_change", args=[run.pk])
    assert (run.action, run.space, run.state, run.done) == (
        ActionRun.Action.PROMOTE, space_b, ActionRun.State.FINISHED_WITH_ERRORS, 4
    )
    assert run.counts == {"created": 1, "updated": 1, "already_same": 1, "failed": 1}
    assert [f["name"] for f in run.failures] == ["Delta"]
    assert "deleted in Production" in run.failures[0]["message"]
    for name, title in (("alpha", "Alpha"), ("bravo", "Bravo"), ("charlie", "Charlie")):
        remote = _remote_by_name(sandbox_b.conferences, name)
        assert (remote["display_name"], remote["layout"]) == (title, "2x2")
    # Both Spaces' entries carry the run's id.
    entries = AuditEntry.objects.filter(cid=run.run_id.hex)
    assert {e.space_id for e in entries} == {environment_space().pk, space_b.pk}
    assert entries.filter(additional_data__event="promoted to Production").count() == 2

    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-outcome="created"' in page and 'data-outcome="already_same"' in page
    assert 'data-outcome="failed"' in page
    # A promotion that ended with failures opens an alert pointing at its run.
    alerts.check_alerts()
    alert = Alert.objects.get(kind=AlertKind.RUN_FAILURES)
    # It belongs to the target Space, whose staff see the run.
    assert (alert.subject, alert.space, alert.count) == (
        "promote:conference in Production", space_b, 1
    )
    assert alert.link == response["Location"]
    assert "display name, layout" in page


# --- in the browser -----------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_from_the_change_page_compare_then_promote_in_the_browser(
    sandbox, sandbox_b, space_b, live_server, page, screenshot
):
    from playwright.sync_api import expect

    from tests.browser_helpers import admin_url, login, make_superuser

    source = services.room_create(
        data={"name": "townhall", "display_name": "Town hall", "max_members": 40}
    )
    _in_b(space_b, "room", name="townhall", display_name="Town hall", max_members=10)
    make_superuser("boss")
    login(page, live_server.url, "boss")

    page.goto(admin_url(live_server.url, "rooms_room_change", source.pk))
    page.get_by_role("link", name="Compare with…").click()
    page.locator("#id_space").select_option(label="Production")
    page.get_by_role("button", name="Compare").click()

    expect(page.locator('tr.sw-different[data-field="max_members"]')).to_contain_text("40")
    expect(page.locator('tr.sw-different[data-field="max_members"]')).to_contain_text("10")
    expect(page.locator('tr.sw-same[data-field="display_name"]')).to_be_visible()
    screenshot("compare")
    page.get_by_role("button", name="Promote to Production").click()

    expect(page.locator(".messagelist .success")).to_contain_text(
        "“townhall” in Production: updated (max members)"
    )
    expect(page.locator('tr.sw-same[data-field="max_members"]')).to_be_visible()
    assert _remote_by_name(sandbox_b.rooms, "townhall")["max_members"] == 40


@pytest.mark.django_db
def test_a_promotions_create_whose_answer_was_lost_is_replayed_in_the_target_space_only(
    sandbox, space_b, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from rooms import intents
    from rooms.models import RemoteIntent

    source = services.room_create(data={"name": "lobby", "display_name": "Lobby"})
    # What a promotion records before it asks the target Space, left behind by a crash.
    with services.acting(AuditEntry.Source.ADMIN, None):
        intent = intents.record(
            kind="room", model=Room, action=RemoteIntent.Action.CREATE,
            row=Room(name="lobby", space_id=space_b.pk),
            data={"space_id": space_b.pk, "name": "lobby", "display_name": "Lobby B"},
        )
    RemoteIntent.objects.filter(pk=intent.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.SIGNALWIRE_INTENT_GRACE + 60)
    )

    pk = intents.replay(intent=RemoteIntent.objects.get(pk=intent.pk), model=Room)

    replayed = Room.objects.get(pk=pk)
    assert (replayed.space, replayed.display_name, replayed.sync_state) == (
        space_b, "Lobby B", SyncState.PENDING_PUSH
    )
    source.refresh_from_db()
    assert (source.space, source.display_name, source.sync_state) == (
        environment_space(), "Lobby", SyncState.SYNCED
    )
