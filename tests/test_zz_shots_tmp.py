"""Throwaway: screenshots of the admin pages touched by the polish pass (delete after)."""

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from rooms import services
from rooms.models import AuditEntry, SyncRun
from tests.browser_helpers import admin_url, login, make_superuser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
OUT = Path("/tmp/shots")


@pytest.fixture
def pg(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def test_shots(sandbox, live_server, pg):
    OUT.mkdir(exist_ok=True)
    page = pg

    def shot(name):
        page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)

    conference = services.conference_create(
        data={"name": "townhall", "display_name": "Town hall"}, source=AuditEntry.Source.SHELL
    )
    room = services.room_create(data={"name": "clinic", "display_name": "Clinic"})
    services.room_create(data={"name": "spare", "display_name": "Spare"})
    make_superuser("boss")
    login(page, live_server.url, "boss")

    # Mint page.
    page.goto(admin_url(live_server.url, "rooms_room_mint_token", room.pk))
    page.locator("#id_user_name").fill("Ada")
    shot("mint-form")
    page.locator("input[name=role][value=moderator]").check()
    expect(page.locator("input[name=permissions][value='room.lock']")).to_be_checked()
    shot("mint-moderator")
    page.locator("input[name=role][value=guest]").check()
    expect(page.locator("input[name=permissions][value='room.lock']")).not_to_be_checked()
    page.locator("#id_remove_after_seconds_elapsed").fill("1")
    page.locator("#id_join_until").fill("2030-01-01T10:00")
    page.get_by_role("button", name="Mint token").click()
    shot("mint-errors")
    page.locator("#id_remove_after_seconds_elapsed").fill("")
    page.get_by_role("button", name="Mint token").click()
    expect(page.locator("#sw-minted-token")).to_be_visible()
    shot("minted")

    # Sync runs.
    now = timezone.now()
    SyncRun.objects.create(kind="conferences", trigger="admin", outcome="succeeded",
                           finished_at=now, seen=3, created=3)
    SyncRun.objects.create(kind="rooms", trigger="schedule", outcome="failed",
                           finished_at=now, error="SignalWire answered 503")
    SyncRun.objects.create(kind="tokens", trigger="schedule", outcome="running", seen=2)
    page.goto(admin_url(live_server.url, "rooms_syncrun_changelist"))
    shot("syncruns")

    # Conference: edit, change form, history, change log.
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))
    page.locator("#id_display_name").fill("Town hall (Q3)")
    page.get_by_role("button", name="Save", exact=True).first.click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    page.goto(admin_url(live_server.url, "rooms_conference_change", conference.pk))
    shot("conference-change")
    page.goto(admin_url(live_server.url, "rooms_room_change", room.pk))
    shot("room-change")
    page.goto(admin_url(live_server.url, "rooms_conference_history", conference.pk))
    shot("conference-history")
    page.goto(admin_url(live_server.url, "rooms_room_history", room.pk))
    shot("room-history")
    page.goto(admin_url(live_server.url, "rooms_auditentry_changelist"))
    shot("changelog")
    page.goto(admin_url(live_server.url, "index"))
    shot("index")

    # Delete confirmations.
    page.goto(admin_url(live_server.url, "rooms_conference_delete", conference.pk))
    shot("conference-delete")
    page.goto(admin_url(live_server.url, "rooms_room_delete", room.pk))
    shot("room-delete")
    page.goto(admin_url(live_server.url, "rooms_room_changelist"))
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("delete_selected")
    page.locator("button[name=index]").click()
    shot("room-delete-selected")
