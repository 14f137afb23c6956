"""Logout in Chromium against the real Hub and IdP: only a logout the user meant revokes at the IdP.

JupyterHub's ``GET /hub/logout`` has no XSRF token and the Hub's cookie rides along on a top-level navigation, so
any site can log a visitor out. Such a logout ends the Hub session as JupyterHub does, but must not revoke the
user's QCS refresh token (their held clients would stop within the hour). The attacker's page is served from
``localhost``, another site than the Hub's ``127.0.0.1``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from playwright.sync_api import sync_playwright

from .browser import launch, new_page, sign_in
from .conftest import stack

LOGIN_COOKIE = "jupyterhub-hub-login"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # No rotation: the test can use a refresh token at the IdP to see that it still works, without spoiling it.
    with stack(tmp_path_factory.mktemp("logout-origin"), rotate=False, ttl=600) as hub:
        yield hub


@contextlib.contextmanager
def attacker_site(target: str) -> Iterator[str]:
    """A page on another site that sends the browser to ``target`` as soon as it loads; yields its URL."""
    page = f'<!doctype html><title>Win a prize</title><script>location.href = "{target}";</script>'.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/prize"
    finally:
        server.shutdown()
        server.server_close()


def refresh_at_idp(hub, refresh_token: str) -> requests.Response:
    return requests.post(
        hub.idp.token_url,
        data={"grant_type": "refresh_token", "client_id": hub.client_id, "refresh_token": refresh_token},
        verify=str(hub.idp.ca_path) if hub.idp.ca_path else True,
        timeout=30,
    )


def logged_in(page) -> bool:
    return any(c["name"] == LOGIN_COOKIE for c in page.context.cookies())


def test_a_logout_from_another_site_keeps_the_qcs_session(hub):
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, hub.url, "vic", next_path="/hub/home", wait_for="**/hub/home")
        assert logged_in(page)
        held = hub.auth_state("vic")["refresh_token"]
        with attacker_site(f"{hub.url}/hub/logout") as evil:
            with page.expect_request(f"{hub.url}/hub/logout") as logout:
                page.goto(evil)
            page.wait_for_url("**/hub/login**")
        assert logout.value.headers.get("referer", "").startswith("http://localhost:")
        # The Hub session ended, as JupyterHub ends it.
        assert not logged_in(page)
        page.goto(f"{hub.url}/hub/home")
        page.wait_for_url("**/hub/login**")
        # The QCS session did not: the Hub keeps the refresh token, and the IdP still honours it.
        time.sleep(3)  # a revocation would run in the background right after the logout
        state = hub.auth_state("vic")
        assert state["refresh_token"] == held and not state["qcs"].get("logged_out_at")
        assert refresh_at_idp(hub, held).status_code == 200
        # Chromium said where the request came from (Playwright does not show the fetch metadata it adds).
        assert "(Sec-Fetch-Site: cross-site, Referer: localhost:" in hub.log_text()
        browser.close()


@pytest.mark.parametrize("how", ["button", "typed-url"])
def test_a_logout_from_the_hub_revokes_at_the_idp(hub, how):
    """The Hub's logout button (Sec-Fetch-Site: same-origin) or the URL typed (none)."""
    user = f"una-{how}"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, hub.url, user, next_path="/hub/home", wait_for="**/hub/home")
        held = hub.auth_state(user)["refresh_token"]
        with page.expect_request(f"{hub.url}/hub/logout") as logout:
            if how == "button":
                page.locator("#logout").click()
            else:
                page.goto(f"{hub.url}/hub/logout")
        page.wait_for_url("**/hub/login**")
        assert logout.value.url == f"{hub.url}/hub/logout"
        assert not logged_in(page)
        state = hub.auth_state(user)
        assert "refresh_token" not in state and state["qcs"]["logged_out_at"]
        deadline = time.monotonic() + 20
        while (answer := refresh_at_idp(hub, held)).status_code == 200:
            assert time.monotonic() < deadline, "the refresh token was not revoked at the IdP"
            time.sleep(0.5)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
        browser.close()
