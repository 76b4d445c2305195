"""Streams in headless Chromium: add, refuse a non-RTMP URL, change, reveal, delete."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from rooms import services
from rooms.models import AuditEntry, Stream
from rooms.services import streams
from tests.browser_helpers import admin_url, login, make_staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY = "live_b40e-browser-secret-13"
URL = f"rtmp://live.twitch.tv/app/{KEY}"
NEW_KEY = "fb-2f9a-browser-new-key-88"
NEW_URL = f"rtmps://live-api-s.facebook.com:443/rtmp/{NEW_KEY}"
STAFF_PERMS = (
    "rooms.view_room", "rooms.change_room", "rooms.view_stream", "rooms.add_stream",
    "rooms.change_stream", "rooms.delete_stream",
)


def assert_secret_free(page) -> None:
    html = page.content()
    assert KEY not in html and NEW_KEY not in html


def test_staff_add_change_reveal_and_delete_a_stream(sandbox, live_server, page, screenshot):
    room = services.room_create(data={"name": "launch", "display_name": "Launch"})
    make_staff("streamer", *STAFF_PERMS, "rooms.reveal_stream_url")
    login(page, live_server.url, "streamer")

    # From the room's page: its (empty) streams inline offers to add one.
    page.goto(admin_url(live_server.url, "rooms_room_change", room.pk))
    page.get_by_role("link", name="Add a stream").click()
    expect(page.locator(".description")).to_contain_text("starts in every session")
    expect(page.locator("#id_room")).to_have_value(str(room.pk))

    # A URL that is not RTMP is refused on the field; SignalWire is not asked.
    sandbox.clear_requests()
    page.locator("#id_url").fill("https://live.twitch.tv/app/not-rtmp")
    page.get_by_role("button", name="Save", exact=True).first.click()
    expect(page.locator(".field-url .errorlist")).to_contain_text("rtmp:// or rtmps://")
    assert sandbox.requests == []
    screenshot("refused")

    page.locator("#id_url").fill(URL)
    page.get_by_role("button", name="Save", exact=True).first.click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    stream = Stream.objects.get()
    assert sandbox.streams[stream.remote_id]["url"] == URL
    expect(page.locator("#result_list")).to_contain_text("rtmp://live.twitch.tv/••••••••")
    assert_secret_free(page)
    screenshot("listed")

    # The room's page lists it masked.
    page.goto(admin_url(live_server.url, "rooms_room_change", room.pk))
    expect(page.locator(".field-url_masked")).to_contain_text("rtmp://live.twitch.tv/••••••••")
    assert_secret_free(page)

    # Change the URL: the field is empty on the page; the new one reaches SignalWire.
    page.goto(admin_url(live_server.url, "rooms_stream_change", stream.pk))
    expect(page.locator("#id_url")).to_have_value("")
    assert_secret_free(page)
    page.locator("#id_url").fill(NEW_URL)
    page.get_by_role("button", name="Save", exact=True).first.click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert sandbox.streams[stream.remote_id]["url"] == NEW_URL
    assert_secret_free(page)

    # Reveal: a confirmation, then the URL once; the session never holds it.
    page.goto(admin_url(live_server.url, "rooms_stream_change", stream.pk))
    page.get_by_role("link", name="Reveal URL…").click()
    assert_secret_free(page)
    page.get_by_role("button", name="Reveal the URL").click()
    expect(page.locator("#sw-stream-url")).to_have_value(NEW_URL)
    screenshot("revealed")
    sessions = json.dumps([[s.session_data, s.get_decoded()] for s in Session.objects.all()])
    assert NEW_KEY not in sessions and KEY not in sessions
    assert AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS).count() == 1

    # Delete, SignalWire first.
    page.goto(admin_url(live_server.url, "rooms_stream_delete", stream.pk))
    assert_secret_free(page)
    page.get_by_role("button", name="Yes, I’m sure").click()
    expect(page.locator(".messagelist")).to_contain_text("was deleted successfully")
    assert sandbox.streams == {} and not Stream.objects.exists()


def test_without_the_permission_no_page_shows_the_url_or_offers_a_reveal(
    sandbox, live_server, page
):
    room = services.room_create(data={"name": "quiet"})
    stream = streams.stream_create(owner=room, url=URL)
    make_staff("viewer", *STAFF_PERMS)
    login(page, live_server.url, "viewer")

    for name, args in (
        ("rooms_stream_changelist", ()),
        ("rooms_stream_change", (stream.pk,)),
        ("rooms_stream_history", (stream.pk,)),
        ("rooms_room_change", (room.pk,)),
    ):
        page.goto(admin_url(live_server.url, name, *args))
        assert_secret_free(page)
    expect(page.get_by_role("link", name="Reveal URL…")).to_have_count(0)
    response = page.goto(admin_url(live_server.url, "rooms_stream_reveal", stream.pk))
    assert response is not None and response.status == 403
