"""Streams: remote-first services, outages that land later without duplicates, and the sync."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms import services
from rooms.models import AuditEntry, Stream, SyncRun, SyncState
from rooms.services import streams
from rooms.sync import sync_streams

pytestmark = pytest.mark.django_db

KEY = "live_8f3e-secret-key-41"
URL = f"rtmp://live.twitch.tv/app/{KEY}"
OTHER_KEY = "yt-77aa-other-key-0c"
OTHER_URL = f"rtmps://a.rtmps.youtube.com:443/live2/{OTHER_KEY}"


@pytest.fixture
def room(sandbox):
    return services.room_create(data={"name": "broadcast", "display_name": "Broadcast"})


@pytest.fixture
def conference(sandbox):
    return services.conference_create(data={"name": "townhall", "display_name": "Town hall"})


def remote_streams(sandbox, owner) -> list[dict]:
    return [s for s in sandbox.streams.values() if s["owner"][1] == owner.remote_id]


def stream_posts(sandbox) -> list[dict]:
    return [
        r for r in sandbox.requests if r["method"] == "POST" and r["path"].endswith("/streams")
    ]


def audit_text(stream: Stream) -> str:
    """Everything the audit trail holds about a stream, as one text."""
    entries = AuditEntry.objects.filter(object_pk=str(stream.pk), content_type__model="stream")
    return json.dumps(
        [[e.object_repr, e.changes, e.additional_data, e.changes_text] for e in entries],
        ensure_ascii=False,
    )


# --- create, update, delete -----------------------------------------------------------


def test_a_stream_created_on_a_room_lands_in_signalwire_and_is_mirrored(sandbox, room):
    stream = streams.stream_create(owner=room, url=URL)

    assert stream.sync_state == SyncState.SYNCED
    [remote] = remote_streams(sandbox, room)
    assert stream.remote_id == remote["id"] and remote["url"] == URL
    assert (stream.stream_type, stream.width, stream.height) == ("rtmp", 1280, 720)
    assert stream.room == room and stream.conference is None
    # The raw copy shown in admin leaves the url out; the url field holds it.
    assert "url" not in stream.raw and KEY not in json.dumps(stream.raw)


def test_a_conference_stream_is_created_on_the_conference(sandbox, conference):
    stream = streams.stream_create(owner=conference, url=OTHER_URL)

    [remote] = remote_streams(sandbox, conference)
    assert remote["id"] == stream.remote_id and remote["owner"][0] == "conference"
    assert stream.stream_type == "rtmps"


def test_the_create_is_audited_with_the_url_masked(sandbox, room, django_user_model):
    staff = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    stream = streams.stream_create(owner=room, url=URL, actor=staff)

    [entry] = AuditEntry.objects.filter(content_type__model="stream")
    assert entry.action == AuditEntry.Action.CREATE and entry.actor == staff
    assert entry.source == AuditEntry.Source.ADMIN
    assert entry.changes["url"] == ["None", "rtmp://live.twitch.tv/••••••••"]
    assert entry.related_object_id == room.pk
    assert KEY not in audit_text(stream)


@pytest.mark.parametrize(
    "url",
    [
        "https://live.twitch.tv/app/key",
        "srt://ingest.example.net:9000",
        "rtmp:///no-host",
        "rtmp://host with space/app",
        "",
    ],
)
def test_only_rtmp_and_rtmps_urls_are_accepted_before_signalwire_is_asked(sandbox, room, url):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        streams.stream_create(owner=room, url=url)

    assert "url" in caught.value.message_dict
    assert sandbox.requests == [] and not Stream.objects.exists()


def test_a_stream_cannot_be_added_to_a_room_not_in_signalwire_yet(sandbox):
    sandbox.inject_fault(503)
    pending = services.room_create(data={"name": "not-yet"})
    sandbox.clear_faults()

    with pytest.raises(ValidationError, match="not in SignalWire yet"):
        streams.stream_create(owner=pending, url=URL)
    assert not Stream.objects.exists()


def test_an_update_replaces_the_url_in_signalwire_and_is_audited_masked(sandbox, room):
    stream = streams.stream_create(owner=room, url=URL)
    sandbox.clear_requests()

    updated = streams.stream_update(stream=stream, url=OTHER_URL)

    assert updated.sync_state == SyncState.SYNCED and updated.stream_type == "rtmps"
    assert sandbox.streams[stream.remote_id]["url"] == OTHER_URL
    assert [r["method"] for r in sandbox.requests] == ["PUT"]
    entry = AuditEntry.objects.filter(content_type__model="stream").latest("timestamp")
    assert entry.changes["url"] == [
        "rtmp://live.twitch.tv/••••••••", "rtmps://a.rtmps.youtube.com:443/••••••••"
    ]
    assert KEY not in audit_text(stream) and OTHER_KEY not in audit_text(stream)


def test_an_unchanged_update_sends_nothing(sandbox, room):
    stream = streams.stream_create(owner=room, url=URL)
    sandbox.clear_requests()

    streams.stream_update(stream=stream, url=URL)

    assert sandbox.requests == []


def test_a_delete_removes_the_stream_in_signalwire_first(sandbox, room):
    stream = streams.stream_create(owner=room, url=URL)

    assert streams.stream_delete(stream=stream) is True

    assert remote_streams(sandbox, room) == [] and not Stream.objects.exists()
    entry = AuditEntry.objects.filter(content_type__model="stream").latest("timestamp")
    assert entry.action == AuditEntry.Action.DELETE and KEY not in audit_text(stream)


def test_a_reveal_returns_the_url_and_is_audited_without_it(sandbox, room, django_user_model):
    staff = django_user_model.objects.create_user("grace", "grace@example.com", "pw")
    stream = streams.stream_create(owner=room, url=URL)

    assert streams.stream_url_reveal(stream=stream, actor=staff) == URL

    entry = AuditEntry.objects.filter(content_type__model="stream").latest("timestamp")
    assert entry.action == AuditEntry.Action.ACCESS and entry.actor == staff
    assert entry.additional_data["event"] == "reveal"
    assert KEY not in audit_text(stream)


# --- outages: kept pending, landed later, never twice ---------------------------------


def test_a_create_during_an_outage_is_kept_pending_and_lands_once(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued
):
    sandbox.inject_fault(503, methods=["POST"])
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)

    assert stream.sync_state == SyncState.PENDING_PUSH and stream.remote_id is None
    assert queued == [("push", "stream", stream.pk)]
    assert remote_streams(sandbox, room) == []

    sandbox.clear_faults()
    run_queued()

    stream.refresh_from_db()
    [remote] = remote_streams(sandbox, room)
    assert stream.sync_state == SyncState.SYNCED and stream.remote_id == remote["id"]
    assert KEY not in audit_text(stream)


def test_a_create_whose_answer_was_lost_is_found_again_not_posted_twice(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued
):
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
    # SignalWire made the stream; the portal never heard so.
    assert stream.sync_state == SyncState.PENDING_PUSH and len(remote_streams(sandbox, room)) == 1

    # A sync meanwhile leaves the stream to the push that waits for it.
    run = sync_streams()
    assert run.skipped_pending == 1 and Stream.objects.count() == 1

    sandbox.clear_requests()
    run_queued()

    stream.refresh_from_db()
    [remote] = remote_streams(sandbox, room)
    assert stream.remote_id == remote["id"] and stream.sync_state == SyncState.SYNCED
    assert stream_posts(sandbox) == []
    assert Stream.objects.count() == 1


def test_a_second_stream_of_one_owner_to_the_same_url_is_refused(sandbox, room):
    streams.stream_create(owner=room, url=URL)
    sandbox.clear_requests()

    with pytest.raises(ValidationError) as refused:
        streams.stream_create(owner=room, url=URL)

    assert "already has a stream to this URL" in str(refused.value.message_dict["url"])
    assert sandbox.requests == [] and Stream.objects.count() == 1


def test_a_delete_during_an_outage_is_kept_pending_and_finished_later(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued
):
    stream = streams.stream_create(owner=room, url=URL)
    sandbox.inject_fault(503, methods=["DELETE"])
    with django_capture_on_commit_callbacks(execute=True):
        gone = streams.stream_delete(stream=stream)

    assert gone is False
    stream.refresh_from_db()
    assert stream.sync_state == SyncState.PENDING_DELETE
    assert queued == [("delete", "stream", stream.pk)]
    assert len(remote_streams(sandbox, room)) == 1
    # The sync leaves a row waiting for its delete alone.
    sync_streams()
    stream.refresh_from_db()
    assert stream.sync_state == SyncState.PENDING_DELETE

    sandbox.clear_faults()
    run_queued()

    assert remote_streams(sandbox, room) == [] and not Stream.objects.exists()
    assert AuditEntry.objects.filter(
        content_type__model="stream", action=AuditEntry.Action.DELETE
    ).count() == 1


def test_an_update_during_an_outage_lands_later(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued
):
    stream = streams.stream_create(owner=room, url=URL)
    sandbox.inject_fault(503, methods=["PUT"])
    with django_capture_on_commit_callbacks(execute=True):
        updated = streams.stream_update(stream=stream, url=OTHER_URL)
    assert updated.sync_state == SyncState.PENDING_PUSH

    sandbox.clear_faults()
    run_queued()

    assert sandbox.streams[stream.remote_id]["url"] == OTHER_URL
    stream.refresh_from_db()
    assert stream.sync_state == SyncState.SYNCED and stream.url == OTHER_URL


def test_the_periodic_push_finds_pending_streams(
    sandbox, room, queued, django_capture_on_commit_callbacks
):
    from rooms.tasks import push

    sandbox.inject_fault(503, methods=["POST"])
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
    queued.clear()

    push.push_pending.apply()

    assert ("push", "stream", stream.pk) in queued


# --- the sync ---------------------------------------------------------------------------


def test_a_stream_made_in_the_space_is_picked_up_by_the_sync(sandbox, api, room):
    made = api.post(f"/api/video/rooms/{room.remote_id}/streams", json={"url": URL})
    assert made.status_code == 201

    run = sync_streams()

    assert run.kind == SyncRun.Kind.STREAMS and run.outcome == SyncRun.Outcome.SUCCEEDED
    assert run.created == 1
    stream = Stream.objects.get(remote_id=made.json()["id"])
    assert stream.room == room and stream.url == URL and stream.sync_state == SyncState.SYNCED
    entry = AuditEntry.objects.get(content_type__model="stream")
    assert entry.source == AuditEntry.Source.SYNC and entry.action == AuditEntry.Action.CREATE
    assert KEY not in audit_text(stream)


def test_an_edit_in_the_space_updates_the_mirror_once(sandbox, api, room):
    stream = streams.stream_create(owner=room, url=URL)
    api.put(f"/api/video/streams/{stream.remote_id}", json={"url": OTHER_URL})

    run = sync_streams()
    again = sync_streams()

    stream.refresh_from_db()
    assert stream.url == OTHER_URL and stream.stream_type == "rtmps"
    assert (run.updated, again.updated, again.unchanged) == (1, 0, 1)
    entries = AuditEntry.objects.filter(content_type__model="stream", source="sync")
    assert [e.changes["url"] for e in entries] == [
        ["rtmp://live.twitch.tv/••••••••", "rtmps://a.rtmps.youtube.com:443/••••••••"]
    ]
    assert OTHER_KEY not in audit_text(stream)


def test_a_stream_deleted_in_the_space_is_kept_and_marked_deleted_remotely(sandbox, api, room):
    stream = streams.stream_create(owner=room, url=URL)
    assert api.delete(f"/api/video/streams/{stream.remote_id}").status_code == 204

    run = sync_streams()

    stream.refresh_from_db()
    assert stream.sync_state == SyncState.DELETED_REMOTELY and run.marked_deleted == 1
    entry = AuditEntry.objects.filter(content_type__model="stream").latest("timestamp")
    assert entry.changes == {"deleted_in_signalwire": [False, True]}


def test_a_failed_owner_listing_marks_nothing_deleted(sandbox, room, fast_push):
    stream = streams.stream_create(owner=room, url=URL)
    api_path = f"/api/video/rooms/{room.remote_id}/streams"
    assert sandbox.delete_stream(stream.remote_id) is None  # gone, but the listing fails
    sandbox.inject_fault(500, methods=["GET"], path_prefix=api_path)

    with pytest.raises(Exception, match="500"):
        sync_streams()

    stream.refresh_from_db()
    assert stream.sync_state == SyncState.SYNCED
    run = SyncRun.objects.get(kind=SyncRun.Kind.STREAMS)
    assert run.outcome == SyncRun.Outcome.FAILED and run.marked_deleted == 0


def test_a_sync_writes_a_bounded_number_of_queries_whatever_the_number_of_owners(
    sandbox, api
):
    def seed(count: int, prefix: str) -> None:
        for i in range(count):
            made = api.post("/api/video/rooms", json={"name": f"{prefix}-{i}"}).json()
            api.post(f"/api/video/rooms/{made['id']}/streams", json={"url": f"{URL}-{i}"})

    def first_sync_queries() -> int:
        services_sync_rooms()
        Stream.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            run = sync_streams()
        assert run.outcome == SyncRun.Outcome.SUCCEEDED
        return len(captured)

    seed(5, "few")
    few = first_sync_queries()
    seed(45, "many")
    many = first_sync_queries()

    assert Stream.objects.count() == 50
    assert many <= few  # the first run may also fill a cache or two


def services_sync_rooms() -> None:
    from rooms.sync import sync_rooms

    sync_rooms()


def test_an_unchanged_sync_writes_nothing(sandbox, api, room, django_assert_max_num_queries):
    streams.stream_create(owner=room, url=URL)
    sync_streams()
    before = AuditEntry.objects.count()

    with django_assert_max_num_queries(12):
        run = sync_streams()

    assert run.unchanged == 1 and AuditEntry.objects.count() == before


def test_a_seeded_space_syncs_its_streams(sandbox):
    sandbox.seed(conferences=40, rooms=40)
    from rooms.sync import sync_conferences, sync_rooms

    sync_conferences()
    sync_rooms()
    run = sync_streams()

    assert run.outcome == SyncRun.Outcome.SUCCEEDED
    assert Stream.objects.count() == len(sandbox.streams) == run.created > 0
    remote = {(s["id"], *s["owner"]) for s in sandbox.streams.values()}
    local = {
        (s.remote_id, str(s.owner_kind), s.owner.remote_id)
        for s in Stream.objects.select_related("conference", "room")
    }
    assert local == remote
    assert not any("url" in s.raw for s in Stream.objects.all())


def test_sync_signalwire_streams_runs_a_streams_sync(sandbox, api, room, capsys):
    from django.core.management import call_command

    api.post(f"/api/video/rooms/{room.remote_id}/streams", json={"url": URL})

    call_command("sync_signalwire", "--streams")

    assert "Streams: Succeeded" in capsys.readouterr().out
    assert Stream.objects.filter(room=room).count() == 1


def test_no_log_line_carries_the_url(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued, caplog
):
    import logging

    caplog.set_level(logging.DEBUG)
    sandbox.inject_fault(503, methods=["POST", "PUT", "DELETE"])
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
    sandbox.clear_faults()
    run_queued()
    stream.refresh_from_db()
    streams.stream_update(stream=stream, url=OTHER_URL)
    sync_streams()
    streams.stream_delete(stream=stream)

    assert caplog.records
    assert KEY not in caplog.text and OTHER_KEY not in caplog.text


def test_a_create_whose_process_died_is_replayed_onto_its_row_and_landed_once(
    sandbox, room, queued, settings, run_queued
):
    from rooms import intents
    from rooms.models import RemoteIntent
    from rooms.tasks import push

    # The create reached SignalWire, then the process died before storing the answer.
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    settings.SIGNALWIRE_RETRIES = 0
    stream = Stream(room=room, url=URL, sync_state=SyncState.PENDING_PUSH, local_version=1)
    stream.save()
    intents.record(
        kind="stream", model=Stream, action=RemoteIntent.Action.CREATE, row=stream,
        data={"url": URL, "room_id": room.pk},
    )
    from rooms.registry import STREAM
    from rooms.signalwire.client import build_client
    from rooms.signalwire.errors import UnavailableError

    with pytest.raises(UnavailableError):
        STREAM.create_for(build_client(), "room", room.remote_id, {"url": URL})
    settings.SIGNALWIRE_INTENT_GRACE = 0

    push.push_pending.apply()
    run_queued()

    stream.refresh_from_db()
    [remote] = remote_streams(sandbox, room)
    assert stream.remote_id == remote["id"] and stream.sync_state == SyncState.SYNCED
    assert not RemoteIntent.objects.exists() and Stream.objects.count() == 1


def test_a_stream_deleted_after_its_create_answer_was_lost_never_comes_back(
    sandbox, room, queued, settings, run_queued
):
    from rooms import intents
    from rooms.models import RemoteIntent
    from rooms.registry import STREAM
    from rooms.signalwire.client import build_client
    from rooms.signalwire.errors import UnavailableError
    from rooms.tasks import push

    # A pending stream whose create reached SignalWire, but the answer was lost and its
    # create intent stayed behind.
    sandbox.inject_fault("drop", count=1, methods=["POST"], after_processing=True)
    settings.SIGNALWIRE_RETRIES = 0
    stream = Stream(room=room, url=URL, sync_state=SyncState.PENDING_PUSH, local_version=1)
    stream.save()
    intents.record(
        kind="stream", model=Stream, action=RemoteIntent.Action.CREATE, row=stream,
        data={"url": URL, "room_id": room.pk},
    )
    with pytest.raises(UnavailableError):
        STREAM.create_for(build_client(), "room", room.remote_id, {"url": URL})
    assert len(remote_streams(sandbox, room)) == 1

    # Deleted before the replay: the remote stream found by its url goes, and so does
    # every intent of the row.
    assert streams.stream_delete(stream=stream) is True
    assert remote_streams(sandbox, room) == [] and not Stream.objects.exists()
    assert not RemoteIntent.objects.exists()

    sandbox.clear_requests()
    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()

    assert not Stream.objects.exists() and remote_streams(sandbox, room) == []
    assert stream_posts(sandbox) == []


def test_a_create_intent_whose_row_was_deleted_is_dropped_by_the_replay(
    sandbox, room, queued, settings, run_queued
):
    from rooms import intents
    from rooms.models import RemoteIntent
    from rooms.tasks import push

    # However the row went (a shell delete, an older portal), its stale create intent
    # is forgotten, never rebuilt into a new row and posted again.
    stream = Stream(room=room, url=URL, sync_state=SyncState.PENDING_PUSH, local_version=1)
    stream.save()
    intent = intents.record(
        kind="stream", model=Stream, action=RemoteIntent.Action.CREATE, row=stream,
        data={"url": URL, "room_id": room.pk},
    )
    Stream.objects.filter(pk=stream.pk).delete()

    assert intents.replay(intent=intent, model=Stream) is None
    assert not RemoteIntent.objects.exists() and not Stream.objects.exists()

    intents.record(
        kind="stream", model=Stream, action=RemoteIntent.Action.CREATE, row=stream,
        data={"url": URL, "room_id": room.pk},
    )
    settings.SIGNALWIRE_INTENT_GRACE = 0
    push.push_pending.apply()
    run_queued()

    assert not Stream.objects.exists() and not RemoteIntent.objects.exists()
    assert stream_posts(sandbox) == [] and remote_streams(sandbox, room) == []


def test_a_url_changed_while_the_create_is_pending_is_the_one_created(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued
):
    sandbox.inject_fault(503, methods=["POST"])
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
        changed = streams.stream_update(stream=stream, url=OTHER_URL)
    assert changed.sync_state == SyncState.PENDING_PUSH and changed.url == OTHER_URL

    sandbox.clear_faults()
    run_queued()

    [remote] = remote_streams(sandbox, room)
    assert remote["url"] == OTHER_URL
    stream.refresh_from_db()
    assert stream.remote_id == remote["id"] and stream.sync_state == SyncState.SYNCED


# --- saves outside the services (a shell, a script) -------------------------------------


def test_a_stream_saved_in_a_shell_is_pushed_after_commit(
    sandbox, room, queued, django_capture_on_commit_callbacks, run_queued
):
    with django_capture_on_commit_callbacks(execute=True):
        stream = Stream.objects.create(room=room, url=URL)
    assert queued == [("push", "stream", stream.pk)]
    stream.refresh_from_db()
    assert stream.sync_state == SyncState.PENDING_PUSH

    run_queued()

    stream.refresh_from_db()
    [remote] = remote_streams(sandbox, room)
    assert stream.remote_id == remote["id"] and stream.sync_state == SyncState.SYNCED

    stream.url = OTHER_URL
    with django_capture_on_commit_callbacks(execute=True):
        stream.save()
    run_queued()
    assert sandbox.streams[stream.remote_id]["url"] == OTHER_URL

    with django_capture_on_commit_callbacks(execute=True):
        stream.delete()
    assert queued == [("remote_delete", "stream", remote["id"], stream.space_id)]
    run_queued()
    assert remote_streams(sandbox, room) == []


def test_service_and_sync_writes_of_streams_queue_nothing(
    sandbox, api, room, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
        streams.stream_update(stream=stream, url=OTHER_URL)
        api.post(f"/api/video/rooms/{room.remote_id}/streams", json={"url": URL})
        sync_streams()
        streams.stream_delete(stream=stream)

    assert queued == []


def test_a_stream_lives_and_is_edited_in_its_owners_space(
    sandbox, other_space, sandbox_b
):
    other = sandbox_b
    owner = services.room_create(data={"name": "broadcast", "space": other_space})

    stream = streams.stream_create(owner=owner, url=URL)
    assert stream.space == other_space and stream.sync_state == SyncState.SYNCED
    [remote] = remote_streams(other, owner)
    assert remote["url"] == URL

    streams.stream_update(stream=stream, url=OTHER_URL)
    assert other.streams[stream.remote_id]["url"] == OTHER_URL
    assert streams.stream_delete(stream=stream) is True
    assert remote_streams(other, owner) == []
    assert sandbox.requests == []
