"""Sandbox video logs: one billing record per ended session, filtered by when it was made."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from sandbox import SandboxSpace
from tests.fixtures_sandbox import Api, errors_by_attribute

pytestmark = pytest.mark.usefixtures("sandbox_spec_checked")
UNTIL = datetime(2026, 6, 1, tzinfo=UTC)


def walk(api: Api, url: str) -> list[dict]:
    """Every item of a list, following links.next."""
    items = []
    while url:
        page = api.get(url).json()
        items += page["data"]
        url = page["links"].get("next")
    return items


def test_ending_a_session_writes_its_log(api, sandbox):
    api.post("/api/video/rooms", json={"name": "billing"})
    start = requests.post(
        f"{api.base}/__sandbox__/sessions",
        json={"room_name": "billing", "members": ["Ada", "Grace"]},
        timeout=10,
    ).json()
    assert api.get("/api/video/logs").json()["data"] == []
    requests.post(f"{api.base}/__sandbox__/sessions/{start['id']}/end", timeout=10)
    (log,) = api.get("/api/video/logs").json()["data"]
    session = api.get("/api/video/room_sessions?room_name=billing").json()["data"][0]
    assert log["url"] == f"{api.base}/api/video/room_sessions/{start['id']}"
    assert log["room_name"] == "billing" and log["status"] == "completed"
    assert log["source"] == "realtime_api" and log["type"] == "video_room_session"
    assert (log["started_at"], log["ended_at"]) == (session["start_time"], session["end_time"])
    assert log["charge"] == session["cost_in_dollars"] == 2 * 0.0035
    assert log["charge_details"] == [
        {"description": "Video session member minutes", "charge": log["charge"]}
    ]
    assert api.get(f"/api/video/logs/{log['id']}").json() == log
    assert api.get("/api/video/logs/4d7f1c9e-2b3a-4c5d-8e9f-0a1b2c3d4e5f").status_code == 404


def test_created_filters_on_seeded_history(api, sandbox):
    sandbox.seed(rooms=20, seed=8)
    sandbox.seed(sessions=400, seed=8, until=UNTIL)
    logs = walk(api, "/api/video/logs?page_size=1000")
    assert len(logs) == 400 - sum(1 for log in sandbox.logs.values() if log["discarded_at"])
    assert [log["created_at"] for log in logs] == sorted(
        (log["created_at"] for log in logs), reverse=True
    )
    day = logs[len(logs) // 2]["created_at"][:10]
    on_day = walk(api, f"/api/video/logs?created_on={day}&page_size=7")
    assert on_day == [log for log in logs if log["created_at"][:10] == day] and on_day
    middle = logs[len(logs) // 3]["created_at"]
    before = walk(api, f"/api/video/logs?created_before={middle}&page_size=50")
    after = walk(api, f"/api/video/logs?created_after={middle}&page_size=50")
    assert before == [log for log in logs if log["created_at"] < middle]
    assert after == [log for log in logs if log["created_at"] > middle]
    both = walk(api, f"/api/video/logs?created_after={day}&created_before={middle}")
    assert both == [log for log in logs if f"{day}T" < log["created_at"] < middle]
    response = api.get("/api/video/logs?created_after=yesterday&created_on=2026-02-30")
    assert errors_by_attribute(response) == {
        "created_after": "Created after must be a valid date or ISO 8601 datetime",
        "created_on": "Created on must be a valid date or ISO 8601 datetime",
    }


def test_include_deleted_shows_discarded_logs_by_their_dates_only(api, sandbox):
    sandbox.seed(rooms=10, seed=2)
    sandbox.seed(sessions=600, seed=2, until=UNTIL)
    discarded = {i for i, log in sandbox.logs.items() if log["discarded_at"]}
    assert discarded
    everything = walk(api, "/api/video/logs?include_deleted=true&page_size=1000")
    assert len(everything) == 600
    shown = [log for log in everything if log["id"] in discarded]
    assert shown and all(set(log) == {"id", "discarded_at", "created_at"} for log in shown)
    log_id = next(iter(discarded))
    assert set(api.get(f"/api/video/logs/{log_id}").json()) == {"id", "discarded_at", "created_at"}
    response = api.get("/api/video/logs?include_deleted=yes")
    assert errors_by_attribute(response) == {"include_deleted": "Include deleted must be a boolean"}


def test_a_filtered_page_of_many_logs_holds_only_matching_logs():
    # How fast this answers is measured by bench/sandbox_bench.py, not asserted here.
    space = SandboxSpace()
    space.seed(rooms=100, seed=1)
    space.seed(sessions=20_000, seed=1, until=UNTIL)
    base = "http://x/api/video/logs"
    page = space.list_logs(base, "page_size=1000&created_before=2026-03-15", "http://x")
    assert len(page["data"]) == 1000
    assert all(log["created_at"] < "2026-03-15" for log in page["data"])
    assert page["links"].get("next")
