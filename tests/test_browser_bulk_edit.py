"""Edit selected… in headless Chromium: the form, the preview, the progress page, the undo."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from rooms import sync
from rooms.models import ActionRun, Conference
from tests.browser_helpers import admin_url, login, make_superuser
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ROWS = 450


def test_a_bulk_edit_driven_from_the_change_list_to_its_progress_page_and_back(
    sandbox, live_server, page, screenshot, celery_worker
):
    sandbox.seed(conferences=ROWS, seed=21)
    sync.sync_conferences()
    before = {c.remote_id: (c.description, c.dark_primary) for c in Conference.objects.all()}
    make_superuser("boss")
    login(page, live_server.url, "boss")
    # Slow enough that the page shows the run going, batch by batch.
    sandbox.set_latency(0.01)

    page.goto(admin_url(live_server.url, "rooms_conference_changelist"))
    page.locator("#action-toggle").check()
    page.locator(".actions .question a").click()
    expect(page.locator(".actions .all")).to_contain_text(f"All {ROWS} selected")
    page.locator("select[name=action]").select_option("edit_selected")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("#content-main")).to_contain_text(f"Change {ROWS} conferences at once")
    description = page.locator("#id_description")
    description.fill("Town hall")
    # Editing a value ticks its "change this" box.
    expect(page.locator("#id_change_description")).to_be_checked()
    page.locator("#id_dark_primary").fill("#123456")
    expect(page.locator("#id_change_dark_primary")).to_be_checked()
    expect(page.locator("#id_change_layout")).not_to_be_checked()
    screenshot("form")
    page.get_by_role("button", name="Preview the change").click()

    expect(page.locator(".sw-bulk-summary")).to_contain_text(
        f"{ROWS} of {ROWS} conferences will change"
    )
    expect(page.locator(".sw-bulk-examples tbody tr")).to_have_count(10)  # 5 rows, 2 fields
    assert ActionRun.objects.count() == 0
    screenshot("preview")
    page.get_by_role("button", name=f"Yes, change {ROWS} conferences").click()

    expect(page.locator(".messagelist .success")).to_contain_text(f"Queued the edit of {ROWS}")
    expect(page.locator(".sw-run-progress h2")).to_have_text("Progress")
    # The bar moves without a reload while the worker goes, then the page shows the outcome.
    expect(page.locator(".sw-progress-text")).to_contain_text(
        re.compile(rf"^(200|400) of {ROWS}"), timeout=30000
    )
    screenshot("progress")
    expect(page.locator(".sw-run-progress h2")).to_have_text("Outcome", timeout=60000)
    expect(page.locator(".sw-run-outcomes")).to_contain_text(f"{ROWS} changed")
    screenshot("done")
    for remote_id in before:
        remote = sandbox.conferences[remote_id]
        assert (remote["description"], remote["dark_primary"].lower()) == ("Town hall", "#123456")

    page.get_by_role("link", name="Entries of this run in the change log").click()
    expect(page.locator("#result_list tbody tr").first).to_be_visible()
    page.go_back()

    page.get_by_role("link", name="Restore selected to before this bulk edit…").click()
    page.get_by_role("button", name=f"Yes, restore {ROWS} rows").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Queued the restore")
    expect(page.locator(".sw-run-progress h2")).to_have_text("Outcome", timeout=60000)
    expect(page.locator(".sw-run-outcomes")).to_contain_text(f"{ROWS} changed")
    screenshot("restored")
    sandbox.set_latency(0)

    def restored() -> bool:
        """Every conference is back to its values from before the edit."""
        return all(
            (sandbox.conferences[r]["description"], sandbox.conferences[r]["dark_primary"])
            == values
            for r, values in before.items()
        )

    wait_until(restored)
