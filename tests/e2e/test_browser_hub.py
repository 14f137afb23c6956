"""A user in Chromium: log in through the Hub and the IdP, see the panel, click "Restart server to refresh"."""

from __future__ import annotations

import time

import tomlkit
from playwright.sync_api import expect, sync_playwright

from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .browser import launch, new_page


def access_token(hub, user: str) -> str:
    doc = tomlkit.parse((hub.home(user) / ".qcs" / "secrets.toml").read_text()).unwrap()
    return doc["credentials"]["default"]["token_payload"]["access_token"]


def test_login_panel_and_restart_to_refresh(rotating_hub):
    hub = rotating_hub
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        page.goto(f"{hub.url}/hub/login")
        page.get_by_role("button", name="Sign in with Rigetti QCS").click()
        page.fill("input[name=login]", "kim")
        page.fill("input[name=password]", "anything")
        page.locator("button[type=submit], input[type=submit]").first.click()
        page.wait_for_url("**/user/kim/lab**", timeout=90_000)
        item = page.locator(".qcs-jupyter-status-item")
        # Hub-managed 20 s tokens renew on their own: "ok", not an alarm.
        expect(item).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
        item.click()
        panel = page.locator("#qcs-jupyter-panel")
        expect(panel.locator("[data-qcs-field=email]")).to_have_text("kim@example.org")
        restart = panel.locator("[data-qcs-action=restart]")
        expect(restart).to_be_enabled()
        before = access_token(hub, "kim")
        obtained = hub.auth_state("kim")["qcs"]["access_token_obtained_at"]
        time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))
        restart.click()
        page.locator(".jp-Dialog .jp-mod-warn").click()
        expect(panel.locator("[data-qcs-field=restart-progress]")).to_be_visible()
        # The browser goes to the Hub, which starts the server again and sends it back to JupyterLab.
        page.wait_for_url("**/hub/spawn**", timeout=90_000)
        page.wait_for_url("**/user/kim/lab**", timeout=120_000)
        expect(page.locator(".qcs-jupyter-status-item")).to_be_visible(timeout=60_000)
        after = access_token(hub, "kim")
        assert after != before
        browser.close()
