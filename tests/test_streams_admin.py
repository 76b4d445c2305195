"""Streams in admin: remote-first forms, the URL masked on every page, the audited reveal."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from rooms import services
from rooms.models import AuditEntry, Stream, SyncRun, SyncState
from rooms.services import streams
from rooms.sync import sync_streams
from tests.concurrent import post_together

pytestmark = pytest.mark.django_db

KEY = "live_9c1d-admin-secret-77"
URL = f"rtmp://live.twitch.tv/app/{KEY}"
SPACE_KEY = "yt-space-edited-key-5e"
SPACE_URL = f"rtmps://a.rtmps.youtube.com:443/live2/{SPACE_KEY}"
SECRETS = (KEY, SPACE_KEY)
VIEW_AND_EDIT = (
    "view_stream", "add_stream", "change_stream", "delete_stream", "view_room",
    "change_room", "view_conference", "view_auditentry",
)


@pytest.fixture
def room(sandbox):
    return services.room_create(data={"name": "broadcast", "display_name": "Broadcast"})


@pytest.fixture
def staff_client(client, django_user_model):
    """Staff who may edit streams but not reveal their URLs."""

    def login(*extra: str):
        user = django_user_model.objects.create_user(
            f"staff{len(extra)}", password="pw", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(codename__in=[*VIEW_AND_EDIT, *extra])
        )
        client.force_login(user)
        return client

    return login


def add_url(owner_kind: str, pk: int) -> str:
    return reverse("admin:rooms_stream_add") + f"?{owner_kind}={pk}"


def change_url(stream: Stream) -> str:
    return reverse("admin:rooms_stream_change", args=[stream.pk])


def assert_no_secret(response) -> None:
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text and secret not in unescape(text)


def history_rows(client, stream: Stream) -> list[str]:
    """The rows of a stream's History page as a reader sees them, one line each.

    Who, source, action, then each changed field (sorted: PostgreSQL's jsonb keeps
    its own key order); the time and the run id differ from run to run and are left out.
    """
    page = client.get(reverse("admin:rooms_stream_history", args=[stream.pk]))
    assert page.status_code == 200
    assert_no_secret(page)

    def text(html: str) -> str:
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())

    lines = []
    for row in re.findall(r'<tr class="audit-entry".*?</tr>', page.content.decode(), re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        changes = sorted(text(li) for li in re.findall(r"<li>(.*?)</li>", cells[4], re.S))
        lines.append(" | ".join([*(text(c) for c in cells[1:4]), "; ".join(changes)]))
    return lines


# --- add, change, delete ------------------------------------------------------------------


def test_staff_add_a_stream_to_a_room_from_admin(sandbox, room, staff_client):
    client = staff_client()
    form = client.get(add_url("room", room.pk))
    assert form.status_code == 200
    assert "starts in every session" in form.content.decode()

    response = client.post(add_url("room", room.pk), {"room": room.pk, "url": URL})

    assert response.status_code == 302
    stream = Stream.objects.get()
    assert stream.room == room and stream.sync_state == SyncState.SYNCED
    assert sandbox.streams[stream.remote_id]["url"] == URL
    assert_no_secret(client.get(response["Location"]))


def test_an_http_url_is_refused_on_the_field_before_signalwire_is_asked(
    sandbox, room, staff_client
):
    client = staff_client()
    sandbox.clear_requests()

    response = client.post(
        add_url("room", room.pk), {"room": room.pk, "url": "https://live.twitch.tv/app/key"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "rtmp:// or rtmps://" in errors["url"][0]
    assert sandbox.requests == [] and not Stream.objects.exists()


def test_a_create_during_an_outage_is_kept_pending_and_lands_once(
    sandbox, room, staff_client, queued, run_queued, django_capture_on_commit_callbacks
):
    client = staff_client()
    sandbox.inject_fault(503, methods=["POST"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            add_url("room", room.pk), {"room": room.pk, "url": URL}, follow=True
        )

    assert "marked pending" in response.content.decode()
    assert "added successfully" not in response.content.decode()
    assert_no_secret(response)
    stream = Stream.objects.get()
    assert stream.sync_state == SyncState.PENDING_PUSH and sandbox.streams == {}

    sandbox.clear_faults()
    run_queued()

    stream.refresh_from_db()
    assert stream.sync_state == SyncState.SYNCED and list(sandbox.streams) == [stream.remote_id]


def test_a_stream_needs_one_owner(sandbox, room, staff_client):
    client = staff_client()
    response = client.post(reverse("admin:rooms_stream_add"), {"url": URL})
    assert response.status_code == 200
    assert "conference or the room" in response.content.decode()


def test_the_change_form_never_carries_the_url_and_an_empty_field_keeps_it(
    sandbox, room, staff_client
):
    stream = streams.stream_create(owner=room, url=URL)
    client = staff_client()
    page = client.get(change_url(stream))
    assert_no_secret(page)
    assert "rtmp://live.twitch.tv/••••••••" in page.content.decode()
    sandbox.clear_requests()

    client.post(change_url(stream), {"url": "", "_save": "Save"})

    stream.refresh_from_db()
    assert stream.url == URL and sandbox.requests == []

    client.post(change_url(stream), {"url": SPACE_URL, "_save": "Save"})
    stream.refresh_from_db()
    assert stream.url == SPACE_URL and sandbox.streams[stream.remote_id]["url"] == SPACE_URL


def test_staff_delete_a_stream_in_signalwire_first(sandbox, room, staff_client):
    stream = streams.stream_create(owner=room, url=URL)
    client = staff_client()
    delete = reverse("admin:rooms_stream_delete", args=[stream.pk])
    assert_no_secret(client.get(delete))

    client.post(delete, {"post": "yes"})

    assert not Stream.objects.exists() and sandbox.streams == {}


def test_a_delete_during_an_outage_is_reported_pending(
    sandbox, room, staff_client, queued, run_queued, django_capture_on_commit_callbacks
):
    stream = streams.stream_create(owner=room, url=URL)
    client = staff_client()
    sandbox.inject_fault(503, methods=["DELETE"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:rooms_stream_delete", args=[stream.pk]), {"post": "yes"},
            follow=True,
        )

    assert "pending delete" in response.content.decode()
    stream.refresh_from_db()
    assert stream.sync_state == SyncState.PENDING_DELETE
    sandbox.clear_faults()
    run_queued()
    assert sandbox.streams == {} and not Stream.objects.exists()


# --- masked everywhere; revealed with the permission only -----------------------------


def test_the_url_is_in_no_page_without_the_reveal_permission(sandbox, room, staff_client):
    stream = streams.stream_create(owner=room, url=URL)
    streams.stream_update(stream=stream, url=SPACE_URL)
    client = staff_client()
    pages = [
        reverse("admin:rooms_stream_changelist"),
        reverse("admin:rooms_stream_changelist") + "?owner_kind=room",
        change_url(stream),
        reverse("admin:rooms_stream_history", args=[stream.pk]),
        reverse("admin:rooms_room_change", args=[room.pk]),
        reverse("admin:rooms_room_history", args=[room.pk]),
        reverse("admin:rooms_auditentry_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response)
    entry = AuditEntry.objects.filter(content_type__model="stream").first()
    assert_no_secret(client.get(reverse("admin:rooms_auditentry_change", args=[entry.pk])))
    assert "Reveal URL" not in client.get(change_url(stream)).content.decode()
    reveal = reverse("admin:rooms_stream_reveal", args=[stream.pk])
    assert client.get(reveal).status_code == 403
    assert client.post(reveal).status_code == 403


def test_the_inline_lists_the_owners_streams_masked(sandbox, room, staff_client):
    streams.stream_create(owner=room, url=URL)
    page = staff_client().get(reverse("admin:rooms_room_change", args=[room.pk]))
    text = page.content.decode()
    assert "rtmp://live.twitch.tv/••••••••" in text and "Add a stream" in text
    assert add_url("room", room.pk).replace("&", "&amp;") in text


def test_the_reveal_shows_the_url_once_audited_and_never_in_the_session(
    sandbox, room, staff_client
):
    stream = streams.stream_create(owner=room, url=URL)
    client = staff_client("reveal_stream_url")
    page = client.get(change_url(stream))
    assert "Reveal URL" in page.content.decode()
    assert_no_secret(page)
    reveal = reverse("admin:rooms_stream_reveal", args=[stream.pk])
    confirm = client.get(reveal)
    assert_no_secret(confirm)
    nonce = re.search(r'name="nonce" value="([^"]+)"', confirm.content.decode()).group(1)

    shown = client.post(reveal, {"nonce": nonce})

    assert URL in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    session = json.dumps(dict(client.session.items()))
    assert KEY not in session
    entry = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).get()
    assert entry.additional_data["event"] == "reveal" and KEY not in json.dumps(
        [entry.changes, entry.additional_data, entry.object_repr]
    )
    # A re-sent POST (a reload) shows nothing and records nothing more.
    again = client.post(reveal, {"nonce": nonce})
    assert again.status_code == 302 and KEY not in again.content.decode()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_reveal_sent_four_times_at_once_shows_the_url_once_with_one_audit_row(
    sandbox, room, staff_client
):
    stream = streams.stream_create(owner=room, url=URL)
    client = staff_client("reveal_stream_url")
    reveal = reverse("admin:rooms_stream_reveal", args=[stream.pk])
    confirm = client.get(reveal).content.decode()
    nonce = re.search(r'name="nonce" value="([^"]+)"', confirm).group(1)

    answers = post_together(client, reveal, {"nonce": nonce})

    assert sum(KEY in a.content.decode() for a in answers) == 1
    assert AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).count() == 1


def test_the_changelist_filters_by_owner_kind_and_state(sandbox, room, staff_client):
    conference = services.conference_create(data={"name": "townhall"})
    streams.stream_create(owner=room, url=URL)
    gone = streams.stream_create(owner=conference, url=SPACE_URL)
    Stream.objects.filter(pk=gone.pk).update(sync_state=SyncState.DELETED_REMOTELY)
    client = staff_client()
    listing = reverse("admin:rooms_stream_changelist")

    rooms_only = client.get(listing + "?owner_kind=room").context["cl"].queryset
    gone_only = client.get(listing + "?deleted_remotely=yes").context["cl"].queryset
    by_state = client.get(listing + "?sync_state__exact=deleted_remotely").context["cl"].queryset

    assert [s.room_id for s in rooms_only] == [room.pk]
    assert [s.pk for s in gone_only] == [gone.pk] == [s.pk for s in by_state]


def test_the_changelist_costs_the_same_queries_for_many_streams(
    sandbox, room, staff_client, django_assert_max_num_queries
):
    client = staff_client()
    listing = reverse("admin:rooms_stream_changelist")
    streams.stream_create(owner=room, url=URL)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(listing)
    for i in range(20):
        streams.stream_create(owner=room, url=f"{URL}-{i}")
    with django_assert_max_num_queries(len(one)):
        client.get(listing)


# --- the closing note: a stream's history, created in admin, edited in the Space ------


def test_a_streams_history_reads_created_in_admin_edited_in_the_space_synced_masked(
    sandbox, api, room, admin_client, capsys
):
    created = admin_client.post(add_url("room", room.pk), {"room": room.pk, "url": URL})
    assert created.status_code == 302
    stream = Stream.objects.get()
    assert api.put(f"/api/video/streams/{stream.remote_id}", json={"url": SPACE_URL}).ok

    run = sync_streams()

    assert run.updated == 1
    rows = history_rows(admin_client, stream)
    with capsys.disabled():
        print("\n" + "\n".join(rows))
    assert rows == [
        "sync | Sync | Update | Stream type : rtmp → rtmps; "
        "URL : rtmp://live.twitch.tv/•••••••• → rtmps://a.rtmps.youtube.com:443/••••••••",
        "admin | Admin | Create | Fps : — → 20; Height : — → 720; Room : — → broadcast; "
        f"SignalWire ID : — → {stream.remote_id}; Stream type : — → rtmp; "
        "URL : — → rtmp://live.twitch.tv/••••••••; Width : — → 1280",
    ]


def test_saving_a_room_in_admin_lists_its_streams_again(
    sandbox, api, room, admin_client, form_post_data, monkeypatch
):
    from rooms import outbox
    from rooms.tasks import sync as sync_tasks

    sent: list[tuple] = []
    monkeypatch.setattr(outbox, "send", lambda name, *args, **kw: sent.append((name, *args)))
    made = api.post(f"/api/video/rooms/{room.remote_id}/streams", json={"url": URL}).json()
    page = admin_client.get(reverse("admin:rooms_room_change", args=[room.pk]))

    admin_client.post(page.request["PATH_INFO"], form_post_data(page, display_name="Launch"))

    assert sent == [("rooms.tasks.sync_owner_streams", "room", room.pk)]
    sync_tasks.sync_owner_streams.apply(args=sent[0][1:])
    stream = Stream.objects.get()
    assert stream.remote_id == made["id"] and stream.room == room
    run = SyncRun.objects.get(kind=SyncRun.Kind.STREAMS)
    assert run.trigger == "owner_edit" and run.created == 1


# --- errors that echo the URL: masked in last_error, on every page and in the logs ----


def _echoing(error_class, url: str = URL):
    """An error whose message carries the stream URL, as a SignalWire answer may echo it."""
    return error_class(
        f"SignalWire could not start the output to {url}", method="POST",
        path="/api/video/rooms/r-1/streams", status=None,
    )


def _assert_masked_everywhere(client, stream: Stream, room, caplog) -> None:
    stream.refresh_from_db()
    assert stream.last_error and "rtmp://live.twitch.tv/••••••••" in stream.last_error
    assert KEY not in stream.last_error
    for page in (
        change_url(stream),
        reverse("admin:rooms_stream_changelist"),
        reverse("admin:rooms_room_change", args=[room.pk]),
    ):
        response = client.get(page)
        assert response.status_code == 200, page
        assert_no_secret(response)
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("error_name", "state"),
    [("UnavailableError", SyncState.PENDING_PUSH), ("AuthenticationError", SyncState.PUSH_FAILED)],
)
def test_a_push_that_gives_up_keeps_the_url_out_of_last_error_pages_and_logs(
    sandbox, room, staff_client, queued, caplog, error_name, state
):
    import logging

    from rooms.signalwire import errors
    from rooms.tasks import push

    caplog.set_level(logging.DEBUG)
    sandbox.inject_fault(503, methods=["POST"])
    stream = streams.stream_create(owner=room, url=URL)
    sandbox.clear_faults()

    task = push.PUSH_TASKS["stream"]
    task.on_failure(_echoing(getattr(errors, error_name)), "task-1", (stream.pk,), {}, None)

    stream.refresh_from_db()
    assert stream.sync_state == state
    _assert_masked_everywhere(staff_client(), stream, room, caplog)


def test_a_create_left_pending_logs_and_stores_its_error_masked(
    sandbox, room, staff_client, queued, caplog, monkeypatch
):
    import logging

    from rooms.registry import STREAM
    from rooms.signalwire.errors import UnavailableError

    def echoing_create(*args, **kwargs):
        raise _echoing(UnavailableError)

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(STREAM, "create_for", echoing_create)
    stream = streams.stream_create(owner=room, url=URL)

    assert stream.sync_state == SyncState.PENDING_PUSH
    _assert_masked_everywhere(staff_client(), stream, room, caplog)


def test_a_push_task_whose_retries_ran_out_keeps_the_url_out_of_everything(
    sandbox, room, staff_client, queued, run_queued, fast_push, caplog, monkeypatch,
    django_capture_on_commit_callbacks,
):
    import logging

    from rooms.registry import STREAM
    from rooms.signalwire.errors import UnavailableError

    caplog.set_level(logging.DEBUG)
    sandbox.inject_fault(503, methods=["POST"])
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
    sandbox.clear_faults()

    def echoing_create(*args, **kwargs):
        raise _echoing(UnavailableError)

    monkeypatch.setattr(STREAM, "create_for", echoing_create)
    run_queued()

    stream.refresh_from_db()
    assert stream.sync_state == SyncState.PENDING_PUSH
    _assert_masked_everywhere(staff_client(), stream, room, caplog)


# --- view-only staff, owners, escaping, SignalWire's messages (issue 22, items 1-6) -------


@pytest.fixture
def staff_with(client, django_user_model):
    """Log in staff holding exactly these rooms permissions (codenames)."""

    def login(*codenames: str):
        user = django_user_model.objects.create_user(
            f"only-{len(codenames)}-{'-'.join(codenames)}"[:150], password="pw", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client.force_login(user)
        return client

    return login


@pytest.mark.parametrize(
    "codenames",
    [
        ("view_stream",),
        ("view_stream", "add_stream", "delete_stream", "view_room", "change_room"),
    ],
)
def test_staff_who_may_not_change_a_stream_see_its_url_masked_never_whole(
    sandbox, room, staff_with, codenames
):
    stream = streams.stream_create(owner=room, url=URL)
    client = staff_with(*codenames)

    page = client.get(change_url(stream))

    assert page.status_code == 200
    assert_no_secret(page)
    assert "rtmp://live.twitch.tv/••••••••" in page.content.decode()
    assert "Reveal URL" not in page.content.decode()


@pytest.mark.parametrize(("kind", "change_perm"), [("room", "change_room"),
                                                    ("conference", "change_conference")])
def test_adding_a_stream_needs_the_right_to_change_its_owner(
    sandbox, staff_with, kind, change_perm
):
    if kind == "room":
        owner = services.room_create(data={"name": "guarded"})
    else:
        owner = services.conference_create(data={"name": "guarded"})
    perms = ("view_stream", "add_stream", f"view_{kind}")
    client = staff_with(*perms)
    owner_page = client.get(reverse(f"admin:rooms_{kind}_change", args=[owner.pk]))
    assert "Add a stream" not in owner_page.content.decode()
    sandbox.clear_requests()

    refused = client.post(add_url(kind, owner.pk), {kind: owner.pk, "url": URL})

    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "You may not change this" in errors[kind][0]
    assert not Stream.objects.exists() and sandbox.requests == []

    client = staff_with(*perms, change_perm)
    assert "Add a stream" in client.get(
        reverse(f"admin:rooms_{kind}_change", args=[owner.pk])
    ).content.decode()
    added = client.post(add_url(kind, owner.pk), {kind: owner.pk, "url": URL})
    assert added.status_code == 302
    assert Stream.objects.get().owner == owner


@pytest.mark.parametrize(
    "url",
    ["rtmp://h..example/app/k", "rtmp://-h-/app/k", "rtmps://live-.example.com/k",
     "rtmp://<script>alert(1)</script>/k", f"rtmp://{'a' * 64}.example.com/k"],
)
def test_a_url_whose_host_is_no_host_name_is_refused_on_the_field(
    sandbox, room, staff_client, url
):
    client = staff_client()
    sandbox.clear_requests()

    response = client.post(add_url("room", room.pk), {"room": room.pk, "url": url})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not a valid host name" in errors["url"][0]
    assert sandbox.requests == [] and not Stream.objects.exists()


@pytest.mark.parametrize("url", ["rtmp://[::1]:1935/app/k", "rtmp://10.0.0.7/app/k",
                                 "rtmps://live-1.example.com./app/k"])
def test_ip_literals_and_host_names_are_accepted(sandbox, room, staff_client, url):
    response = staff_client().post(add_url("room", room.pk), {"room": room.pk, "url": url})

    assert response.status_code == 302
    assert Stream.objects.get().url == url


def test_markup_in_a_url_from_the_space_stays_escaped_on_every_page(
    sandbox, api, room, staff_client
):
    hostile = f"rtmp://<b>x</b>/{KEY}"
    assert api.post(f"/api/video/rooms/{room.remote_id}/streams", json={"url": hostile}).ok
    sync_streams()
    stream = Stream.objects.get()
    assert stream.url == hostile
    client = staff_client()

    for page in (change_url(stream), reverse("admin:rooms_stream_changelist"),
                 reverse("admin:rooms_room_change", args=[room.pk]),
                 reverse("admin:rooms_stream_history", args=[stream.pk])):
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "<b>" not in html, page
        assert KEY not in html and KEY not in unescape(html)
    help_text = client.get(change_url(stream)).content.decode()
    assert "&lt;b&gt;x" in help_text and "is not shown here (rtmp://&lt;b&gt;x" in help_text


# SignalWire's 422 may echo the key without its scheme, or percent-encoded.
ECHOES = (
    f"Stream key /app/{KEY} was refused",
    f"rtmp%3A%2F%2Flive.twitch.tv%2Fapp%2F{KEY} is not reachable",
)


def refusing_space(stream_list: list | None = None):
    """A Space that lists no streams and answers every stream POST or PUT with our 422."""
    from tests.hostile_space import HostileSpace

    def answer(handler):
        if handler.command == "GET":
            handler.send_page(stream_list or [])
            return
        handler.send_json({"errors": [
            {"code": "invalid_parameter", "attribute": "url", "message": ECHOES[0]},
            {"code": "unreachable", "message": ECHOES[1]},
        ]}, status=422)

    return HostileSpace(answer).start()


def assert_no_key_in(text: str) -> None:
    from urllib.parse import quote

    for form in (KEY, quote(KEY, safe=""), f"app/{KEY}", f"app%2F{KEY}"):
        assert form.lower() not in unescape(text).lower()


@pytest.mark.parametrize("change", [False, True])
def test_signalwire_refusing_a_stream_form_never_shows_the_key(
    sandbox, room, staff_client, settings, change
):
    stream = streams.stream_create(owner=room, url=SPACE_URL) if change else None
    client = staff_client()
    space = refusing_space()
    settings.SIGNALWIRE_SPACE_URL = space.url
    try:
        if change:
            response = client.post(change_url(stream), {"url": URL, "_save": "Save"})
        else:
            response = client.post(add_url("room", room.pk), {"room": room.pk, "url": URL})
    finally:
        space.stop()

    assert response.status_code == 200
    assert [r["method"] for r in space.requests][-1] in ("POST", "PUT")
    html = response.content.decode()
    assert "was refused" in html and "is not reachable" in html
    assert_no_key_in(html)
    if change:
        stream.refresh_from_db()
        assert stream.url == SPACE_URL
    else:
        assert not Stream.objects.exists()


def test_a_push_refused_with_the_key_in_the_message_stores_and_shows_it_masked(
    sandbox, room, staff_client, queued, run_queued, settings, caplog,
    django_capture_on_commit_callbacks,
):
    import logging

    caplog.set_level(logging.DEBUG)
    sandbox.inject_fault(503, methods=["POST"])
    with django_capture_on_commit_callbacks(execute=True):
        stream = streams.stream_create(owner=room, url=URL)
    assert stream.sync_state == SyncState.PENDING_PUSH
    space = refusing_space()
    settings.SIGNALWIRE_SPACE_URL = space.url
    try:
        run_queued()
    finally:
        space.stop()

    stream.refresh_from_db()
    assert stream.sync_state == SyncState.PUSH_FAILED
    assert "was refused" in stream.last_error
    assert_no_key_in(stream.last_error)
    assert_no_key_in(caplog.text)
    client = staff_client()
    for page in (change_url(stream), reverse("admin:rooms_stream_changelist"),
                 reverse("admin:rooms_room_change", args=[room.pk])):
        response = client.get(page)
        assert response.status_code == 200
        assert_no_key_in(response.content.decode())


def test_an_error_stored_with_the_bare_key_is_masked_in_the_badge_and_on_the_page(
    sandbox, room, staff_client
):
    stream = streams.stream_create(owner=room, url=URL)
    Stream.objects.filter(pk=stream.pk).update(
        sync_state=SyncState.PUSH_FAILED, last_error=" / ".join(ECHOES)
    )
    client = staff_client()

    listing = client.get(reverse("admin:rooms_stream_changelist")).content.decode()
    page = client.get(change_url(stream)).content.decode()

    assert 'title="Stream key •••••••• was refused' in listing
    assert "Stream key •••••••• was refused" in page
    assert_no_key_in(listing)
    assert_no_key_in(page)


def test_an_error_echoing_a_conference_token_is_stored_masked(sandbox, staff_client):
    conference = services.conference_create(data={"name": "tokened"})
    token = conference.tokens.get(name="guest").token
    stream = streams.stream_create(owner=conference, url=URL)
    # Both wait for a push that SignalWire then refuses, echoing the token.
    type(conference).objects.filter(pk=conference.pk).update(sync_state=SyncState.PENDING_PUSH)
    Stream.objects.filter(pk=stream.pk).update(sync_state=SyncState.PENDING_PUSH)

    services.push_mark_failed(
        kind="conference", pk=conference.pk, error=f"token {token} is not valid here"
    )
    services.push_mark_failed(kind="stream", pk=stream.pk, error=f"join with {token} refused")

    conference.refresh_from_db()
    stream.refresh_from_db()
    assert conference.last_error == "token •••••••• is not valid here"
    assert stream.last_error == "join with •••••••• refused"


def test_changing_where_a_stream_sends_needs_the_right_to_change_its_owner(
    sandbox, room, staff_with
):
    stream = streams.stream_create(owner=room, url=URL)
    perms = ("view_stream", "change_stream", "view_room")
    client = staff_with(*perms)
    sandbox.clear_requests()

    refused = client.post(change_url(stream), {"url": SPACE_URL, "_save": "Save"})

    assert refused.status_code == 200
    assert "You may not change this stream's room" in (
        refused.context["adminform"].form.errors["url"][0]
    )
    stream.refresh_from_db()
    assert stream.url == URL and sandbox.requests == []

    client = staff_with(*perms, "change_room")
    changed = client.post(change_url(stream), {"url": SPACE_URL, "_save": "Save"})
    assert changed.status_code == 302
    stream.refresh_from_db()
    assert stream.url == SPACE_URL
    assert sandbox.streams[stream.remote_id]["url"] == SPACE_URL


def stream_posts(sandbox, room) -> list[dict]:
    path = f"/api/video/rooms/{room.remote_id}/streams"
    return [r for r in sandbox.requests if r["method"] == "POST" and r["path"] == path]


def test_an_add_stream_form_sent_twice_adds_one_stream(sandbox, room, staff_client):
    client = staff_client()
    form = {"room": room.pk, "url": URL}

    first = client.post(add_url("room", room.pk), form)
    again = client.post(add_url("room", room.pk), form)

    assert first.status_code == 302 and again.status_code == 200
    assert "already has a stream to this URL" in again.content.decode()
    assert Stream.objects.count() == 1 and len(sandbox.streams) == 1
    assert len(stream_posts(sandbox, room)) == 1
    assert_no_secret(again)


@pytest.mark.django_db(transaction=True)
def test_an_add_stream_form_sent_four_times_at_once_adds_one_stream(
    sandbox, room, staff_client
):
    from tests.concurrent import post_together

    client = staff_client()

    answers = post_together(client, add_url("room", room.pk), {"room": room.pk, "url": URL})

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 302]
    assert Stream.objects.count() == 1 and len(sandbox.streams) == 1
    assert len(stream_posts(sandbox, room)) == 1
