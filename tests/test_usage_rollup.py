"""The daily usage rollup: kept by the syncs, equal to the raw rows; billed cost; retention."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rooms import sync
from rooms.models import (
    ActionRun,
    RoomSession,
    SessionMember,
    Space,
    UsageDay,
    UsageDayTotal,
    UsageMonth,
    VideoLog,
    environment_space,
)
from rooms.services import sessions as session_retention
from rooms.services.usage import (
    log_key,
    rebuild_usage,
    refresh_billed_usage,
    refresh_session_usage,
    session_key,
)
from rooms.sync import sessions
from rooms.tasks.sessions import apply_session_retention

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_redis(redis_client):
    redis_client.flushdb()


def control(server, path: str, body: dict | None = None) -> dict:
    """Drive the sandbox through its loopback control API, over HTTP."""
    answer = requests.post(f"{server.url}/__sandbox__/{path}", json=body or {}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def recomputed() -> dict:
    """The rollup worked out again in Python from every mirrored session and log."""
    figures: dict = defaultdict(lambda: [0, 0, Decimal("0"), 0, Decimal("0")])
    for s in RoomSession.objects.all():
        if s.start_time is not None:
            row = figures[(s.start_time.astimezone(UTC).date(), s.room_name)]
            row[0] += 1
            row[1] += s.member_seconds
            row[2] += s.cost_in_dollars or 0
    for log in VideoLog.objects.all():
        moment = log.started_at or log.remote_created_at
        if moment is not None:
            row = figures[(moment.astimezone(UTC).date(), log.room_name)]
            row[3] += 1
            row[4] += log.charge or 0
    return {key: tuple(value) for key, value in figures.items()}


def rollup() -> dict:
    """The rollup as stored (rows left with nothing in them are not figures)."""
    return {
        (u.day, u.room_name): (
            u.sessions, u.member_seconds, u.estimated_cost, u.logs, u.billed_cost
        )
        for u in UsageDay.objects.all()
        if u.sessions or u.logs
    }


def summed(figures: dict, key) -> dict:
    """Figures per day and room added up under another key (the day; the month and room)."""
    totals: dict = defaultdict(lambda: [0, 0, Decimal("0"), 0, Decimal("0")])
    for (day, name), row in figures.items():
        total = totals[key(day, name)]
        for index, value in enumerate(row):
            total[index] += value
    return {k: tuple(v) for k, v in totals.items()}


def stored(model, key) -> dict:
    """A totals level as stored (rows left with nothing in them are not figures)."""
    return {
        key(u): (u.sessions, u.member_seconds, u.estimated_cost, u.logs, u.billed_cost)
        for u in model.objects.all()
        if u.sessions or u.logs
    }


def assert_rollup_is_current() -> None:
    expected = recomputed()
    assert expected, "nothing mirrored: the comparison would prove nothing"
    assert rollup() == expected
    # The totals the usage page reads: per day, and per month and room name.
    assert stored(UsageDayTotal, lambda u: u.day) == summed(expected, lambda day, _: day)
    assert stored(UsageMonth, lambda u: (u.month, u.room_name)) == summed(
        expected, lambda day, name: (day.replace(day=1), name)
    )


def test_the_rollup_equals_a_recomputation_after_syncs_that_add_change_and_end_sessions(
    sandbox, sandbox_server
):
    sandbox.seed(rooms=6, seed=5)
    sandbox.seed(sessions=240, seed=5)

    sessions.sessions_sync_history(page_size=50)
    assert RoomSession.objects.count() == 240
    assert_rollup_is_current()
    sync.logs_sync(page_size=60)
    assert VideoLog.objects.count() > 0
    assert_rollup_is_current()

    # Two meetings start (added live), members come and go (changed), one ends.
    room = next(iter(sandbox.rooms.values()))["name"]
    first = control(sandbox_server, "sessions", {"room_name": room, "members": ["ann", "bo"]})
    control(sandbox_server, "sessions", {"room_name": "made-on-the-fly", "members": ["x"]})
    sessions.sessions_refresh_live()
    assert_rollup_is_current()
    control(sandbox_server, "clock", {"advance": 600})
    control(sandbox_server, f"sessions/{first['id']}/join", {"name": "cy"})
    control(sandbox_server, f"sessions/{first['id']}/leave", {"name": "ann"})
    sessions.sessions_refresh_live()
    assert_rollup_is_current()
    control(sandbox_server, "clock", {"advance": 600})
    control(sandbox_server, f"sessions/{first['id']}/end")
    sessions.sessions_refresh_live()
    ended = RoomSession.objects.get(remote_id=first["id"])
    assert ended.status == "completed" and ended.member_seconds > 0
    assert_rollup_is_current()

    # Its log arrives; the history sync meets the ended session again.
    sync.logs_sync()
    sessions.sessions_sync_history()
    assert VideoLog.objects.filter(remote_session_id=first["id"]).exists()
    assert_rollup_is_current()
    today = UsageDay.objects.get(day=ended.start_time.astimezone(UTC).date(), room_name=room)
    assert today.logs >= 1 and today.billed_cost > 0

    # A rebuild from the mirrored rows gives the same figures, totals included: it
    # rewrites totals that went wrong and removes ones nothing is left under.
    before = rollup()
    UsageDayTotal.objects.all().delete()
    UsageMonth.objects.filter(room_name=room).update(sessions=99, member_seconds=1)
    UsageMonth.objects.create(month=ended.start_time.date().replace(day=1), room_name="gone")
    UsageMonth.objects.create(month=date(2001, 1, 1), room_name=room, sessions=3)
    call_command("rebuild_usage", stdout=io.StringIO())
    assert rollup() == before
    assert_rollup_is_current()
    assert not UsageMonth.objects.filter(room_name="gone").exists()


def test_the_rollup_upkeep_costs_the_same_queries_for_a_page_of_ten_or_of_two_hundred(
    sandbox
):
    def usage_queries(count: int) -> int:
        sandbox.reset()
        RoomSession.objects.all().delete()
        for level in (UsageDay, UsageDayTotal, UsageMonth):
            level.objects.all().delete()
        sandbox.seed(rooms=4, seed=count)
        sandbox.seed(sessions=count, seed=count)
        with CaptureQueriesContext(connection) as seen:
            sessions.sessions_sync_history(page_size=500)
        assert RoomSession.objects.count() == count
        assert_rollup_is_current()
        sqls = [q["sql"] for q in seen.captured_queries]
        return sum(
            "rooms_usage" in sql or ("rooms_roomsession" in sql and "GROUP BY" in sql)
            for sql in sqls
        )

    # Per page: one grouped read and one upsert of the day-and-room rows (SQLite takes an
    # upsert's rows a few hundred bound values at a time, so two hundred sessions' keys
    # may need a second one), then one upsert per totals level that reads its own sums.
    assert usage_queries(10) == 4
    assert usage_queries(200) <= 5


# --- billed cost beside the estimate -------------------------------------------------------


def session_and_log(name: str, day_offset: int, cost: str, charge: str | None) -> None:
    moment = timezone.now().replace(hour=12, minute=0) - timedelta(days=day_offset)
    RoomSession.objects.create(
        remote_id=f"s-{name}-{day_offset}", room_name=name, status="completed",
        start_time=moment, member_seconds=600, cost_in_dollars=Decimal(cost),
    )
    if charge is not None:
        VideoLog.objects.create(
            remote_id=f"l-{name}-{day_offset}", room_name=name, started_at=moment,
            remote_created_at=moment + timedelta(minutes=30), charge=Decimal(charge),
        )


def test_usage_page_and_csv_show_billed_cost_beside_the_estimate_and_mark_a_gap_over_1pct(
    admin_client,
):
    session_and_log("alpha", 3, "1.0000", "1.0200")  # 2% more billed: marked
    session_and_log("beta", 2, "1.0000", "1.0050")  # 0.5%: not marked
    session_and_log("gamma", 1, "1.0000", None)  # no log yet: nothing to compare
    rebuild_usage()

    html = admin_client.get(reverse("admin:rooms_usage"), {"days": 7}).content.decode()

    days = re.search(r'id="usage-days">(.*?)</table>', html, re.S).group(1)
    rows = {
        m.group(2): m.group(0)
        for m in re.finditer(r"<tr( class=\"sw-differs\")?><td>([0-9-]{10})</td>.*?</tr>", days)
    }
    today = timezone.now().date()
    alpha, beta, gamma = (str(today - timedelta(days=n)) for n in (3, 2, 1))
    assert "1.0200" in rows[alpha] and "differs" in rows[alpha]
    assert "1.0050" in rows[beta] and "differs" not in rows[beta]
    assert "differs" not in rows[gamma] and "–" in rows[gamma]
    assert re.search(r'id="total-billed">2.0250<', html)
    assert re.search(r'id="total-cost">3.0000<', html)
    by_room = re.search(r'id="usage-rooms">(.*?)</table>', html, re.S).group(1)
    assert re.search(r"alpha</a></td><td>1</td><td>10.0</td><td>1.0000</td><td>1.0200 ", by_room)

    text = admin_client.get(reverse("admin:rooms_usage_csv"), {"days": 7}).content.decode()
    table = list(csv.DictReader(io.StringIO(text)))
    day = {r["day_or_room"]: r for r in table if r["kind"] == "day"}
    assert (day[alpha]["billed_cost_in_dollars"], day[alpha]["billed_differs_over_1pct"]) == (
        "1.0200", "yes"
    )
    assert day[beta]["billed_differs_over_1pct"] == "no"
    assert day[gamma]["billed_cost_in_dollars"] == ""
    room = {r["day_or_room"]: r for r in table if r["kind"] == "room"}
    assert room["alpha"]["billed_cost_in_dollars"] == "1.0200"
    assert room["alpha"]["cost_in_dollars"] == "1.0000"


@pytest.mark.parametrize("days", [7, 365])
def test_usage_offers_7_and_365_days(admin_client, days):
    session_and_log("alpha", 200, "1.0000", "1.0000")
    rebuild_usage()
    html = admin_client.get(reverse("admin:rooms_usage"), {"days": days}).content.decode()
    assert f"<strong>{days} days</strong>" in html
    assert int(re.search(r'id="total-sessions">(\d+)<', html).group(1)) == (days == 365)


def test_dashboard_today_shows_billed_cost_once_logs_for_today_exist(
    sandbox, sandbox_server, admin_client
):
    started = control(sandbox_server, "sessions", {"room_name": "daily", "members": ["ann"]})
    control(sandbox_server, "clock", {"advance": 120})
    control(sandbox_server, f"sessions/{started['id']}/end")
    sessions.sessions_sync_history()

    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="billed-today"' not in html and "estimated" in html

    sync.logs_sync()
    (log,) = VideoLog.objects.all()
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert re.search(rf'id="billed-today">\${log.charge} billed<', html)


# --- session history retention ---------------------------------------------------------------


def old_and_new_history(*, old: int = 25, new: int = 5) -> None:
    now = timezone.now()
    for index in range(old + new):
        age = 40 + index % 5 if index < old else index % 3
        session = RoomSession.objects.create(
            remote_id=f"s{index}", room_name=f"room-{index % 3}", status="completed",
            start_time=now - timedelta(days=age), member_seconds=120, member_count=2,
            cost_in_dollars=Decimal("0.0100"),
        )
        SessionMember.objects.bulk_create(
            [SessionMember(session=session, remote_id=f"m{index}-{n}", name="x") for n in (0, 1)]
        )
    rebuild_usage()


def usage_figures(admin_client) -> tuple[str, str, str]:
    html = admin_client.get(reverse("admin:rooms_usage"), {"days": 90}).content.decode()
    return tuple(  # type: ignore[return-value]
        re.search(rf'id="total-{name}">([^<]*)<', html).group(1)
        for name in ("sessions", "minutes", "cost")
    )


def test_a_dry_run_counts_what_retention_would_remove_and_changes_nothing():
    old_and_new_history()
    out = io.StringIO()
    call_command("apply_session_retention", "--dry-run", "--days", "30", stdout=out)
    assert "25 session(s)" in out.getvalue() and "50 member row(s)" in out.getvalue()
    assert "Nothing was changed" in out.getvalue()
    assert RoomSession.objects.count() == 30 and SessionMember.objects.count() == 60
    assert not ActionRun.objects.exists()


def test_retention_removes_old_sessions_in_batches_keeps_usage_and_records_a_run(
    admin_client, settings
):
    old_and_new_history()
    before = usage_figures(admin_client)
    assert before[0] == "30"

    result = session_retention.sessions_apply_retention(days=30, batch_size=10)

    assert (result.sessions, result.members, result.batches) == (25, 50, 3)
    assert RoomSession.objects.count() == 5 and SessionMember.objects.count() == 10
    assert not RoomSession.objects.filter(start_time__lt=timezone.now() - timedelta(days=30))
    run = ActionRun.objects.get()
    assert run.action == ActionRun.Action.SESSION_RETENTION
    assert run.state == ActionRun.State.SUCCEEDED
    assert run.counts == {"sessions": 25, "members": 50, "batches": 3}
    assert usage_figures(admin_client) == before

    # A rebuild leaves the days retention emptied as they were.
    settings.SESSION_RETENTION_DAYS = 30
    out = io.StringIO()
    call_command("rebuild_usage", stdout=out)
    assert "left as they are" in out.getvalue()
    assert usage_figures(admin_client) == before


def test_the_daily_task_applies_the_setting_and_zero_keeps_everything(settings):
    old_and_new_history(old=4, new=2)
    settings.SESSION_RETENTION_DAYS = 0
    assert apply_session_retention() == "retention off"
    assert RoomSession.objects.count() == 6
    settings.SESSION_RETENTION_DAYS = 30
    assert apply_session_retention() == "4 sessions removed"
    assert RoomSession.objects.count() == 2
    assert "session-retention" in settings.CELERY_BEAT_SCHEDULE


@pytest.mark.parametrize("value", [-1, 36501])
def test_check_refuses_a_negative_or_huge_session_retention(settings, value):
    settings.SESSION_RETENTION_DAYS = value
    with pytest.raises(SystemCheckError, match="rooms.E008"):
        call_command("check")
    with pytest.raises(CommandError):
        call_command("apply_session_retention", "--days", str(value))


# --- one rollup per Space --------------------------------------------------------------------


def test_sessions_of_one_room_name_in_two_spaces_keep_separate_figures():
    other = Space.objects.create(
        name="Other", space_url="https://other.example.com", project_id="other", token_env="X"
    )
    moment = timezone.now().replace(hour=12, minute=0) - timedelta(days=1)
    rows = []
    for space, seconds, cost, charge in (
        (environment_space(), 600, "1.0000", "1.0100"), (other, 1200, "2.0000", "2.0200")
    ):
        # The same remote ids too: each Space numbers its own objects.
        session = RoomSession.objects.create(
            space=space, remote_id="s-lobby", room_name="lobby", status="completed",
            start_time=moment, member_seconds=seconds, cost_in_dollars=Decimal(cost),
        )
        log = VideoLog.objects.create(
            space=space, remote_id="l-lobby", room_name="lobby", started_at=moment,
            remote_created_at=moment, charge=Decimal(charge),
        )
        rows.append((session, log))

    with transaction.atomic():
        refresh_session_usage([session_key(session) for session, _ in rows])
        refresh_billed_usage([log_key(log) for _, log in rows])

    def figures() -> dict:
        return {
            u.space.name: (u.room_name, u.sessions, u.member_seconds, u.estimated_cost, u.logs,
                           u.billed_cost)
            for u in UsageDay.objects.select_related("space")
        }

    expected = {
        environment_space().name: ("lobby", 1, 600, Decimal("1.0000"), 1, Decimal("1.0100")),
        "Other": ("lobby", 1, 1200, Decimal("2.0000"), 1, Decimal("2.0200")),
    }
    assert figures() == expected

    UsageDay.objects.all().delete()
    rebuild_usage()
    assert figures() == expected

    # Retention removed the other Space's sessions of that day: a rebuild recomputes the
    # environment's Space's day and leaves the other Space's figures as the rollup had them.
    RoomSession.objects.filter(space=other).delete()
    VideoLog.objects.filter(space=other).delete()
    rebuild_usage()
    assert figures() == expected


# --- the migration that adds the totals fills them from the daily rows -----------------------


@pytest.mark.django_db(transaction=True)
def test_upgrading_fills_the_day_and_month_totals_from_the_daily_rows_already_kept():
    from django.db.migrations.executor import MigrationExecutor

    def migrate(target):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([target])
        return executor.loader.project_state([target]).apps

    leaf = MigrationExecutor(connection).loader.graph.leaf_nodes("rooms")[0]
    try:
        old = migrate(("rooms", "0022_alert_delivery_claim")).get_model("rooms", "UsageDay")
        for day, name, n, seconds, cost, logs, billed in [
            (date(2026, 1, 31), "alpha", 2, 600, "0.3000", 1, "0.2500"),
            (date(2026, 2, 1), "alpha", 1, 60, "0.0100", 0, "0"),
            (date(2026, 2, 1), "beta", 3, 120, "0.0200", 2, "0.0300"),
            (date(2026, 2, 20), "beta", 1, 30, "0.0050", 0, "0"),
            (date(2026, 2, 21), "gone", 0, 0, "0", 0, "0"),  # emptied: not a figure
        ]:
            old.objects.create(
                day=day, room_name=name, sessions=n, member_seconds=seconds,
                estimated_cost=Decimal(cost), logs=logs, billed_cost=Decimal(billed),
            )
        new = migrate(("rooms", "0023_usage_totals"))

        def figures(model, *key):
            return {
                tuple(getattr(row, k) for k in key): (
                    row.sessions, row.member_seconds, row.estimated_cost, row.logs,
                    row.billed_cost,
                )
                for row in new.get_model("rooms", model).objects.all()
            }

        d = Decimal
        assert figures("UsageDayTotal", "day") == {
            (date(2026, 1, 31),): (2, 600, d("0.3000"), 1, d("0.2500")),
            (date(2026, 2, 1),): (4, 180, d("0.0300"), 2, d("0.0300")),
            (date(2026, 2, 20),): (1, 30, d("0.0050"), 0, d("0")),
        }
        assert figures("UsageMonth", "month", "room_name") == {
            (date(2026, 1, 1), "alpha"): (2, 600, d("0.3000"), 1, d("0.2500")),
            (date(2026, 2, 1), "alpha"): (1, 60, d("0.0100"), 0, d("0")),
            (date(2026, 2, 1), "beta"): (4, 150, d("0.0250"), 2, d("0.0300")),
        }
    finally:
        migrate(leaf)
