"""Admin pages of room activity: live badges, session history, the sessions list and page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rooms import sync
from rooms.admin.paging import CappedCountPaginator
from rooms.admin.sessions import RoomSessionAdmin
from rooms.models import Conference, Room, RoomSession
from rooms.sync import sessions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def control(server, path: str, body: dict | None = None) -> dict:
    """Drive the sandbox through its loopback control API, over HTTP."""
    answer = requests.post(f"{server.url}/__sandbox__/{path}", json=body or {}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def member_names(html: str) -> list[str]:
    """The names in the members table of a session's page."""
    return re.findall(r'class="field-name">\s*<p>([^<]*)</p>', html)


@pytest.fixture
def busy_space(sandbox, sandbox_server):
    """Three rooms and two conferences; one room and one conference live, some history."""
    for name in ("alpha", "beta", "gamma"):
        sandbox.create_room({"name": name})
    for name in ("townhall", "quiet-conf"):
        sandbox.create_conference({"name": name, "display_name": name})
    sync.sync_rooms()
    sync.sync_conferences()
    past = control(sandbox_server, "sessions", {"room_name": "beta", "members": ["old"]})
    control(sandbox_server, f"sessions/{past['id']}/end")
    room_live = control(sandbox_server, "sessions", {"room_name": "alpha", "members": ["a", "b"]})
    conf_live = control(
        sandbox_server, "sessions", {"room_name": "townhall", "members": ["x", "y", "z"]}
    )
    sessions.sessions_refresh_live()
    sessions.sessions_sync_history()
    return {"room_live": room_live, "conf_live": conf_live, "past": past}


def test_room_list_shows_live_now_with_members_and_filters_live_and_idle(busy_space, admin_client):
    url = reverse("admin:rooms_room_changelist")
    html = admin_client.get(url).content.decode()
    assert "Live now: 2 members" in html
    assert html.count("Live now:") == 1

    live = admin_client.get(url, {"activity": "live"}).context["cl"].result_list
    assert [r.name for r in live] == ["alpha"]
    idle = admin_client.get(url, {"activity": "idle"}).context["cl"].result_list
    assert sorted(r.name for r in idle) == ["beta", "gamma"]


def test_conference_list_shows_live_now_and_filters(busy_space, admin_client):
    url = reverse("admin:rooms_conference_changelist")
    assert "Live now: 3 members" in admin_client.get(url).content.decode()
    live = admin_client.get(url, {"activity": "live"}).context["cl"].result_list
    assert [c.name for c in live] == ["townhall"]


def test_the_live_badge_costs_no_query_per_row(sandbox, sandbox_server, admin_client):
    for index in range(12):
        sandbox.create_room({"name": f"room-{index}"})
    sync.sync_rooms()
    for index in range(0, 12, 3):
        control(sandbox_server, "sessions", {"room_name": f"room-{index}", "members": ["m"]})
    sessions.sessions_refresh_live()
    url = reverse("admin:rooms_room_changelist")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for index in range(12, 30):
        sandbox.create_room({"name": f"room-{index}"})
    sync.sync_rooms()
    with CaptureQueriesContext(connection) as many:
        html = admin_client.get(url).content.decode()
    assert html.count("Live now: 1 members") == 4
    assert len(many.captured_queries) == len(few.captured_queries)


def test_room_page_shows_live_state_and_session_history_linking_to_sessions(
    busy_space, admin_client
):
    alpha = Room.objects.get(name="alpha")
    html = admin_client.get(reverse("admin:rooms_room_change", args=[alpha.pk])).content.decode()
    assert "Live now: 2 members" in html
    session = RoomSession.objects.get(remote_id=busy_space["room_live"]["id"])
    assert reverse("admin:rooms_roomsession_change", args=[session.pk]) in html

    beta = Room.objects.get(name="beta")
    html = admin_client.get(reverse("admin:rooms_room_change", args=[beta.pk])).content.decode()
    assert "Idle: no session in progress" in html
    past = RoomSession.objects.get(remote_id=busy_space["past"]["id"])
    assert reverse("admin:rooms_roomsession_change", args=[past.pk]) in html
    assert "completed" in html


def test_conference_page_shows_its_sessions(busy_space, admin_client):
    townhall = Conference.objects.get(name="townhall")
    url = reverse("admin:rooms_conference_change", args=[townhall.pk])
    html = admin_client.get(url).content.decode()
    assert "Live now: 3 members" in html
    assert f"?conference__id__exact={townhall.pk}" in html


def test_sessions_list_filters_by_room_status_and_date(busy_space, admin_client):
    url = reverse("admin:rooms_roomsession_changelist")
    every = admin_client.get(url).context["cl"].result_list
    assert len(every) == 3
    live = admin_client.get(url, {"status": "in-progress"}).context["cl"].result_list
    assert sorted(s.room_name for s in live) == ["alpha", "townhall"]
    alpha = Room.objects.get(name="alpha")
    by_room = admin_client.get(url, {"room__id__exact": alpha.pk}).context["cl"].result_list
    assert [s.room_name for s in by_room] == ["alpha"]
    by_name = admin_client.get(url, {"q": "beta"}).context["cl"].result_list
    assert [s.room_name for s in by_name] == ["beta"]
    today = RoomSession.objects.first().start_time
    by_day = admin_client.get(
        url,
        {
            "start_time__year": today.year,
            "start_time__month": today.month,
            "start_time__day": today.day,
        },
    )
    assert len(by_day.context["cl"].result_list) == 3


def test_session_page_lists_members_and_links_the_event_timeline_fetched_now(
    busy_space, sandbox, admin_client
):
    session = RoomSession.objects.get(remote_id=busy_space["conf_live"]["id"])
    sandbox.clear_requests()
    page = admin_client.get(reverse("admin:rooms_roomsession_change", args=[session.pk]))
    html = page.content.decode()
    assert member_names(html) == ["x", "y", "z"]
    assert "Live now: 3 members" in html
    events_url = reverse("admin:rooms_roomsession_events", args=[session.pk])
    assert events_url in html
    assert sandbox.requests == []  # the page itself asks SignalWire nothing

    # With a query string (admin runs such pages in a savepoint) the timeline still loads.
    timeline = admin_client.get(events_url, {"_changelist_filters": "status=in-progress"})
    html = timeline.content.decode()
    assert "room.started" in html and html.count("member.joined") == 3
    assert [e["path"] for e in sandbox.requests] == [
        f"/api/video/room_sessions/{session.remote_id}/events"
    ]


def test_event_timeline_says_so_when_signalwire_cannot_answer(busy_space, sandbox, admin_client):
    session = RoomSession.objects.get(remote_id=busy_space["past"]["id"])
    sandbox.inject_fault(503)
    response = admin_client.get(reverse("admin:rooms_roomsession_events", args=[session.pk]))
    assert response.status_code == 200
    assert "SignalWire could not be asked now" in response.content.decode()
    page = admin_client.get(reverse("admin:rooms_roomsession_change", args=[session.pk]))
    assert member_names(page.content.decode()) == ["old"]


def _stored_sessions(count: int, **fields) -> list[RoomSession]:
    """Store `count` past sessions an hour apart, newest last, as the sync would."""
    start = timezone.now() - timedelta(hours=count)
    RoomSession.objects.bulk_create(
        RoomSession(
            remote_id=f"session-{i:03d}",
            room_name=f"room-{i % 3}",
            status="completed",
            start_time=start + timedelta(hours=i),
            **fields,
        )
        for i in range(count)
    )
    return list(RoomSession.objects.order_by("-start_time", "-id"))


def test_sessions_list_says_more_than_its_cap_and_still_serves_every_page(
    admin_client, monkeypatch
):
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 5)
    monkeypatch.setattr(RoomSessionAdmin, "list_per_page", 2)
    newest_first = _stored_sessions(12)
    url = reverse("admin:rooms_roomsession_changelist")

    first = admin_client.get(url)
    assert "More than 5 room sessions" in first.content.decode()
    assert "12 room sessions" not in first.content.decode()
    for number in range(1, 7):
        page = admin_client.get(url, {"p": number})
        shown = [s.remote_id for s in page.context["cl"].result_list]
        expected = newest_first[(number - 1) * 2 : number * 2]
        assert shown == [s.remote_id for s in expected], number
    past_the_end = admin_client.get(url, {"p": 7})
    assert past_the_end.status_code == 400  # the portal's page for a list it cannot show


def test_sessions_list_below_its_cap_counts_exactly(admin_client):
    _stored_sessions(7)
    html = admin_client.get(reverse("admin:rooms_roomsession_changelist")).content.decode()
    assert "7 room sessions" in html and "More than" not in html


def test_sessions_search_finds_rooms_by_part_of_their_display_name_whole_names_and_ids(
    sandbox, sandbox_server, admin_client
):
    sandbox.create_conference({"name": "allhands", "display_name": "Quarterly all hands"})
    sandbox.create_room({"name": "standup"})
    sync.sync_conferences()
    sync.sync_rooms()
    made = {}
    for name in ("allhands", "standup", "pop-up-chat"):  # the last: made on the fly
        made[name] = control(sandbox_server, "sessions", {"room_name": name, "members": ["a"]})
        control(sandbox_server, f"sessions/{made[name]['id']}/end")
    sessions.sessions_sync_history()
    url = reverse("admin:rooms_roomsession_changelist")

    def found(term: str) -> list[str]:
        listed = admin_client.get(url, {"q": term}).context["cl"].result_list
        return sorted(s.room_name for s in listed)

    assert found("quarterly") == ["allhands"]
    assert found("stand") == ["standup"]
    assert found("pop-up-chat") == ["pop-up-chat"]
    assert found(made["standup"]["id"]) == ["standup"]
    assert found("nothing-like-it") == []
    assert "whole SignalWire ID" in admin_client.get(url).content.decode()


def test_status_filter_offers_every_status_stored_even_one_the_portal_does_not_know(
    admin_client,
):
    _stored_sessions(3)
    RoomSession.objects.filter(remote_id="session-001").update(status="in-progress")
    RoomSession.objects.filter(remote_id="session-002").update(status="archived-new-word")
    url = reverse("admin:rooms_roomsession_changelist")

    html = admin_client.get(url).content.decode()
    for status in ("completed", "in-progress", "archived-new-word"):
        assert f'href="?status={status}"' in html, status
    chosen = admin_client.get(url, {"status": "archived-new-word"})
    assert [s.remote_id for s in chosen.context["cl"].result_list] == ["session-002"]
