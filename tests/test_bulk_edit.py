"""Bulk edits: many rows changed through the single-row service, in batches, as one run."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from rooms import services, sync
from rooms.models import ActionRun, AuditEntry, Conference, Room, SyncState
from rooms.services import bulk
from tests.concurrent import post_together
from tests.waiting import run_ended, wait_until

CHANGELIST = reverse("admin:rooms_conference_changelist")


def _conference_puts(sandbox, remote_id: str) -> list[dict]:
    return [
        r for r in sandbox.requests
        if r["method"] == "PUT" and r["path"] == f"/api/video/conferences/{remote_id}"
    ]


def _edit_entries(run: ActionRun) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(cid=run.run_id.hex, action=AuditEntry.Action.UPDATE))


def _all_synced() -> bool:
    """Tell whether no conference waits for a push any more."""
    return not Conference.objects.exclude(sync_state=SyncState.SYNCED).exists()


@pytest.fixture
def seeded(sandbox):
    """Seed the sandbox with conferences and mirror them, as a first sync would."""

    def seed(count: int) -> list[Conference]:
        sandbox.seed(conferences=count, seed=16)
        sync.sync_conferences()
        return list(Conference.objects.order_by("pk"))

    return seed


@pytest.mark.django_db(transaction=True)
def test_a_bulk_edit_changes_every_row_in_signalwire_and_here_under_one_run_id(
    sandbox, seeded, admin_user, celery_worker
):
    rows = seeded(5)
    sandbox.clear_requests()

    run = bulk.bulk_edit_start(
        model=Conference, pks=[r.pk for r in rows],
        changes={"layout": "5up", "dark_primary": "#112233"}, actor=admin_user,
    )

    run_ended(run)
    assert (run.action, run.state, run.total, run.done) == (
        ActionRun.Action.BULK_EDIT, ActionRun.State.SUCCEEDED, 5, 5
    )
    assert run.counts == {"changed": 5} and run.finished_at is not None
    assert run.changes == {"layout": "5up", "dark_primary": "#112233"}
    for row in rows:
        remote = sandbox.conferences[row.remote_id]
        assert (remote["layout"], remote["dark_primary"]) == ("5up", "#112233")
        local = Conference.objects.get(pk=row.pk)
        assert (local.layout, local.sync_state) == ("5up", SyncState.SYNCED)
        assert len(_conference_puts(sandbox, row.remote_id)) == 1
    entries = _edit_entries(run)
    assert sorted(int(e.object_pk) for e in entries) == [r.pk for r in rows]
    assert all(e.actor == admin_user and e.source == AuditEntry.Source.ADMIN for e in entries)
    for entry in entries:
        assert entry.changes["dark_primary"][1] == "#112233"
        assert set(entry.changes) <= {"layout", "dark_primary"}
    # Nothing was left for a push task: no other request reached SignalWire.
    assert [r["method"] for r in sandbox.requests] == ["PUT"] * 5


@pytest.mark.django_db(transaction=True)
def test_rows_with_unpushed_changes_or_deleted_remotely_are_skipped_and_counted(
    sandbox, seeded, admin_user, celery_worker
):
    rows = seeded(5)
    Conference.objects.filter(pk=rows[0].pk).update(sync_state=SyncState.PENDING_PUSH,
                                                     display_name="My unpushed edit")
    Conference.objects.filter(pk=rows[1].pk).update(sync_state=SyncState.DELETED_REMOTELY)
    # Deleted in SignalWire since the last sync: found out by the PUT itself.
    sandbox.delete_conference(rows[2].remote_id)
    already = rows[3]
    Conference.objects.filter(pk=already.pk).update(description="Bulk edited")
    sandbox.update_conference(already.remote_id, {"description": "Bulk edited"})
    sandbox.clear_requests()

    run = bulk.bulk_edit_start(
        model=Conference, pks=[r.pk for r in rows], changes={"description": "Bulk edited"},
        actor=admin_user,
    )

    run_ended(run)
    assert run.counts == {
        "skipped_unpushed": 1, "skipped_deleted_remotely": 2, "unchanged": 1, "changed": 1
    }
    assert bulk.run_outcomes(run) == {
        "changed": 1, "unchanged": 1, "pending": 0, "failed": 0, "skipped": 3
    }
    # The unpushed edit is kept as it was, not sent along with the bulk edit.
    kept = Conference.objects.get(pk=rows[0].pk)
    assert (kept.display_name, kept.description, kept.sync_state) == (
        "My unpushed edit", rows[0].description, SyncState.PENDING_PUSH
    )
    assert _conference_puts(sandbox, rows[0].remote_id) == []
    assert _conference_puts(sandbox, already.remote_id) == []
    assert Conference.objects.get(pk=rows[2].pk).sync_state == SyncState.DELETED_REMOTELY
    assert sandbox.conferences[rows[4].remote_id]["description"] == "Bulk edited"
    assert [int(e.object_pk) for e in _edit_entries(run)] == [rows[4].pk]


@pytest.mark.django_db(transaction=True)
def test_a_row_signalwire_refuses_is_marked_failed_with_its_message_and_the_rest_land(
    sandbox, seeded, admin_user, admin_client, celery_worker
):
    rows = seeded(3)
    refused = rows[1]
    # SignalWire holds a join_from the portal has not synced yet: the new join_until is
    # before it, which only SignalWire can tell.
    sandbox.update_conference(refused.remote_id, {"join_from": "2031-01-01T00:00:00Z"})

    run = bulk.bulk_edit_start(
        model=Conference, pks=[r.pk for r in rows],
        changes={"join_until": "2030-06-01T12:00:00Z"}, actor=admin_user,
    )

    run_ended(run)
    assert run.counts == {"changed": 2, "failed": 1}
    assert run.state == ActionRun.State.FINISHED_WITH_ERRORS
    assert run.failures == [{
        "pk": refused.pk, "name": str(refused),
        "message": "join_until: Join until must be after join from",
    }]
    stored = Conference.objects.get(pk=refused.pk)
    assert stored.join_until == refused.join_until and stored.sync_state == SyncState.SYNCED
    assert AuditEntry.objects.filter(cid=run.run_id.hex, object_pk=str(refused.pk)).count() == 0
    page = admin_client.get(reverse("admin:rooms_actionrun_change", args=[run.pk])).content
    assert "Rows SignalWire refused" in page.decode()
    assert "join_until: Join until must be after join from" in page.decode()
    assert reverse("admin:rooms_conference_change", args=[refused.pk]) in page.decode()
    assert sandbox.conferences[rows[0].remote_id]["join_until"].startswith("2030-06-01T12:00:00")


@pytest.mark.django_db(transaction=True)
def test_rows_signalwire_cannot_take_now_are_left_pending_and_pushed_later(
    sandbox, seeded, admin_user, celery_worker
):
    rows = seeded(3)
    down = rows[0]
    down_path = f"/api/video/conferences/{down.remote_id}"
    sandbox.inject_fault(503, methods=["PUT"], path_prefix=down_path)

    run = bulk.bulk_edit_start(
        model=Conference, pks=[r.pk for r in rows], changes={"description": "Bulk edited"},
        actor=admin_user,
    )

    run_ended(run)
    assert run.counts == {"changed": 2, "left_pending": 1} and run.errors == 0
    pending = Conference.objects.get(pk=down.pk)
    assert (pending.description, pending.sync_state) == ("Bulk edited", SyncState.PENDING_PUSH)
    # The edit is already in the change log under the run, and the later push adds none.
    assert sorted(int(e.object_pk) for e in _edit_entries(run)) == sorted(r.pk for r in rows)
    conference_entries = AuditEntry.objects.filter(content_type__model="conference")
    entries = conference_entries.count()
    # The row's own push task keeps trying while SignalWire refuses it.
    wait_until(
        lambda: sum(r["path"] == down_path for r in sandbox.requests) > 1,
        message="the push task to try the pending row again",
    )

    sandbox.clear_faults()

    wait_until(_all_synced, timeout=60, message="the pending row to be pushed")
    assert sandbox.conferences[down.remote_id]["description"] == "Bulk edited"
    assert conference_entries.count() == entries


@pytest.mark.django_db
def test_a_bulk_edit_is_validated_once_before_anything_is_recorded(sandbox, admin_user):
    bad = [
        ({"layout": "7x7"}, "layout"),
        ({"dark_primary": "blue"}, "dark_primary"),
        ({"join_from": None}, "join_from"),
        ({"name": "renamed"}, "__all__"),
        ({"max_members": 0}, "__all__"),  # a room field, not a conference one
    ]
    for changes, field in bad:
        with pytest.raises(ValidationError) as caught:
            bulk.bulk_edit_start(model=Conference, pks=[1], changes=changes, actor=admin_user)
        assert field in caught.value.message_dict, (changes, caught.value)
    with pytest.raises(ValidationError, match="at least one field"):
        bulk.bulk_edit_start(model=Conference, pks=[1], changes={}, actor=admin_user)
    with pytest.raises(ValidationError) as caught:
        bulk.bulk_edit_start(model=Room, pks=[1], changes={"max_members": 301}, actor=admin_user)
    assert "max_members" in caught.value.message_dict
    assert ActionRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_restore_puts_the_rows_back_through_the_same_path_and_keeps_later_edits(
    sandbox, seeded, admin_user, celery_worker
):
    rows = seeded(4)
    before = {r.pk: (r.layout, r.display_name) for r in rows}
    edit = run_ended(bulk.bulk_edit_start(
        model=Conference, pks=[r.pk for r in rows],
        changes={"layout": "8x8", "display_name": "Rebranded"}, actor=admin_user,
    ))
    # Someone renames one room after the bulk edit: the restore keeps that name.
    later = services.conference_update(
        conference=Conference.objects.get(pk=rows[0].pk), data={"display_name": "Mine now"},
        actor=admin_user,
    )

    undo = run_ended(bulk.bulk_restore_start(run=edit, actor=admin_user))

    assert (undo.action, undo.undoes, undo.state) == (
        ActionRun.Action.RESTORE, edit, ActionRun.State.SUCCEEDED
    )
    assert undo.counts == {"changed": 4}
    for row in rows:
        stored = Conference.objects.get(pk=row.pk)
        remote = sandbox.conferences[row.remote_id]
        name = "Mine now" if row.pk == later.pk else before[row.pk][1]
        assert (stored.layout, stored.display_name) == (before[row.pk][0], name)
        assert (remote["layout"], remote["display_name"]) == (before[row.pk][0], name)
    undone = _edit_entries(undo)
    assert len(undone) == 4 and all(e.actor == admin_user for e in undone)

    # Restoring again finds every row already back: nothing is sent.
    sandbox.clear_requests()
    again = run_ended(bulk.bulk_restore_start(run=edit, actor=admin_user))
    assert again.counts == {"unchanged": 3, "skipped_changed_since": 1}
    assert [r for r in sandbox.requests if r["method"] == "PUT"] == []


@pytest.mark.django_db
def test_only_a_finished_bulk_edit_can_be_restored(sandbox, admin_user):
    running = ActionRun.objects.create(action=ActionRun.Action.BULK_EDIT, kind="conference")
    refresh = ActionRun.objects.create(action=ActionRun.Action.REFRESH, kind="conference",
                                       state=ActionRun.State.SUCCEEDED)
    with pytest.raises(ValidationError, match="still running"):
        bulk.bulk_restore_start(run=running, actor=admin_user)
    with pytest.raises(ValidationError, match="Only a bulk edit"):
        bulk.bulk_restore_start(run=refresh, actor=admin_user)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_1000_conferences_with_5_percent_failing_answers_end_edited_once_and_undo_restores(
    sandbox, admin_user, celery_worker
):
    sandbox.seed(conferences=1000, seed=1000)
    sync.sync_conferences()
    rows = list(Conference.objects.order_by("pk"))
    assert len(rows) == 1000
    before = {r.remote_id: (r.quality, r.light_primary) for r in rows}
    sandbox.clear_requests()
    # 5 % of SignalWire's answers to the edits fail: half with a 5xx before acting, half
    # dropped after the change was made.
    sandbox.inject_fault(503, fraction=0.025, methods=["PUT"])
    sandbox.inject_fault("drop", fraction=0.025, methods=["PUT"], after_processing=True)

    started = time.monotonic()
    run = bulk.bulk_edit_start(
        model=Conference, pks=[r.pk for r in rows],
        changes={"quality": "1080p", "light_primary": "#abcdef"}, actor=admin_user,
    )
    run_ended(run, timeout=240)
    wait_until(_all_synced, timeout=120, message="the pending rows to be pushed")
    print(f"\nbulk edit of 1,000 conferences, 5 % failing: {time.monotonic() - started:.1f} s")

    run.refresh_from_db()
    assert run.errors == 0, run.error
    outcomes = bulk.run_outcomes(run)
    assert outcomes["changed"] + outcomes["pending"] == 1000, run.counts
    faults = Counter(r["status"] for r in sandbox.requests if r["method"] == "PUT")
    assert faults[503] > 0 and faults["drop"] > 0, faults
    assert len(sandbox.conferences) == 1000
    for row in rows:
        remote = sandbox.conferences[row.remote_id]
        assert (remote["quality"], remote["light_primary"].lower()) == ("1080p", "#abcdef")
    # Every row took the edit once: exactly one PUT per conference was answered 200.
    answered = Counter(r["path"] for r in sandbox.requests
                       if r["method"] == "PUT" and r["status"] == 200)
    assert len(answered) == 1000 and set(answered.values()) == {1}
    entries = _edit_entries(run)
    assert len(entries) == 1000
    assert len({e.object_pk for e in entries}) == 1000
    assert {e.actor_id for e in entries} == {admin_user.pk}

    sandbox.clear_faults()
    undo = bulk.bulk_restore_start(run=run, actor=admin_user)
    run_ended(undo, timeout=240)
    wait_until(_all_synced, timeout=120, message="the pending rows to be pushed")
    undo.refresh_from_db()
    assert undo.counts == {"changed": 1000}, undo.counts
    for row in rows:
        remote = sandbox.conferences[row.remote_id]
        assert (remote["quality"], remote["light_primary"]) == before[row.remote_id]
    assert len(_edit_entries(undo)) == 1000


# --- the admin pages ---------------------------------------------------------------------


def _action_post(rows, **extra) -> dict:
    return {"action": "edit_selected", "_selected_action": [r.pk for r in rows], **extra}


def _confirm_post(client, rows, **fields) -> dict:
    """The confirmation a user posts: the preview's fields plus the nonce the preview issued."""
    import re

    preview = client.post(CHANGELIST, _action_post(rows, bulk_step="preview", **fields))
    nonce = re.search(r'name="nonce" value="([^"]+)"', preview.content.decode())
    assert nonce, "the preview carries a one-time nonce"
    return _action_post(rows, bulk_step="confirm", nonce=nonce.group(1), **fields)


@pytest.mark.django_db
def test_the_action_offers_each_editable_field_with_a_tick_box(sandbox, seeded, admin_client):
    rows = seeded(2)

    page = admin_client.post(CHANGELIST, _action_post(rows, index="0"))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Change 2 conferences at once" in html
    for field in ("display_name", "layout", "quality", "dark_primary", "join_until"):
        assert f'name="change_{field}"' in html
    # Fixed after creation, or not editable here: no tick box.
    assert 'name="change_name"' not in html and 'name="change_meta"' not in html


@pytest.mark.django_db
def test_a_scripted_bulk_edit_that_clears_a_field_is_refused_with_what_to_do_instead(
    sandbox, seeded
):
    rows = seeded(2)

    with pytest.raises(ValidationError) as caught:
        bulk.bulk_edit_start(
            model=Conference, pks=[r.pk for r in rows],
            changes={"join_until": None, "display_name": "Kept"},
        )

    assert list(caught.value.message_dict) == ["join_until"]
    assert "set a time far in the future instead" in caught.value.message_dict["join_until"][0]
    assert ActionRun.objects.count() == 0


@pytest.mark.django_db
def test_the_form_refuses_bad_values_on_their_field_and_keeps_the_input(
    sandbox, seeded, admin_client
):
    rows = seeded(2)

    nothing = admin_client.post(CHANGELIST, _action_post(rows, bulk_step="preview"))
    assert "Tick “change this” beside at least one field." in nothing.content.decode()

    bad = admin_client.post(CHANGELIST, _action_post(
        rows, bulk_step="preview", change_dark_primary="on", dark_primary="navy",
        change_join_from="on", join_from_0="", join_from_1="", display_name="Kept input",
    ))
    html = bad.content.decode()
    assert "Enter a colour as #RRGGBB." in html
    assert "SignalWire cannot clear this" in html
    assert 'value="Kept input"' in html
    assert "will change" not in html
    assert ActionRun.objects.count() == 0


@pytest.mark.django_db
def test_preview_counts_the_rows_that_change_and_shows_examples_before_and_after(
    sandbox, seeded, admin_client
):
    rows = seeded(4)
    Conference.objects.filter(pk=rows[0].pk).update(sync_state=SyncState.PENDING_PUSH)
    Conference.objects.filter(pk=rows[1].pk).update(description="Same already")
    sandbox.clear_requests()

    preview = admin_client.post(CHANGELIST, _action_post(
        rows, bulk_step="preview", change_description="on", description="Same already",
    ))

    html = preview.content.decode()
    assert "2 of 4 conferences will change" in html
    assert "1 already hold these values" in html
    assert "1 have changes not yet pushed" in html
    assert str(rows[2]) in html and "Same already" in html
    assert 'name="bulk_step" value="confirm"' in html
    assert sandbox.requests == [] and ActionRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_confirming_queues_the_run_and_shows_its_page_with_outcomes_and_change_log(
    sandbox, seeded, admin_client, admin_user, celery_worker
):
    rows = seeded(3)

    response = admin_client.post(CHANGELIST, _confirm_post(
        admin_client, rows, change_layout="on", layout="3x3",
        change_record_on_start="on", record_on_start="True",
    ))

    run = run_ended(ActionRun.objects.get())
    page_url = reverse("admin:rooms_actionrun_change", args=[run.pk])
    assert response.status_code == 302 and response["Location"] == page_url
    assert run.changes == {"layout": "3x3", "record_on_start": True}
    assert run.requested_by == admin_user
    assert all(sandbox.conferences[r.remote_id]["layout"] == "3x3" for r in rows)
    assert all(sandbox.conferences[r.remote_id]["record_on_start"] is True for r in rows)

    page = admin_client.get(page_url).content.decode()
    assert "<strong>3</strong> changed" in page
    assert f"cid={run.run_id.hex}" in page
    assert "Restore selected to before this bulk edit" in page
    log = admin_client.get(reverse("admin:rooms_auditentry_changelist"), {"cid": run.run_id.hex})
    assert all(str(r) in log.content.decode() for r in rows)

    progress = admin_client.get(reverse("admin:rooms_actionrun_progress", args=[run.pk])).json()
    assert progress == {"state": "succeeded", "done": 3, "total": 3,
                        "summary": "3 changed", "finished": True}


@pytest.mark.django_db(transaction=True)
def test_restore_from_the_run_page_asks_first_then_undoes_the_edit(
    sandbox, seeded, admin_client, admin_user, celery_worker
):
    rows = seeded(2)
    edit = run_ended(bulk.bulk_edit_start(model=Conference, pks=[r.pk for r in rows],
                                       changes={"description": "Temporary"}, actor=admin_user))
    url = reverse("admin:rooms_actionrun_restore", args=[edit.pk])

    ask = admin_client.get(url)
    assert "Yes, restore 2 rows" in ask.content.decode()
    assert all(sandbox.conferences[r.remote_id]["description"] == "Temporary" for r in rows)

    done = admin_client.post(url, {"nonce": ask.context["nonce"]})

    undo = run_ended(ActionRun.objects.get(action=ActionRun.Action.RESTORE))
    assert done["Location"] == reverse("admin:rooms_actionrun_change", args=[undo.pk])
    assert undo.undoes == edit and undo.requested_by == admin_user
    for row in rows:
        assert sandbox.conferences[row.remote_id]["description"] == row.description
    page = admin_client.get(done["Location"]).content.decode()
    assert "the bulk edit of" in page and "Restore selected" not in page


@pytest.mark.django_db
def test_staff_without_the_change_permission_get_neither_the_action_nor_the_restore(
    sandbox, seeded, client, admin_user, django_user_model
):
    from django.contrib.auth.models import Permission

    rows = seeded(1)
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_conference", "view_actionrun"]))
    client.force_login(viewer)
    edit = ActionRun.objects.create(action=ActionRun.Action.BULK_EDIT, kind="conference",
                                    state=ActionRun.State.SUCCEEDED)

    listing = client.get(CHANGELIST).content.decode()
    assert "edit_selected" not in listing
    refused = client.post(CHANGELIST, _action_post(rows, bulk_step="confirm",
                                                   change_layout="on", layout="2x2"))
    assert ActionRun.objects.count() == 1 and refused.status_code in (200, 302)
    assert client.get(reverse("admin:rooms_actionrun_restore", args=[edit.pk])).status_code == 403


def _hidden_inputs(html: str) -> list[tuple[str, str]]:
    import re
    from html import unescape

    return [(unescape(n), unescape(v)) for n, v in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)]


@pytest.mark.django_db(transaction=True)
def test_rooms_too_and_the_preview_posts_back_exactly_the_values_it_showed(
    sandbox, admin_client, admin_user, room_data, celery_worker
):
    rooms = [services.room_create(data=room_data(f"team-{n}")) for n in range(3)]
    changelist = reverse("admin:rooms_room_changelist")

    preview = admin_client.post(changelist, {
        "action": "edit_selected", "_selected_action": [r.pk for r in rooms],
        "bulk_step": "preview",
        "change_max_members": "on", "max_members": "42",
        "change_join_until": "on", "join_until_0": "2031-03-04", "join_until_1": "05:06:07",
        "change_sync_audio_video": "on", "sync_audio_video": "false",
    })
    html = preview.content.decode()
    assert "3 of 3 rooms will change" in html
    posted: dict[str, list[str]] = {}
    for name, value in _hidden_inputs(html):
        posted.setdefault(name, []).append(value)
    posted["bulk_step"] = ["confirm"]
    admin_client.post(changelist, posted)

    run = run_ended(ActionRun.objects.get())
    assert run.kind == "room" and run.counts == {"changed": 3}
    for room in rooms:
        remote = sandbox.rooms[room.remote_id]
        assert remote["max_members"] == 42 and remote["sync_audio_video"] is False
        assert remote["join_until"].startswith("2031-03-04T05:06:07")
        assert Room.objects.get(pk=room.pk).max_members == 42
    # Back to the form keeps the ticks and values.
    back = admin_client.post(changelist, {**posted, "bulk_step": "edit"}).content.decode()
    assert 'name="change_max_members" id="id_change_max_members" value="on" checked' in back
    assert 'value="42"' in back


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("[" * 5000, "nested more than 32 levels"),
        ('{"a": NaN}', "Only finite numbers"),
        ('{"a": 1e999}', "Only finite numbers"),
    ],
)
def test_the_preview_refuses_meta_that_is_not_strict_json_and_nothing_can_be_confirmed(
    sandbox, admin_client, room_data, meta, message
):
    rooms = [services.room_create(data=room_data(f"team-{n}")) for n in range(2)]
    changelist = reverse("admin:rooms_room_changelist")
    sandbox.clear_requests()
    post = {
        "action": "edit_selected", "_selected_action": [r.pk for r in rooms],
        "change_meta": "on", "meta": meta,
    }

    preview = admin_client.post(changelist, {**post, "bulk_step": "preview"})
    confirm = admin_client.post(changelist, {**post, "bulk_step": "confirm", "nonce": "x"})

    for response in (preview, confirm):
        assert response.status_code == 200
        assert message in response.content.decode()
        assert response.context["editor"].errors["meta"]
    assert not ActionRun.objects.exists() and sandbox.requests == []


@pytest.mark.django_db(transaction=True)
def test_with_the_task_queue_down_confirming_says_nothing_was_done(sandbox, seeded, admin_client):
    from portal.celery import app

    rows = seeded(2)
    confirmation = _confirm_post(
        admin_client, rows, change_description="on", description="Never sent"
    )
    before = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        response = admin_client.post(CHANGELIST, confirmation, follow=True)
    finally:
        app.conf.broker_url = before
        app._pool = None
        app.amqp._producer_pool = None

    assert "Nothing was queued: the task queue (Redis) cannot be reached" in (
        response.content.decode()
    )
    assert ActionRun.objects.get().state == ActionRun.State.NOT_QUEUED
    assert not Conference.objects.filter(description="Never sent").exists()
    assert all(sandbox.conferences[r.remote_id]["description"] != "Never sent" for r in rows)


@pytest.mark.django_db(transaction=True)
def test_a_confirmation_sent_four_times_at_once_starts_one_run(
    sandbox, seeded, admin_client, celery_worker
):
    rows = seeded(2)
    confirmation = _confirm_post(admin_client, rows, change_description="on", description="Once")
    sandbox.clear_requests()

    post_together(admin_client, CHANGELIST, confirmation)

    run = run_ended(ActionRun.objects.get(action=ActionRun.Action.BULK_EDIT))
    assert run.state == ActionRun.State.SUCCEEDED
    # One run, so each row was sent to SignalWire once.
    puts = [r["path"] for r in sandbox.requests if r["method"] == "PUT"]
    assert sorted(puts) == sorted(f"/api/video/conferences/{r.remote_id}" for r in rows)


@pytest.mark.django_db(transaction=True)
def test_a_restore_sent_four_times_at_once_starts_one_run(
    sandbox, seeded, admin_client, celery_worker
):
    rows = seeded(2)
    edit = bulk.bulk_edit_start(model=Conference, pks=[r.pk for r in rows],
                                changes={"description": "Temporary"})
    # Its batches, as a worker carries them out: a restore is offered once it ended.
    offset: int | None = 0
    while offset is not None:
        offset = bulk.action_run_batch(run_id=edit.pk, offset=offset)
    url = reverse("admin:rooms_actionrun_restore", args=[edit.pk])
    ask = admin_client.get(url)
    assert "Yes, restore 2 rows" in ask.content.decode()

    post_together(admin_client, url, {"nonce": ask.context["nonce"]})

    assert ActionRun.objects.filter(action=ActionRun.Action.RESTORE).count() == 1
    again = admin_client.post(url, follow=True)
    assert "confirmed already" in again.content.decode()
    assert ActionRun.objects.filter(action=ActionRun.Action.RESTORE).count() == 1


@pytest.mark.django_db
def test_a_confirmation_posted_twice_or_without_its_preview_starts_one_run_only(
    sandbox, seeded, admin_client, queued,
):
    rows = seeded(2)
    confirmation = _confirm_post(admin_client, rows, change_description="on", description="Once")

    first = admin_client.post(CHANGELIST, confirmation)
    again = admin_client.post(CHANGELIST, confirmation, follow=True)
    forged = admin_client.post(CHANGELIST, {**confirmation, "nonce": "made-up"}, follow=True)

    run = ActionRun.objects.get()
    assert first["Location"] == reverse("admin:rooms_actionrun_change", args=[run.pk])
    for response in (again, forged):
        assert "This edit was confirmed already" in response.content.decode()
        assert response.redirect_chain[-1][0] == reverse("admin:rooms_actionrun_changelist")
