"""The usage page, its charts and CSV, and the operator dashboard on the admin index."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rooms.models import Conference, Room, RoomSession, SyncRun, SyncState, VideoLog
from rooms.selectors import usage
from rooms.services.usage import rebuild_usage
from rooms.sync import sessions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def make_sessions(count: int, *, start_days_ago: int = 0) -> list[RoomSession]:
    """Completed sessions spread over the last days, in a few rooms."""
    now = timezone.now()
    rows = [
        RoomSession(
            remote_id=f"s-{start_days_ago}-{index}",
            room_name=f"room-{index % 4}",
            status="completed",
            start_time=now - timedelta(days=start_days_ago + index % 40, minutes=index),
            duration=600 + index,
            member_seconds=60 * (index % 7 + 1),
            member_count=index % 7 + 1,
            cost_in_dollars=Decimal("0.0035") * (index % 7 + 1),
        )
        for index in range(count)
    ]
    created = RoomSession.objects.bulk_create(rows)
    # Written straight to the table, as an upgrade finds them: the rollup is rebuilt.
    rebuild_usage()
    return created


def expected(days: int) -> tuple[int, float, Decimal]:
    start = timezone.localdate() - timedelta(days=days - 1)
    rows = [s for s in RoomSession.objects.all() if timezone.localdate(s.start_time) >= start]
    return (
        len(rows),
        round(sum(s.member_seconds for s in rows) / 60, 1),
        sum((s.cost_in_dollars for s in rows), Decimal("0")),
    )


def figure(html: str, name: str) -> str:
    return re.search(rf'id="total-{name}">([^<]*)<', html).group(1)


@pytest.mark.parametrize("days", [30, 90])
def test_usage_totals_equal_the_sums_of_the_mirrored_sessions(admin_client, days):
    make_sessions(120)
    make_sessions(30, start_days_ago=60)

    html = admin_client.get(reverse("admin:rooms_usage"), {"days": days}).content.decode()

    sessions_, minutes, cost = expected(days)
    assert int(figure(html, "sessions")) == sessions_
    assert float(figure(html, "minutes")) == minutes
    assert Decimal(figure(html, "cost")) == cost
    assert (days == 90) == (sessions_ == 150)


def test_usage_page_from_a_synced_sandbox_history(sandbox, admin_client):
    sandbox.seed(rooms=5, sessions=80)
    sessions.sessions_sync_history()
    assert RoomSession.objects.count() == 80

    html = admin_client.get(reverse("admin:rooms_usage"), {"days": 90}).content.decode()

    sessions_, minutes, cost = expected(90)
    assert sessions_ > 0 and minutes > 0
    assert int(figure(html, "sessions")) == sessions_
    assert float(figure(html, "minutes")) == minutes
    assert Decimal(figure(html, "cost")) == cost


def test_csv_has_every_day_and_room_with_the_same_figures(admin_client):
    make_sessions(50)
    response = admin_client.get(reverse("admin:rooms_usage_csv"), {"days": 30})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    days = [r for r in rows if r["kind"] == "day"]
    rooms = [r for r in rows if r["kind"] == "room"]
    assert len(days) == 30
    sessions_, minutes, cost = expected(30)
    assert sum(int(r["sessions"]) for r in days) == sessions_
    assert sum(Decimal(r["cost_in_dollars"]) for r in days) == cost
    assert sum(int(r["sessions"]) for r in rooms) == sessions_
    assert {r["day_or_room"] for r in rooms} == {f"room-{i}" for i in range(4)}


@pytest.mark.parametrize("today", [date(2026, 3, 7), date(2026, 3, 25), date(2024, 3, 1)])
def test_usage_per_room_and_per_day_equal_the_sessions_whatever_day_the_period_starts(today):
    # A session a day for 400 days in five rooms, and a video log every third day: each
    # period starts on a month's first day, early in a month or late in one.
    noon = datetime.combine(today, time(12), tzinfo=UTC)
    made = []
    for back in range(400):
        day = today - timedelta(days=back)
        made.append(
            RoomSession(
                remote_id=f"s{back}", room_name=f"room-{back % 5}", status="completed",
                start_time=noon - timedelta(days=back), member_seconds=60 * (back % 11 + 1),
                cost_in_dollars=Decimal("0.0035") * (back % 7 + 1),
            )
        )
        if back % 3 == 0:
            VideoLog.objects.create(
                remote_id=f"l{back}", room_name=f"room-{back % 5}",
                started_at=noon - timedelta(days=back), charge=Decimal("0.0300"),
            )
        assert made[-1].start_time.date() == day
    RoomSession.objects.bulk_create(made)
    rebuild_usage()

    for days in usage.PERIODS:
        first = today - timedelta(days=days - 1)
        within = [s for s in made if s.start_time.date() >= first]
        logs = [v for v in VideoLog.objects.all() if v.started_at.date() >= first]
        rooms = []
        for name in {s.room_name for s in within}:
            mine = [s for s in within if s.room_name == name]
            billed = [v.charge for v in logs if v.room_name == name]
            rooms.append(
                usage.Usage(
                    name, len(mine), sum(s.member_seconds for s in mine),
                    sum((s.cost_in_dollars for s in mine), Decimal("0")),
                    sum(billed, Decimal("0")), len(billed),
                )
            )
        rooms.sort(key=lambda u: (-u.seconds, u.label))
        assert usage.usage_by_room(days=days, today=today, limit=None) == rooms, days
        assert usage.usage_by_room(days=days, today=today, limit=2) == rooms[:2], days
        by_day = usage.usage_by_day(days=days, today=today)
        assert [u.label for u in by_day] == [
            (first + timedelta(days=n)).isoformat() for n in range(days)
        ]
        assert usage.usage_total(by_day) == usage.Usage(
            "total", *[getattr(usage.usage_total(rooms), f) for f in FIELDS]
        ), days


FIELDS = ("sessions", "seconds", "cost", "billed", "logs")


def test_a_room_name_that_looks_like_a_formula_is_escaped_in_csv(admin_client):
    RoomSession.objects.create(
        remote_id="f", room_name="=cmd", status="completed", start_time=timezone.now()
    )
    rebuild_usage()
    text = admin_client.get(reverse("admin:rooms_usage_csv")).content.decode()
    assert "room,'=cmd," in text


@pytest.mark.parametrize("name", ["\tcmd", "\rcmd", "+1+cmd", "-1-cmd", "@SUM(A1)"])
def test_every_room_name_a_spreadsheet_reads_as_a_formula_is_prefixed_in_csv(
    admin_client, name
):
    RoomSession.objects.create(
        remote_id="f", room_name=name, status="completed", start_time=timezone.now()
    )
    rebuild_usage()
    text = admin_client.get(reverse("admin:rooms_usage_csv")).content.decode()
    rooms = [r for r in csv.reader(io.StringIO(text)) if r[0] == "room"]
    assert [r[1] for r in rooms] == [f"'{name}"]


def test_usage_page_queries_do_not_grow_with_sessions(admin_client):
    make_sessions(5)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse("admin:rooms_usage"))
    make_sessions(400, start_days_ago=1)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(reverse("admin:rooms_usage"))
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.parametrize("chart", ["minutes", "sessions", "cost", "rooms"])
def test_charts_are_svg_images_without_scripts(admin_client, chart):
    make_sessions(20)
    response = admin_client.get(reverse("admin:rooms_usage_chart", args=[chart]), {"days": 90})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    body = response.content.decode()
    assert body.startswith("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    assert "<script" not in body and "script-src 'none'" in response["Content-Security-Policy"]


def test_an_unknown_chart_is_404_and_staff_without_permission_are_refused(client, admin_client):
    assert admin_client.get(reverse("admin:rooms_usage_chart", args=["nope"])).status_code == 404
    from django.contrib.auth import get_user_model

    clerk = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    assert client.get(reverse("admin:rooms_usage")).status_code == 403
    assert client.get(reverse("admin:rooms_usage_csv")).status_code == 403


def test_admin_index_is_an_operator_dashboard(admin_client):
    now = timezone.now()
    RoomSession.objects.bulk_create(
        [
            RoomSession(
                remote_id="live-1",
                room_name="a",
                status="in-progress",
                members_now=3,
                start_time=now,
            ),
            RoomSession(
                remote_id="live-2",
                room_name="b",
                status="in-progress",
                members_now=2,
                start_time=now,
            ),
            RoomSession(
                remote_id="done",
                room_name="a",
                status="completed",
                member_seconds=600,
                start_time=now,
            ),
        ]
    )
    Room.objects.bulk_create(
        [
            Room(name="waiting", sync_state=SyncState.PENDING_PUSH),
            Room(name="refused", sync_state=SyncState.PUSH_FAILED),
        ]
    )
    rebuild_usage()
    Conference.objects.bulk_create([Conference(name="c", sync_state=SyncState.PENDING_DELETE)])
    SyncRun.objects.create(kind=SyncRun.Kind.LIVE_SESSIONS, outcome=SyncRun.Outcome.SUCCEEDED)

    html = admin_client.get(reverse("admin:index")).content.decode()

    assert re.search(r'id="live-sessions">2 sessions<', html)
    assert "5 members" in html
    assert re.search(r'id="minutes-today">10.0 minutes<', html)
    assert "Rooms: 1 pending, 1 failed" in html and "Conferences: 1 pending, 0 failed" in html
    assert "Live room sessions: Succeeded" in html and "Room sessions (history): never" in html
    assert reverse("admin:rooms_usage") in html
