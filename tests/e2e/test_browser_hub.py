"""A user in Chromium: log in through the Hub and the IdP, see the panel, click "Restart server to refresh"."""

from __future__ import annotations

import time

import requests
import tomlkit
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect, sync_playwright

from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .browser import fill_idp_form, launch, new_page, sign_in
from .kernels import RESULT_MARK, Kernel


def access_token(hub, user: str) -> str:
    doc = tomlkit.parse((hub.home(user) / ".qcs" / "secrets.toml").read_text()).unwrap()
    return doc["credentials"]["default"]["token_payload"]["access_token"]


def test_login_panel_and_restart_to_refresh(rotating_hub):
    hub = rotating_hub
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, hub.url, "kim", wait_for="**/user/kim/lab**")
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


def test_log_in_again_in_one_click_keeps_the_server(rotating_hub):
    """The QCS session ends (an admin revokes it); the panel offers "Log in again"; one click goes through the Hub
    and the IdP and back to JupyterLab, and the same server holds the new tokens: no restart, kernels survive."""
    hub = rotating_hub
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, hub.url, "lia", wait_for="**/user/lia/lab**")
        started = hub.api("GET", "/users/lia")["servers"][""]["started"]
        old = hub.auth_state("lia")["refresh_token"]
        # A kernel with state in it, started with the browser's own session (its cookies), as the page would.
        kernel = Kernel(hub, "lia", browser_session(page), "python3").start()
        kernel.run("survivor = 6 * 7")
        hub.api("POST", "/qcs/users/lia/revoke", {"reason": "test"})
        page.locator(".qcs-jupyter-status-item").click()
        panel = page.locator("#qcs-jupyter-panel")
        panel.locator("[data-qcs-action=refresh]").click()  # the next pull learns that the login ended
        login = panel.locator("[data-qcs-action=login]")
        expect(login).to_have_text("Log in again", timeout=60_000)
        with page.expect_request(lambda r: r.method == "POST" and "/qcs-jupyter/refresh" in r.url, timeout=120_000):
            login.click()
            try:  # the IdP asks again unless its own session is still open
                page.wait_for_selector("input[name=login]", timeout=5_000)
                fill_idp_form(page, "lia")
            except PlaywrightTimeoutError:
                pass
        page.wait_for_url("**/user/lia/lab**", timeout=120_000)
        expect(panel.locator("[data-qcs-action=login]")).to_have_count(0, timeout=60_000)
        state = hub.auth_state("lia")
        assert state["refresh_token"] and state["refresh_token"] != old
        assert access_token(hub, "lia") == state["access_token"]  # the running server wrote the new login's token
        assert hub.api("GET", "/users/lia")["servers"][""]["started"] == started  # no restart
        # The kernel survived: the same kernel is still listed, and still holds its state.
        kernels = kernel.session.get(f"{hub.url}/user/lia/api/kernels", timeout=30).json()
        assert kernel.id in [k["id"] for k in kernels]
        assert kernel.call(f"print({RESULT_MARK!r} + str(survivor))") == 42
        kernel.shutdown()
        browser.close()


def browser_session(page) -> requests.Session:
    """A ``requests`` session holding the browser's cookies (the Hub's and the user server's)."""
    session = requests.Session()
    session.trust_env = False
    for cookie in page.context.cookies():
        session.cookies.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
    return session
