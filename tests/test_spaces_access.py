"""Access per Space: staff granted one Space find nothing of another on any admin route."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from rooms import outbox
from rooms.admin.scoping import SpaceFilter
from rooms.checks import check_spaces
from rooms.models import (
    ActionRun,
    Alert,
    AlertKind,
    AuditEntry,
    Conference,
    ConferenceToken,
    IssuedRoomToken,
    Recording,
    Room,
    RoomSession,
    SessionMember,
    Space,
    Stream,
    SyncRun,
    UsageDay,
    UsageDayTotal,
    UsageMonth,
    VideoLog,
)
from tests.conftest import SANDBOX_API_TOKEN, SANDBOX_PROJECT_ID

pytestmark = pytest.mark.django_db

# Views that act only on POST; a GET of them answers 405 to those allowed in.
POST_ONLY = {"token_reveal", "download"}


def seed_space(space: Space, tag: str, staff) -> dict:
    """Rows of every model in one Space, written directly (SignalWire already agrees)."""
    now = timezone.now()
    with outbox.pushes_suppressed():
        conference = Conference.objects.create(
            space=space, name=f"{tag}-board", display_name=f"{tag} board",
            remote_id=f"rid-{tag}-conference",
        )
        conference.display_name = f"{tag} board v2"
        conference.save()
        token = ConferenceToken.objects.create(
            space=space, conference=conference, remote_id=f"rid-{tag}-token", name="guest",
            token=f"tok-{tag}-secret",
        )
        room = Room.objects.create(
            space=space, name=f"{tag}-room", display_name=f"{tag} room", max_members=5,
            remote_id=f"rid-{tag}-room",
        )
        room.max_members = 6
        room.save()
        stream = Stream.objects.create(
            space=space, room=room, remote_id=f"rid-{tag}-stream",
            url=f"rtmps://live.example-cdn.net/app/{tag}-stream-key",
        )
    issued = IssuedRoomToken.objects.create(
        space=space, room=room, room_name=room.name, fingerprint=tag[0] * 64, issued_by=staff,
        user_name=f"{tag}-guest",
    )
    session = RoomSession.objects.create(
        space=space, remote_id=f"rid-{tag}-session", room=room, room_name=room.name,
        status="completed", start_time=now - timedelta(hours=1),
    )
    SessionMember.objects.create(
        space=space, session=session, remote_id=f"rid-{tag}-member", name=f"{tag}-member"
    )
    recording = Recording.objects.create(
        space=space, remote_id=f"rid-{tag}-recording", session=session,
        remote_session_id=session.remote_id, room_name=room.name, status=f"{tag}-status",
        size_in_bytes=4096, started_at=now - timedelta(hours=1),
    )
    log = VideoLog.objects.create(
        space=space, remote_id=f"rid-{tag}-log", room_name=room.name, status="completed",
        remote_created_at=now,
    )
    figures = {"sessions": 1, "member_seconds": 600, "estimated_cost": Decimal("1.5")}
    UsageDay.objects.create(space=space, day=now.date(), room_name=room.name, room=room, **figures)
    UsageDayTotal.objects.create(space=space, day=now.date(), **figures)
    UsageMonth.objects.create(
        space=space, month=now.date().replace(day=1), room_name=room.name, **figures
    )
    sync_run = SyncRun.objects.create(space=space, kind=SyncRun.Kind.ROOMS, error=f"{tag}-sync")
    SyncRun.objects.filter(pk=sync_run.pk).update(
        outcome=SyncRun.Outcome.FAILED, finished_at=now
    )
    action_run = ActionRun.objects.create(
        space=space, action=ActionRun.Action.BULK_EDIT, kind="conference", total=1,
        pks=[conference.pk], state=ActionRun.State.SUCCEEDED, error=f"{tag}-run",
        changes={"display_name": f"{tag} bulk"},
    )
    alert = Alert.objects.create(
        space=space, kind=AlertKind.PUSH_FAILED, subject=f"{tag}-alert", summary=f"{tag} refused"
    )
    audit = AuditEntry.objects.filter(
        content_type__model="conference", object_pk=str(conference.pk),
        action=AuditEntry.Action.UPDATE,
    ).latest("pk")
    return {
        "conference": conference, "token": token, "room": room, "stream": stream,
        "issued": issued, "session": session, "recording": recording, "log": log,
        "sync_run": sync_run, "action_run": action_run, "alert": alert, "audit": audit,
    }


@pytest.fixture
def two_spaces(sandbox_server, sandbox, admin_user, django_user_model):
    """Spaces Alpha and Bravo with rows of every model, and staff granted Alpha alone."""
    spaces = {}
    for tag in ("alpha", "bravo"):
        space = Space(
            name=f"Space {tag.title()}", space_url=sandbox_server.url, project_id=SANDBOX_PROJECT_ID
        )
        space.set_token(SANDBOX_API_TOKEN)
        space.save()
        spaces[tag] = space
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(content_type__app_label="rooms"))
    spaces["alpha"].staff.add(clerk)
    rows = {tag: seed_space(space, tag, admin_user) for tag, space in spaces.items()}
    Alert.objects.create(kind=AlertKind.LOCKOUT, subject="portal-wide", summary="locked")
    return {"spaces": spaces, "rows": rows, "clerk": clerk}


def row_routes(rows: dict) -> dict[str, str]:
    """Every page about one Space's rows: change, history, delete and the custom views."""
    urls = {}
    for key in ("conference", "room", "stream", "issued", "session", "recording", "log",
                "sync_run", "action_run", "alert"):
        obj = rows[key]
        info = f"rooms_{obj._meta.model_name}"
        for view in ("change", "history", "delete"):
            urls[f"{key}_{view}"] = reverse(f"admin:{info}_{view}", args=[obj.pk])
    conference, room = rows["conference"], rows["room"]
    for view in ("reveal", "reset"):
        urls[f"token_{view}"] = reverse(
            f"admin:rooms_conference_token_{view}", args=[conference.pk, rows["token"].pk]
        )
    urls["mint"] = reverse("admin:rooms_room_mint_token", args=[room.pk])
    urls["stream_reveal"] = reverse("admin:rooms_stream_reveal", args=[rows["stream"].pk])
    urls["download"] = reverse("admin:rooms_recording_download", args=[rows["recording"].pk])
    urls["events"] = reverse("admin:rooms_roomsession_events", args=[rows["session"].pk])
    urls["progress"] = reverse("admin:rooms_actionrun_progress", args=[rows["action_run"].pk])
    urls["run_restore"] = reverse("admin:rooms_actionrun_restore", args=[rows["action_run"].pk])
    urls["audit_restore"] = reverse(
        "admin:rooms_conference_audit_restore", args=[conference.pk, rows["audit"].pk]
    )
    return urls


CHANGELISTS = (
    Conference, Room, Stream, IssuedRoomToken, RoomSession, Recording, VideoLog, SyncRun,
    ActionRun, AuditEntry, Alert,
)


def leaks(html: str, rows: dict) -> list[str]:
    """What of the other Space a page shows: its tag, its Space's name, links to its rows."""
    found = [marker for marker in ("bravo", "Space Bravo") if marker in html.lower()
             or marker in html]
    for key, obj in rows.items():
        if key in ("token", "audit"):
            continue  # no page of their own
        path = reverse(f"admin:rooms_{obj._meta.model_name}_change", args=[obj.pk])
        if f'href="{path}"' in html:
            found.append(path)
    return found


def test_staff_of_one_space_find_nothing_of_the_other_on_any_admin_route(
    two_spaces, client, capsys
):
    client.force_login(two_spaces["clerk"])
    mine, theirs = two_spaces["rows"]["alpha"], two_spaces["rows"]["bravo"]
    visited = leaked = 0

    def visit(url: str, method: str = "get", **data):
        nonlocal visited, leaked
        response = getattr(client, method)(url, data)
        visited += 1
        html = response.content.decode(errors="replace")
        found = leaks(html, theirs)
        leaked += len(found)
        assert not found, (url, found)
        return response

    # Lists, every choice of every filter, and searches for the other Space's rows.
    for model in CHANGELISTS:
        url = reverse(f"admin:rooms_{model._meta.model_name}_changelist")
        page = visit(url)
        assert page.status_code == 200, url
        changelist = page.context["cl"]
        assert changelist.result_list, f"{url} lists none of Alpha's rows"
        assert all(
            getattr(row, "space_id", None) in (two_spaces["spaces"]["alpha"].pk, None)
            for row in changelist.result_list
        ), url
        assert not any(isinstance(spec, SpaceFilter) for spec in changelist.filter_specs)
        for spec in changelist.filter_specs:
            for choice in spec.choices(changelist):
                assert visit(url + choice["query_string"]).status_code == 200
        if changelist.search_fields or model in (RoomSession, Recording, AuditEntry):
            for term in ("rid-bravo-conference", "rid-bravo-room", "bravo-room", "bravo"):
                found = client.get(url, {"q": term})
                visited += 1
                assert list(found.context["cl"].result_list) == [], (url, term)
            assert visit(url, q="alpha").status_code == 200
    # The change log of one object of each Space, and of a run id of each.
    changelog = reverse("admin:rooms_auditentry_changelist")
    for rows in (mine, theirs):
        entries = client.get(changelog, {"cid": str(rows["action_run"].run_id)})
        visited += 1
        assert "bravo" not in entries.content.decode().split('id="result_list"')[-1]

    # The other Space's rows: 404 on every page, GET and POST alike (a GET of a POST-only
    # view is refused before any lookup, whatever the id).
    for name, url in row_routes(theirs).items():
        for method in ("get", "post"):
            response = visit(url, method)
            expected = 405 if method == "get" and name in POST_ONLY else 404
            assert response.status_code == expected, (name, method, response.status_code)
    # One's own rows: each page works.
    for name, url in row_routes(mine).items():
        method = "post" if name in POST_ONLY else "get"
        response = visit(url, method)
        # Records (kept history) have no delete page for anyone.
        allowed = (200, 302, 403) if name.endswith("_delete") and name.split("_")[0] in (
            "issued", "session", "log", "sync", "action", "alert"
        ) else (200, 302)
        assert response.status_code in allowed, (name, response.status_code)
        if name.endswith("_change"):
            assert "alpha" in response.content.decode()

    # Pages of figures: Alpha's alone.
    index = visit(reverse("admin:index"))
    assert "portal-wide" in index.content.decode() and "alpha-alert" in index.content.decode()
    assert 'id="minutes-today">10.0 minutes' in index.content.decode()
    usage = visit(reverse("admin:rooms_usage"))
    assert "alpha-room" in usage.content.decode()
    csv = visit(reverse("admin:rooms_usage_csv"))
    assert "alpha-room" in csv.content.decode()
    for chart in ("minutes", "rooms", "cost", "sessions"):
        assert visit(reverse("admin:rooms_usage_chart", args=[chart])).status_code == 200
    runs = visit(reverse("admin:rooms_syncrun_changelist"))
    assert "alpha-sync" in runs.content.decode()

    # Actions: select-all across pages and a selection naming the other Space's rows.
    conferences = reverse("admin:rooms_conference_changelist")
    across = visit(
        conferences, "post", action="push_selected", select_across="1", index="0",
        _selected_action=[mine["conference"].pk],
    )
    assert list(across.context["objects"]) == [mine["conference"]]
    picked = visit(
        conferences, "post", action="edit_selected", index="0",
        _selected_action=[theirs["conference"].pk],
    )
    assert picked.status_code in (200, 302)  # nothing this user may see was selected
    assert ActionRun.objects.filter(space=two_spaces["spaces"]["bravo"]).count() == 1
    with capsys.disabled():
        print(f"\nSpace access crawl: {visited} routes visited, {leaked} rows of the other "
              "Space found")
    assert leaked == 0 and visited > 150


def test_a_superuser_sees_both_spaces_with_a_space_column_and_filter(two_spaces, admin_client):
    page = admin_client.get(reverse("admin:rooms_conference_changelist"))
    html = page.content.decode()
    assert "alpha-board" in html and "bravo-board" in html
    assert '<th scope="col" class="column-space' in html
    spec = next(s for s in page.context["cl"].filter_specs if isinstance(s, SpaceFilter))
    names = [c["display"] for c in spec.choices(page.context["cl"])]
    assert "Space Alpha" in names and "Space Bravo" in names
    bravo = two_spaces["spaces"]["bravo"].pk
    only = admin_client.get(reverse("admin:rooms_conference_changelist"), {"space": bravo})
    assert [c.name for c in only.context["cl"].result_list] == ["bravo-board"]
    for tag in ("alpha", "bravo"):
        run = two_spaces["rows"][tag]["action_run"]
        assert admin_client.get(
            reverse("admin:rooms_actionrun_change", args=[run.pk])
        ).status_code == 200


def test_the_space_column_and_filter_show_only_with_more_than_one_visible_space(
    two_spaces, client
):
    clerk = two_spaces["clerk"]
    client.force_login(clerk)
    url = reverse("admin:rooms_room_changelist")
    assert "column-space" not in client.get(url).content.decode()
    two_spaces["spaces"]["bravo"].staff.add(clerk)
    page = client.get(url)
    assert "column-space" in page.content.decode()
    assert any(isinstance(s, SpaceFilter) for s in page.context["cl"].filter_specs)
    assert {r.name for r in page.context["cl"].result_list} == {"alpha-room", "bravo-room"}


def test_a_superuser_action_on_rows_of_two_spaces_is_refused(two_spaces, admin_client):
    rows = two_spaces["rows"]
    response = admin_client.post(
        reverse("admin:rooms_conference_changelist"),
        {"action": "push_selected", "index": "0",
         "_selected_action": [rows["alpha"]["conference"].pk, rows["bravo"]["conference"].pk]},
        follow=True,
    )
    assert "belong to more than one Space" in response.content.decode()
    assert not ActionRun.objects.filter(action=ActionRun.Action.PUSH).exists()


def test_the_add_form_asks_for_a_space_only_among_several_and_names_a_taken_name(
    two_spaces, client, sandbox, form_post_data
):
    clerk = two_spaces["clerk"]
    client.force_login(clerk)
    add = reverse("admin:rooms_conference_add")
    # One Space: nothing to choose, new rows go to it.
    blank = client.get(add)
    assert "space" not in blank.context["adminform"].form.fields
    taken = client.post(add, form_post_data(blank, name="alpha-board", display_name="x"))
    assert taken.status_code == 200
    assert "The Space “Space Alpha” already has a conference named “alpha-board”" in (
        taken.content.decode()
    )
    # Several: the field offers the user's Spaces only.
    two_spaces["spaces"]["bravo"].staff.add(clerk)
    page = client.get(add)
    field = page.context["adminform"].form.fields["space"]
    assert set(field.queryset) == {two_spaces["spaces"]["alpha"], two_spaces["spaces"]["bravo"]}
    two_spaces["spaces"]["bravo"].staff.remove(clerk)
    elsewhere = client.post(add, form_post_data(
        blank, space=two_spaces["spaces"]["bravo"].pk, name="new-one", display_name="x"
    ))
    assert elsewhere.status_code == 302, elsewhere.context["adminform"].form.errors
    assert Conference.objects.get(name="new-one").space == two_spaces["spaces"]["alpha"]
    change = client.get(reverse("admin:rooms_conference_change", args=[
        two_spaces["rows"]["alpha"]["conference"].pk
    ]))
    assert "space" not in change.context["adminform"].form.fields


def test_the_space_admin_is_for_superusers_and_never_renders_the_token(
    two_spaces, admin_client, client
):
    secret = "sw-api-token-never-shown-5d1c"
    add = admin_client.post(reverse("admin:rooms_space_add"), {
        "name": "Space Charlie", "space_url": "https://charlie.signalwire.com",
        "project_id": "charlie-project", "api_token": secret, "token_env": "",
    })
    assert add.status_code == 302, add.content.decode()[:2000]
    space = Space.objects.get(name="Space Charlie")
    assert space.token_encrypted and secret not in space.token_encrypted
    assert space.credentials().api_token == secret
    change_url = reverse("admin:rooms_space_change", args=[space.pk])
    html = admin_client.get(change_url).content.decode()
    assert secret not in html and space.token_encrypted not in html
    assert "Stored encrypted" in html
    # A blank token on change keeps the stored one.
    kept = admin_client.post(change_url, {
        "name": "Space Charlie", "space_url": "https://charlie.signalwire.com",
        "project_id": "charlie-2", "api_token": "", "token_env": "",
    })
    assert kept.status_code == 302
    space.refresh_from_db()
    assert space.project_id == "charlie-2" and space.credentials().api_token == secret
    assert AuditEntry.objects.filter(
        content_type__model="space", object_pk=str(space.pk)
    ).count() == 2
    trail = [str(e.changes) for e in AuditEntry.objects.all()]
    trail += [e.change_message for e in LogEntry.objects.all()]
    assert not any(secret in t or space.token_encrypted[:20] in t for t in trail)
    # The environment's Space is shown read-only with where its settings come from.
    environment = Space.objects.get(from_settings=True)
    page = admin_client.get(reverse("admin:rooms_space_change", args=[environment.pk]))
    assert "SIGNALWIRE_SPACE_URL" in page.content.decode()
    assert set(page.context["adminform"].form.fields) == {"staff", "groups"}
    # Staff who are not superusers never see it, even with every permission.
    client.force_login(two_spaces["clerk"])
    two_spaces["clerk"].user_permissions.add(*Permission.objects.filter(codename__endswith="space"))
    assert client.get(reverse("admin:rooms_space_changelist")).status_code == 403
    assert client.get(change_url).status_code == 403
    assert b"Space Charlie" not in client.get(reverse("admin:index")).content


def test_the_check_names_a_broken_space_and_a_bad_key(db, settings):
    Space.objects.create(name="Half Done", space_url="https://half.signalwire.com")
    good = Space(name="Good", space_url="https://good.signalwire.com", project_id="p")
    good.set_token("t")
    good.save()
    errors = check_spaces()
    assert [e.id for e in errors] == ["rooms.E009"]
    assert "Half Done" in errors[0].msg and "project ID is missing" in errors[0].msg
    settings.SPACE_TOKEN_KEYS = ["not-a-fernet-key"]
    assert [e.id for e in check_spaces()] == ["rooms.E010"]


def test_rotate_space_tokens_re_encrypts_with_the_newest_key(db, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SPACE_TOKEN_KEYS = [old]
    space = Space(name="Rotated", space_url="https://r.signalwire.com", project_id="p")
    space.set_token("rotate-me")
    space.save()
    settings.SPACE_TOKEN_KEYS = [new, old]
    call_command("rotate_space_tokens")
    settings.SPACE_TOKEN_KEYS = [new]
    space.refresh_from_db()
    assert space.credentials().api_token == "rotate-me"


def test_a_space_must_be_reached_over_https_and_a_bare_host_means_https(admin_client):
    plain = admin_client.post(reverse("admin:rooms_space_add"), {
        "name": "Plain", "space_url": "http://plain.signalwire.com",
        "project_id": "p", "api_token": "t-1", "token_env": "",
    })
    assert plain.status_code == 200
    assert "Use https://" in str(plain.context["adminform"].form.errors["space_url"])
    assert not Space.objects.filter(name="Plain").exists()
    bare = admin_client.post(reverse("admin:rooms_space_add"), {
        "name": "Bare", "space_url": "bare.signalwire.com",
        "project_id": "p", "api_token": "t-2", "token_env": "",
    })
    assert bare.status_code == 302
    assert Space.objects.get(name="Bare").space_url == "https://bare.signalwire.com"


@pytest.mark.django_db
def test_usage_keeps_rooms_of_one_name_in_two_spaces_apart():
    from rooms.selectors.usage import usage_by_day, usage_by_room, utc_today

    today = utc_today()
    first = Space.objects.create(name="North", space_url="https://n.example.com", project_id="n")
    second = Space.objects.create(name="South", space_url="https://s.example.com", project_id="s")
    for space, seconds in ((first, 600), (second, 1200)):
        figures = {"sessions": 1, "member_seconds": seconds}
        UsageDay.objects.create(space=space, day=today, room_name="lobby", **figures)
        UsageDayTotal.objects.create(space=space, day=today, **figures)
        UsageMonth.objects.create(
            space=space, month=today.replace(day=1), room_name="lobby", **figures
        )

    both = usage_by_room(days=7, today=today)
    assert [(row.label, row.minutes) for row in both] == [
        ("lobby (South)", 20.0), ("lobby (North)", 10.0),
    ]
    assert [(row.label, row.minutes) for row in usage_by_room(days=7, spaces=[first])] == [
        ("lobby", 10.0)
    ]
    assert usage_by_day(days=1, today=today)[0].minutes == 30.0
    assert usage_by_day(days=1, today=today, spaces=[second])[0].minutes == 20.0


def test_another_spaces_id_is_404_even_where_the_page_itself_is_refused(
    two_spaces, client, django_user_model
):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_conference", "view_auditentry"])
    )
    two_spaces["spaces"]["alpha"].staff.add(viewer)
    client.force_login(viewer)
    for tag, expected in (("alpha", 403), ("bravo", 404)):
        rows = two_spaces["rows"][tag]
        for url in (
            reverse("admin:rooms_conference_delete", args=[rows["conference"].pk]),
            reverse("admin:rooms_auditentry_change", args=[rows["audit"].pk]),
            reverse("admin:rooms_auditentry_history", args=[rows["audit"].pk]),
        ):
            for method in ("get", "post"):
                status = getattr(client, method)(url).status_code
                assert status == expected, (tag, url, method, status)


def test_a_stored_token_is_never_sent_to_a_new_url_or_named_from_another_setting(
    admin_client,
):
    add = reverse("admin:rooms_space_add")
    assert admin_client.post(add, {
        "name": "Moving", "space_url": "https://one.signalwire.com", "project_id": "p",
        "api_token": "t-moving", "token_env": "",
    }).status_code == 302
    space = Space.objects.get(name="Moving")
    change = reverse("admin:rooms_space_change", args=[space.pk])
    moved = admin_client.post(change, {
        "name": "Moving", "space_url": "https://elsewhere.example.com", "project_id": "p",
        "api_token": "", "token_env": "",
    })
    assert "Give the API token again" in str(moved.context["adminform"].form.errors)
    space.refresh_from_db()
    assert space.space_url == "https://one.signalwire.com"
    named = admin_client.post(change, {
        "name": "Moving", "space_url": "https://one.signalwire.com", "project_id": "p",
        "api_token": "", "token_env": "DJANGO_SECRET_KEY",
    })
    assert "starting with SIGNALWIRE_" in str(named.context["adminform"].form.errors)
    space.refresh_from_db()
    assert space.token_env == "" and space.credentials().api_token == "t-moving"


def test_a_promotion_run_seen_from_its_target_space_alone_names_no_source_row(
    two_spaces, client, admin_client
):
    alpha, bravo = two_spaces["spaces"]["alpha"], two_spaces["spaces"]["bravo"]
    source = two_spaces["rows"]["bravo"]["conference"]
    run = ActionRun.objects.create(
        space=alpha, action=ActionRun.Action.PROMOTE, kind="conference", total=1,
        pks=[source.pk], state=ActionRun.State.FINISHED_WITH_ERRORS, errors=1,
        error=f"{source.name}: refused", failures=[
            {"pk": source.pk, "name": source.name, "message": "refused"}
        ],
        changes={"space": alpha.name, "source_space_ids": [bravo.pk], "rows": [
            {"pk": source.pk, "name": source.name, "outcome": "failed", "fields": []}
        ]},
    )
    url = reverse("admin:rooms_actionrun_change", args=[run.pk])
    client.force_login(two_spaces["clerk"])  # granted Alpha, the target, alone
    page = client.get(url)
    assert page.status_code == 200
    assert source.name not in page.content.decode()
    assert source.name in admin_client.get(url).content.decode()
