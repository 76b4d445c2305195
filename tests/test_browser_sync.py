"""The Sync runs page in headless Chromium: "Sync now" runs a sync in a real worker."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Conference, Room, SyncRun
from tests.browser_helpers import admin_url, login, make_superuser
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sync_now_records_a_succeeded_run(
    sandbox, live_server, page, screenshot, celery_worker
):
    sandbox.seed(conferences=3, rooms=2)
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_syncrun_changelist"))
    expect(page.locator("#result_list")).to_have_count(0)
    screenshot("before")

    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Sync queued")

    succeeded = page.locator("#result_list tbody tr").filter(has_text="Succeeded")

    def both_synced() -> bool:
        kinds = set(
            SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCEEDED).values_list(
                "kind", flat=True
            )
        )
        return {SyncRun.Kind.CONFERENCES, SyncRun.Kind.ROOMS} <= kinds

    wait_until(both_synced, timeout=20, message="a succeeded conference and room sync")
    page.reload()
    expect(succeeded.first).to_be_visible()
    expect(succeeded.filter(has_text="Conferences")).to_have_count(1)
    expect(succeeded.filter(has_text="Rooms")).to_have_count(1)
    screenshot("after")
    assert Conference.objects.count() == 3
    assert Room.objects.count() == 2
