"""Conference admin in headless Chromium against the live server and the sandbox Space."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rooms import services
from rooms.models import AuditEntry, Conference, SyncState
from rooms.tasks import push
from tests.browser_helpers import admin_url, login, make_superuser, puts
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sandbox_conference(space, name: str) -> dict | None:
    """Return the sandbox's conference of that name, if it has one."""
    return next((c for c in space.conferences.values() if c["name"] == name), None)


def save(page: Page) -> None:
    """Press the change form's main Save button."""
    page.get_by_role("button", name="Save", exact=True).first.click()


def row(page: Page, name: str):
    """Return the change list row whose name link is exactly `name`."""
    link = page.get_by_role("link", name=name, exact=True)
    return page.locator("#result_list tbody tr").filter(has=link)


def test_login_through_the_form(sandbox, live_server, page, screenshot):
    make_superuser("boss")
    page.goto(admin_url(live_server.url, "index"))
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/admin/")
    screenshot("login-form")

    login(page, live_server.url, "boss")

    expect(page.get_by_role("link", name="Conferences", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Sync runs")).to_be_visible()
    screenshot("index")


def test_create_then_edit_a_conference(sandbox, live_server, page, screenshot):
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_conference_add"))
    page.locator("#id_name").fill("weekly-sync")
    page.locator("#id_display_name").fill("Weekly sync")
    page.locator("#id_description").fill("Every Monday")
    page.locator("#id_size").select_option("large")
    page.locator("#id_layout").select_option("3x3")
    screenshot("add-form")

    save(page)

    expect(page.locator(".messagelist .success")).to_contain_text("Weekly sync")
    expect(row(page, "weekly-sync").locator(".sw-badge")).to_have_text("Synced")
    screenshot("changelist-synced")
    remote = sandbox_conference(sandbox, "weekly-sync")
    assert remote is not None
    assert (remote["display_name"], remote["description"]) == ("Weekly sync", "Every Monday")
    assert (remote["size"], remote["layout"]) == ("large", "3x3")

    # Edit: display name, a theme colour through the colour picker, quality.
    page.get_by_role("link", name="weekly-sync", exact=True).click()
    page.locator("#id_display_name").fill("Weekly all-hands")
    page.locator("#id_quality").select_option("1080p")
    page.locator("summary", has_text="Theme colours").click()
    colour = page.locator("#id_dark_primary")
    expect(colour).to_have_attribute("type", "color")
    colour.fill("#12ab9c")
    screenshot("change-form")
    sandbox.clear_requests()

    save(page)

    expect(page.locator(".messagelist .success")).to_be_visible()
    expect(row(page, "weekly-sync").locator(".sw-badge")).to_have_text("Synced")
    expect(row(page, "weekly-sync")).to_contain_text("Weekly all-hands")
    assert len(puts(sandbox, remote["id"])) == 1
    remote = sandbox.conferences[remote["id"]]
    assert remote["display_name"] == "Weekly all-hands"
    assert remote["quality"] == "1080p"
    assert remote["dark_primary"].lower() == "#12ab9c"
    local = Conference.objects.get(name="weekly-sync")
    assert (local.display_name, local.sync_state) == ("Weekly all-hands", SyncState.SYNCED)


def test_signalwire_422_lands_on_the_name_field(sandbox, live_server, page, screenshot):
    sandbox.create_conference({"name": "taken", "display_name": "Someone else's"})
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_conference_add"))
    page.locator("#id_name").fill("taken")
    page.locator("#id_display_name").fill("My careful wording")
    page.locator("#id_description").fill("Typed by hand")

    save(page)

    expect(page.locator(".form-row.field-name")).to_contain_text("Name has already been taken")
    expect(page.locator("#id_name")).to_have_value("taken")
    expect(page.locator("#id_display_name")).to_have_value("My careful wording")
    expect(page.locator("#id_description")).to_have_value("Typed by hand")
    screenshot("duplicate-name")
    assert not Conference.objects.exists()
    assert len(sandbox.conferences) == 1


def test_an_edit_made_while_signalwire_is_down_lands_later(
    sandbox, live_server, page, screenshot
):
    conference = services.conference_create(data={"name": "standup", "display_name": "Standup"})
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))
    sandbox.inject_fault(503)
    page.locator("#id_display_name").fill("Daily standup")

    save(page)

    expect(page.locator(".messagelist .warning")).to_contain_text("marked pending")
    expect(row(page, "standup").locator(".sw-badge")).to_have_text("Pending push")
    screenshot("pending")
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Standup"

    sandbox.clear_faults()
    # Run the queued push as a worker would (a worker left running by an earlier test may
    # land it first; the row lock makes that one push either way).
    for kind, pk, is_delete in services.pending_rows():
        assert (kind, pk, is_delete) == ("conference", conference.pk, False)
        push.push_conference.apply(args=[pk])

    def landed() -> bool:
        """The pending edit reached SignalWire."""
        return Conference.objects.get(pk=conference.pk).sync_state == SyncState.SYNCED

    wait_until(landed, timeout=10)
    page.reload()
    expect(row(page, "standup").locator(".sw-badge")).to_have_text("Synced")
    screenshot("landed")
    assert sandbox.conferences[conference.remote_id]["display_name"] == "Daily standup"


def test_delete_through_the_confirmation_page(sandbox, live_server, page, screenshot):
    conference = services.conference_create(data={"name": "retired", "display_name": "Old"})
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))

    page.locator("a.deletelink").first.click()
    expect(page.locator("#content")).to_contain_text("Are you sure you want to delete")
    screenshot("delete-confirmation")
    page.get_by_role("button", name="Yes, I’m sure").click()

    expect(page.locator(".messagelist")).to_contain_text("Old")
    screenshot("deleted")
    assert conference.remote_id not in sandbox.conferences
    assert not Conference.objects.filter(pk=conference.pk).exists()


def test_history_shows_the_diff_and_the_change_log_filters_by_source(
    sandbox, live_server, page, screenshot
):
    conference = services.conference_create(
        data={"name": "townhall", "display_name": "Town hall"}, source=AuditEntry.Source.SHELL
    )
    make_superuser("boss")
    login(page, live_server.url, "boss")
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))
    page.locator("#id_display_name").fill("Town hall (Q3)")
    save(page)
    expect(page.locator(".messagelist .success")).to_be_visible()

    page.get_by_role("link", name="townhall", exact=True).click()
    page.get_by_role("link", name="History").click()

    history = page.locator("#audit-history")
    update = history.locator("tr.audit-entry").filter(has_text="boss")
    expect(update).to_have_count(1)
    expect(update).to_contain_text("Display name")
    expect(update.locator(".old")).to_contain_text("Town hall")
    expect(update.locator(".new")).to_contain_text("Town hall (Q3)")
    screenshot("history")

    page.goto(admin_url(live_server.url, "rooms_auditentry_changelist"))
    expect(page.locator("#result_list")).to_contain_text("Town hall (Q3)")
    screenshot("change-log")
    page.locator("#changelist-filter a[href*='source__exact=shell']").click()

    expect(page).to_have_url(re.compile(r"source__exact=shell"))
    rows = page.locator("#result_list tbody tr")
    expect(rows.first).to_be_visible()
    for text in rows.all_inner_texts():
        assert "Shell" in text
    expect(page.locator("#result_list")).not_to_contain_text("Town hall (Q3)")
    screenshot("change-log-shell")
