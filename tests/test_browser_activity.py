"""Activity pages in headless Chromium: the dashboard, live badges, the usage charts."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from rooms import sync
from rooms.models import RoomSession
from rooms.sync import sessions
from tests.browser_helpers import admin_url, login, make_superuser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_live_badge_and_usage_charts_render(
    sandbox, sandbox_server, live_server, page, screenshot, redis_client
):
    redis_client.flushdb()
    sandbox.seed(rooms=6, sessions=120)
    sync.sync_rooms()
    live_room = max(sandbox.rooms.values(), key=lambda r: (r["max_members"], r["name"]))["name"]
    requests.post(
        f"{sandbox_server.url}/__sandbox__/sessions",
        json={"room_name": live_room, "members": ["ann", "bo", "cy"]},
        timeout=5,
    ).raise_for_status()
    sessions.sessions_refresh_live()
    sessions.sessions_sync_history()
    make_superuser("boss")

    login(page, live_server.url, "boss")
    expect(page.locator("#live-sessions")).to_have_text("1 session")
    screenshot("dashboard")

    page.goto(admin_url(live_server.url, "rooms_room_changelist") + "?activity=live")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Live now: 3 members")
    rows.first.locator("th a").click()
    expect(page.locator("#session-history")).to_contain_text("Live now: 3 members")

    page.goto(admin_url(live_server.url, "index"))
    page.locator("#dashboard").get_by_role("link", name="Usage").click()
    page.get_by_role("link", name="90 days").click()
    charts = page.locator("img.sw-chart")
    expect(charts).to_have_count(4)
    for index in range(4):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=chart.element_handle()
        )
        assert chart.evaluate("img => img.naturalWidth") == 900
    names = set(RoomSession.objects.values_list("room_name", flat=True))
    expect(page.locator("#usage-rooms tbody tr")).to_have_count(min(10, len(names)))
    screenshot("usage")
