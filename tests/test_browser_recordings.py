"""Recording download and delete in headless Chromium, as staff click them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import AuditEntry, Recording
from tests.browser_helpers import admin_url, login, make_staff
from tests.test_recordings import mirror, record_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEDIA = "/__sandbox__/media/recordings/"


@pytest.fixture
def recorded(sandbox, sandbox_server, redis_client) -> Recording:
    """One completed recording of a room's session, mirrored."""
    redis_client.flushdb()
    sandbox.create_room({"name": "webinar"})
    record_session(sandbox_server)
    mirror()
    return Recording.objects.get()


def test_download_follows_a_fresh_link_and_delete_asks_first(
    recorded, sandbox, live_server, page, screenshot
):
    make_staff(
        "keeper",
        "rooms.view_recording",
        "rooms.download_recording",
        "rooms.delete_recording",
        "rooms.view_roomsession",
    )
    login(page, live_server.url, "keeper")
    page.goto(admin_url(live_server.url, "rooms_recording_changelist"))
    expect(page.locator("#recording-totals")).to_contain_text("1 recording")
    page.get_by_role("link", name="webinar").first.click()
    screenshot("recording-page")
    assert MEDIA not in page.content()  # the page carries no link, only a button

    with page.expect_response(lambda r: MEDIA in r.url) as media:
        page.get_by_role("button", name="Download").click()
    assert media.value.status == 200
    assert media.value.headers["content-type"] == "video/mp4"
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCESS)
    assert entry.additional_data["event"] == "download" and entry.actor.username == "keeper"

    page.goto(admin_url(live_server.url, "rooms_recording_change", recorded.pk))
    page.get_by_role("link", name="Delete").click()
    expect(page.locator("#content")).to_contain_text("cannot be brought back")
    assert recorded.remote_id in sandbox.room_recordings  # asking deleted nothing
    screenshot("delete-confirm")
    page.get_by_role("button", name="Yes, delete it in SignalWire").click()
    expect(page.locator(".messagelist")).to_contain_text("Deleted the recording")
    assert recorded.remote_id not in sandbox.room_recordings
    assert not Recording.objects.exists()
    screenshot("deleted")


def test_without_the_permission_there_is_no_download_button(recorded, live_server, page):
    make_staff("looker", "rooms.view_recording")
    login(page, live_server.url, "looker")
    page.goto(admin_url(live_server.url, "rooms_recording_change", recorded.pk))
    expect(page.locator("#content")).to_contain_text("webinar")
    expect(page.get_by_role("button", name="Download")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
