"""Crafted query strings on admin pages get a 400 or are ignored, never a 5xx."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import reverse

from rooms import services, sync
from rooms.models import AuditEntry, Room, Stream
from rooms.secrets import SECRET_COLUMNS, is_secret_column
from rooms.services import streams, tokens

pytestmark = pytest.mark.django_db

STREAM_KEY = "live_4f2a-querystring-key"
STREAM_URL = f"rtmp://live.twitch.tv/app/{STREAM_KEY}"

# Query strings aimed at every changelist: bad lookups and regexes, wrong types for
# filters, unknown parameters, huge values, impossible dates, non-numeric ids, ordering
# and paging garbage, and the admin's own control parameters.
HOSTILE = [
    "name__regex=(((",
    "name__iregex=[",
    "display_name__regex=*",
    "content_type=abc",
    "content_type=1e999",
    "actor=abc",
    "actor=-1",
    "source=nonsense",
    "action=abc",
    "action=99999999999999999999999",
    "cid=" + "x" * 5000,
    "id=abc",
    "pk=abc",
    "id__in=1,a",
    "id__gt=99999999999999999999999",
    "id__lt=-99999999999999999999999",
    "object_pk__in=",
    "no_such_field=1",
    "name__no_such_lookup=1",
    "name__search=x",
    "sync_state=garbage",
    "deleted_remotely=maybe",
    "remote_id__isnull=maybe",
    "max_members=1e999",
    "max_members__gt=abc",
    "max_members=" + "9" * 400,
    "join_from__gte=not-a-date",
    "join_from__lt=2024-13-45",
    "timestamp__gte=not-a-date",
    "timestamp__lt=2024-02-30",
    "timestamp__year=abcd",
    "timestamp__year=2024&timestamp__month=13",
    "timestamp__year=2024&timestamp__month=2&timestamp__day=31",
    "timestamp__year=0",
    "timestamp__year=99999999999999999999",
    "issued_at__year=-1",
    "started_at__year=2024&started_at__month=abc",
    "started_at__gte=yesterday",
    "raw__contains=abc",
    "raw__has_key=x",
    "meta__a__b=1",
    "scopes__contains=room",
    "issued_by__password__startswith=x",
    "actor__password__startswith=x",
    "user__password__startswith=x",
    "is_superuser=maybe",
    "is_staff__exact=2",
    "last_login__gte=never",
    "o=garbage",
    "o=99",
    "o=-1.x.3",
    "o=1.-2.abc.999999999999999999999",
    "p=abc",
    "p=-1",
    "p=0",
    "p=999999999999999999999",
    "all=",
    "_to_field=password",
    "_to_field=abc",
    "e=1",
    "e=",
    "_popup=abc",
    "_changelist_filters=" + quote("name__regex=(((", safe=""),
    "q=" + "a" * 5000,
    "q=%00",
    "name=%00",
    "q=" + quote("%_\\'\"", safe=""),
    "%ff%fe=%ff",
]


@pytest.fixture
def world(sandbox, admin_user):
    """One row of each kind, so every filter and every column has something to act on."""
    conference = services.conference_create(data={"name": "board", "display_name": "Board"})
    services.conference_update(conference=conference, data={"display_name": "Board 2"})
    room = services.room_create(data={"name": "studio", "max_members": 5})
    tokens.room_token_mint(room=room, role="guest", actor=admin_user)
    sync.sync_rooms()
    stream = streams.stream_create(owner=conference, url=STREAM_URL)
    streams.stream_create(owner=room, url=STREAM_URL + "-2")
    return {"conference": conference, "room": room, "stream": stream}


def changelist_urls() -> dict[str, str]:
    """The changelist of every model registered with the admin, plus the change log."""
    urls = {}
    for model in admin.site._registry:
        opts = model._meta
        urls[opts.label] = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return urls


def test_the_walk_covers_the_portals_changelists():
    urls = changelist_urls()

    for label in ("rooms.Conference", "rooms.Room", "rooms.IssuedRoomToken",
                  "rooms.SyncRun", "rooms.AuditEntry", "auth.User", "auth.Group"):
        assert label in urls


def test_hostile_query_strings_never_answer_5xx(world, admin_client):
    failures = []
    for label, url in changelist_urls().items():
        for query in HOSTILE:
            response = admin_client.get(f"{url}?{query}")
            if response.status_code >= 500:
                failures.append((label, query[:60], response.status_code))
            # The database connection stays usable for the next request.
            assert Room.objects.exists()
    assert failures == [], f"{connection.vendor}: {failures}"


@pytest.mark.parametrize(
    "query", ["content_type=abc", "name__regex=(((", "timestamp__year=abcd", "p=abc"]
)
def test_the_change_log_answers_bad_filters_plainly(world, admin_client, query):
    url = reverse("admin:rooms_auditentry_changelist")

    response = admin_client.get(f"{url}?{query}", follow=True)

    assert response.status_code in (200, 400)
    assert b"database installation" not in response.content
    if response.status_code == 400:
        assert b"not valid here" in response.content


def test_a_bad_regex_on_the_room_list_is_a_400_with_a_way_back(world, admin_client):
    url = reverse("admin:rooms_room_changelist")

    response = admin_client.get(f"{url}?name__regex=(((")

    assert response.status_code == 400
    text = response.content.decode()
    assert "not valid here" in text and f'href="{url}"' in text
    assert AuditEntry.objects.exists()  # the database is fine afterwards


FORM_HOSTILE = [
    "_to_field=password",
    "_changelist_filters=" + quote("name__regex=(((&p=abc", safe=""),
    "_popup=1&_to_field=abc",
    "max_members=abc",
    "join_from=not-a-date",
    "room=abc",
    "meta=[",
    "p=abc",
    "p=999999999999999999999",
    "name=%00",
]


def object_urls() -> list[tuple[str, str]]:
    """The add, change, history and delete pages of every registered model with a row."""
    urls = []
    for model in admin.site._registry:
        opts = model._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        urls.append((opts.label, reverse(f"{prefix}_add")))
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            for view in ("change", "history", "delete"):
                urls.append((opts.label, reverse(f"{prefix}_{view}", args=[obj.pk])))
    return urls


def test_hostile_query_strings_on_object_pages_never_answer_5xx(world, admin_client):
    failures = []
    for label, url in object_urls():
        for query in FORM_HOSTILE:
            response = admin_client.get(f"{url}?{query}")
            if response.status_code >= 500:
                failures.append((label, url, query[:60], response.status_code))
    assert failures == [], f"{connection.vendor}: {failures}"


# --- lookups on secret columns ------------------------------------------------------------

# Relations followed from each list to find secret columns: all suffixes up to this many
# hops, a few beyond (the admin's own relational check refuses most of those already).
FULL_DEPTH = 2
DEEP = 3
DEEP_SUFFIXES = ("startswith", "regex", "gt")


def secret_paths(model, depth: int, prefix: str = ""):
    """Every (lookup path, field) from a model to a secret column, within `depth` relations."""
    for field in model._meta.get_fields():
        if is_secret_column(model, field.name):
            yield prefix + field.name, field
        elif field.is_relation and field.related_model is not None and depth > 0:
            yield from secret_paths(field.related_model, depth - 1, f"{prefix}{field.name}__")


def secret_lookups() -> list[tuple[str, str, str]]:
    """(list label, its URL, query) for every suffix on every secret column of every list."""
    found = []
    for label, url in changelist_urls().items():
        model = next(m for m in admin.site._registry if m._meta.label == label)
        for path, field in secret_paths(model, DEEP):
            hops = path.count("__")
            suffixes = sorted(field.get_lookups()) if hops <= FULL_DEPTH else DEEP_SUFFIXES
            for suffix in ("", *suffixes):
                lookup = f"{path}__{suffix}" if suffix else path
                found.append((label, url, f"{lookup}=x"))
    return found


def test_the_secret_columns_are_defined_once_and_exist():
    from django.apps import apps

    for label, columns in SECRET_COLUMNS.items():
        model = apps.get_model(*label.split("."))
        assert all(is_secret_column(model, name) for name in columns)
    assert is_secret_column(Stream, "url")


def test_every_lookup_on_every_secret_column_of_every_list_is_a_400(world, admin_client):
    queries = secret_lookups()
    lists = {label for label, _, _ in queries}
    # Directly and through relations: streams, tokens, passwords, TOTP keys.
    assert {"rooms.Stream", "rooms.Conference", "rooms.Room", "rooms.RoomSession",
            "rooms.Recording", "auth.User", "otp_totp.TOTPDevice"} <= lists
    for expected in ("url__startswith=x", "streams__url__regex=x",
                     "conference__tokens__token__gt=x", "totpdevice__key__contains=x"):
        assert any(q == expected for _, _, q in queries), expected
    wrong = []
    for label, url, query in queries:
        response = admin_client.get(f"{url}?{query}")
        if response.status_code != 400 or b"not valid here" not in response.content:
            wrong.append((label, query, response.status_code))
    assert wrong == [], f"{len(wrong)} of {len(queries)}: {wrong[:20]}"


def test_a_viewer_cannot_read_a_stream_key_by_filtering_the_list(world, client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_stream", "view_conference", "view_room"])
    )
    client.force_login(viewer)
    streams_url = reverse("admin:rooms_stream_changelist")
    right = "rtmp://live.twitch.tv/app/" + STREAM_KEY[:5]
    attempts = [
        f"{streams_url}?url__startswith={quote(right, safe='')}",
        f"{streams_url}?url__regex=" + quote(f"^{right}", safe=""),
        f"{streams_url}?url__gt={quote(right, safe='')}",
        f"{streams_url}?url={quote(STREAM_URL, safe='')}",
        f"{streams_url}?conference__streams__url__contains={STREAM_KEY[:5]}",
        reverse("admin:rooms_conference_changelist") + f"?streams__url__contains={STREAM_KEY[:5]}",
        reverse("admin:rooms_room_changelist") + f"?streams__url__endswith={STREAM_KEY[-5:]}",
        reverse("admin:rooms_stream_change", args=[world["stream"].pk])
        + "?_changelist_filters=" + quote(f"url__startswith={right}", safe=""),
    ]
    for url in attempts:
        response = client.get(url)
        assert response.status_code == 400, url
        text = response.content.decode()
        assert "not valid here" in text and STREAM_KEY not in text
    # A POST to the list (an action form) is filtered by its query string too.
    response = client.post(f"{streams_url}?url__startswith={quote(right, safe='')}", {})
    assert response.status_code == 400
    # Outsiders still get the login page.
    client.logout()
    response = client.get(f"{streams_url}?url__startswith=x")
    assert response.status_code == 302 and "login" in response["Location"]


# Action posts aimed at every changelist: selections that are not ids of the model, ids
# beyond what the database holds, and an action index that is not a number.
POST_HOSTILE = [
    {"_selected_action": ["abc"]},
    {"_selected_action": ["1", "%00"]},
    {"_selected_action": ["1e999"]},
    {"_selected_action": ["9" * 40]},
    {"_selected_action": ["-99999999999999999999999"]},
    {"_selected_action": ["1"], "index": "abc"},
]


def test_hostile_action_posts_get_the_bad_request_page_never_5xx(world, admin_client):
    failures = []
    for label, url in changelist_urls().items():
        model_admin = next(a for m, a in admin.site._registry.items() if m._meta.label == label)
        action = next(iter(model_admin.get_actions(admin_client.get(url).wsgi_request)), "")
        for data in POST_HOSTILE:
            response = admin_client.post(url, {"action": action, **data})
            if response.status_code >= 500:
                failures.append((label, data, response.status_code))
            assert Room.objects.exists()
    assert failures == [], f"{connection.vendor}: {failures}"


def test_a_selection_that_is_no_id_is_answered_with_the_400_page(world, admin_client):
    url = reverse("admin:rooms_room_changelist")
    rooms = list(Room.objects.values_list("name", flat=True))

    response = admin_client.post(
        url, {"action": "delete_selected", "_selected_action": ["abc"], "post": "yes"}
    )

    assert response.status_code == 400
    text = response.content.decode()
    assert "not valid here" in text and f'href="{url}"' in text
    assert "<code>_selected_action</code>" in text
    assert list(Room.objects.values_list("name", flat=True)) == rooms


def test_outsiders_posting_a_bad_action_get_the_login_page_not_the_list(world, client):
    url = reverse("admin:rooms_room_changelist")

    response = client.post(url, {"action": "delete_selected", "index": "abc"})

    assert response.status_code == 302 and "login" in response["Location"]
    assert "Room" not in response.content.decode()
