"""Staff accounts in headless Chromium: the second factor and login lockouts."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.browser_helpers import (
    PASSWORD,
    CspWatch,
    admin_url,
    login,
    make_staff,
    make_superuser,
    totp_code,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def submit_login(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Fill and send admin's login form, wherever it then leads."""
    page.goto(admin_url(base_url, "login"))
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_required_second_factor_enrol_at_first_login_then_a_code_each_login(
    live_server, page, settings, screenshot
):
    settings.PORTAL_REQUIRE_OTP = True
    make_superuser("boss")

    submit_login(page, live_server.url, "boss")
    expect(page).to_have_url(f"{live_server.url}/admin/account/two-factor/?next=%2Fadmin%2F")
    expect(page.locator("#otp-qr svg")).to_be_visible()
    expect(page.locator(".errornote")).to_contain_text("requires a second factor")
    screenshot("enrol")
    # The app would scan the QR code; the test reads the same key from the device.
    device = TOTPDevice.objects.get(user__username="boss", confirmed=False)
    page.locator("summary", has_text="enter the key by hand").click()
    shown = page.locator("#otp-secret").inner_text()
    assert f"secret={shown}" in device.config_url
    page.locator("#id_code").fill(totp_code(device))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Two-factor authentication is on")
    expect(page.get_by_role("link", name="Conferences", exact=True)).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    submit_login(page, live_server.url, "boss")
    expect(page.locator("#otp-verify-form")).to_be_visible()
    page.goto(admin_url(live_server.url, "rooms_conference_changelist"))
    expect(page.locator("#otp-verify-form")).to_be_visible()  # no page before the code
    page.locator("#id_code").fill("000000" if totp_code(device) != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".errorlist")).to_contain_text("not right")
    screenshot("wrong-code")
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    page.locator("#id_code").fill(totp_code(device))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(admin_url(live_server.url, "rooms_conference_changelist"))


def test_lockout_message_then_a_superuser_clears_it(live_server, page, browser, screenshot):
    make_superuser("boss")
    make_staff("clerk", "rooms.view_room")
    # The superuser is already at work in their own browser.
    boss_context = browser.new_context()
    boss_csp = CspWatch(boss_context)
    boss = boss_context.new_page()
    try:
        login(boss, live_server.url, "boss")

        for attempt in range(5):
            submit_login(page, live_server.url, "clerk", password=f"guess-{attempt}")
        expect(page.locator("#lockout-message")).to_contain_text("locked out for 15 minutes")
        submit_login(page, live_server.url, "clerk")
        expect(page.locator("#lockout-message")).to_be_visible()
        expect(page.locator("#user-tools")).to_have_count(0)
        screenshot("locked-out")

        boss.goto(admin_url(live_server.url, "axes_accessattempt_changelist"))
        row = boss.locator("#result_list tbody tr").filter(has_text="clerk")
        expect(row).to_contain_text("Locked out until")
        row.locator("input.action-select").check()
        boss.locator("select[name=action]").select_option("clear_lockouts")
        boss.get_by_role("button", name="Go").click()
        expect(boss.locator(".messagelist .success")).to_contain_text("Cleared")
        boss_csp.assert_none(boss)
    finally:
        boss_context.close()

    login(page, live_server.url, "clerk")
    expect(page.get_by_role("link", name="Rooms", exact=True)).to_be_visible()
