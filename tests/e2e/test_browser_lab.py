"""The JupyterLab panel and status bar in a real Chromium against a real `jupyter lab` (no Hub).

Every `~/.qcs` here is made by the test in a temporary home: screenshot mode included, nothing is written to
or deleted from a real user's home.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from devstack.localidp import free_port
from qcs_jupyter.credentials import CredentialStore, TokenSet
from qcs_jupyter.credentials.paths import QCSPaths

from .browser import launch, new_page

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = bool(os.environ.get("QCS_JUPYTER_SCREENSHOTS"))
STATUS_ROUTE = "**/qcs-jupyter/status*"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a throwaway home, with the app exposed for theme switching."""
    root = tmp_path_factory.mktemp("lab")
    # A fresh temporary directory with a short name: the panel shows its paths (also in the docs' screenshots).
    home = Path(tempfile.mkdtemp(prefix="ada-"))
    config = root / "config"
    # No "fetch Jupyter news?" toast beside ours (JupyterLab's user settings live under JUPYTER_CONFIG_DIR).
    notification = config / "lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "expose_app_in_browser": True,
                }
            }
        )
    )
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QCS_", "JUPYTERHUB_"))}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(config))
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--notebook-dir={home}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (root / "lab.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.25)
    else:
        proc.kill()
        raise RuntimeError((root / "lab.log").read_text())
    yield {"url": url, "token": token, "home": home}
    proc.terminate()
    proc.wait(20)
    log.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def page(lab):
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        yield page
        browser.close()


def put_state(home: Path, state: str, make_jwt) -> None:
    """Write `home/.qcs` in one of the states the panel shows (`home` is always the test's own)."""
    qcs = home / ".qcs"
    if qcs.exists():
        for p in qcs.iterdir():
            p.unlink()
    if state == "missing":
        return
    if state == "corrupt":
        qcs.mkdir(mode=0o700, exist_ok=True)
        (qcs / "settings.toml").write_text("[profiles.default\n")
        (qcs / "secrets.toml").write_text("")
        return
    exp_in = {"ok": 3600, "expiring": 3600, "expired": -120}[state]
    tokens = TokenSet(
        access_token=make_jwt(exp_in),
        refresh_token="r",
        id_token=make_jwt(3600, name="Ada Lovelace", email="ada@example.org"),
    )
    if state == "expiring":
        tokens.refresh_token_obtained_at = datetime.now(timezone.utc) - timedelta(days=86)
    CredentialStore(QCSPaths.from_env({}, home=home)).install(tokens)


def open_panel(page, lab, state: str):
    page.goto(f"{lab['url']}/lab?token={lab['token']}")
    item = page.locator(".qcs-jupyter-status-item")
    expect(item).to_have_attribute("data-qcs-state", state, timeout=60_000)
    item.click()
    panel = page.locator("#qcs-jupyter-panel")
    expect(panel).to_be_visible()
    return panel


@pytest.mark.parametrize("state", ["ok", "expiring", "expired", "missing", "corrupt"])
def test_panel_and_status_bar_show_state(lab, page, make_jwt, state):
    put_state(lab["home"], state, make_jwt)
    shown = "error" if state == "corrupt" else state
    panel = open_panel(page, lab, shown)
    expect(panel).to_have_attribute("data-qcs-state", shown)
    expect(panel.locator("[data-qcs-field=state]")).to_have_attribute("data-qcs-state", shown)
    restart = panel.locator("[data-qcs-action=restart]")
    expect(restart).to_be_disabled()  # no Hub here, and the panel says why
    expect(panel.locator("[data-qcs-action=login]")).to_have_count(0)  # no Hub login to offer
    if state in ("ok", "expiring", "expired"):
        expect(panel.locator("[data-qcs-field=email]")).to_have_text("ada@example.org")
        expect(panel.locator("[data-qcs-field=refresh-bar]")).to_be_visible()
    if state == "expiring":
        expect(panel.locator("li.qcs-jupyter-problem[data-qcs-problem=refresh_token_expiring]")).to_be_visible()
        # The bar is coloured as the server rates the refresh token.
        expect(panel.locator("[data-qcs-field=refresh-bar]")).to_have_attribute("data-qcs-state", "expiring")
        expect(page.get_by_text("Your QCS refresh token expires soon")).to_be_visible()  # a notification
    if state == "corrupt":
        expect(page.get_by_text("Your QCS credentials are not usable")).to_be_visible()
        expect(panel.locator("li.qcs-jupyter-problem[data-qcs-problem=file_corrupt]")).to_be_visible()
    if state == "expired":
        expect(panel.locator("[data-qcs-field=access-status]")).to_have_text("Expired")
    if state == "missing":
        expect(panel.locator("[data-qcs-section=empty]")).to_contain_text("qcs-jupyter install")
    if state == "ok":
        expect(panel.locator("[data-qcs-field=refresh-bar]")).to_have_attribute("data-qcs-state", "ok")
        commands = page.evaluate(
            "['open', 'restart', 'refresh'].map(c => window.jupyterapp.commands.hasCommand('qcs-jupyter:' + c))"
        )
        assert commands == [True, True, True]
        schema = page.evaluate(
            "window.jupyterapp.serviceManager.settings.fetch('qcs-jupyter:plugin').then(s => s.schema.properties)"
        )
        # One threshold for "expiring": the server's (QCSJupyterApp.warning_days); the browser has none.
        assert schema["pollInterval"]["default"] == 60
        assert "warningDays" not in schema
    if state == "ok" and SCREENSHOTS:
        screenshots(page, panel)


def screenshots(page, panel) -> None:
    DOCS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1200})  # the whole panel, down to its footer
    page.wait_for_timeout(500)
    panel.screenshot(path=str(DOCS / "panel-light.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_timeout(1500)
    panel.screenshot(path=str(DOCS / "panel-dark.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_timeout(1000)
    page.set_viewport_size({"width": 1400, "height": 900})


def hub_view(page, change: Callable[[dict], None]) -> None:
    """Answer `qcs-jupyter/status` with the real server's status plus a `hub` object as a Hub-backed server
    sends it (this server runs without a Hub), changed by `change`."""

    def handle(route):
        response = route.fetch()
        status = response.json()
        status["hub"] = {
            "available": True,
            "last_sync": status["checked_at"],
            "last_sync_error": None,
            "refresh_available": True,
            "restart_available": False,
            "spawn_url": "/hub/spawn/ada?next=%2Flab",
            "mode": "hub",
            "reason": "This test's server runs without a Hub.",
            "login_url": "/hub/oauth_login?next=%2Flab",
            "relogin_required": False,
            "owner": True,
        }
        change(status)
        route.fulfill(response=response, json=status)

    page.route(STATUS_ROUTE, handle)


def test_log_in_again_in_one_click_then_refresh(lab, page, make_jwt):
    """Refresh token within warning_days: "Log in again" in the panel and in the notification; one click goes
    to the Hub's login (same origin), which returns to JupyterLab; the page then POSTs `refresh` at once."""
    put_state(lab["home"], "expiring", make_jwt)
    logins = []

    def hub_login(route):
        # Stands in for the Hub's /hub/oauth_login: back to `next`, as the Hub does after the IdP.
        logins.append(route.request.url)
        next_url = parse_qs(urlsplit(route.request.url).query)["next"][0]
        route.fulfill(status=302, headers={"Location": next_url})

    hub_view(page, lambda status: None)
    page.route("**/hub/oauth_login*", hub_login)
    try:
        panel = open_panel(page, lab, "expiring")
        callout = panel.locator("[data-qcs-field=relogin]")
        expect(callout).to_have_attribute("data-qcs-reason", "expiring")
        expect(callout).to_contain_text("Your QCS login ends soon")
        expect(panel).not_to_contain_text("log out")
        toast = page.locator(".Toastify__toast", has_text="Your QCS refresh token expires soon")
        expect(toast.get_by_role("button", name="Log in again")).to_be_visible()
        expect(page.locator(".Toastify__toast")).to_have_count(1)  # ours alone (no news prompt)
        with page.expect_request(
            lambda r: r.method == "POST" and "/qcs-jupyter/refresh" in r.url, timeout=60_000
        ) as refresh:
            panel.locator("[data-qcs-action=login]").click()
        assert [urlsplit(u).path for u in logins] == ["/hub/oauth_login"]
        assert urlsplit(logins[0]).netloc == urlsplit(lab["url"]).netloc  # same origin
        assert refresh.value.headers.get("x-xsrftoken")  # a real POST through JupyterLab's connection
        # This server has no Hub, so the real server refuses the pull, and the page says so.
        expect(page.get_by_text("Could not refresh the QCS credentials")).to_be_visible()
        assert page.evaluate("window.sessionStorage.getItem('qcs-jupyter:relogin-started')") is None
    finally:
        page.unroute(STATUS_ROUTE)
        page.unroute("**/hub/oauth_login*")


def test_log_in_again_when_the_hub_says_the_login_ended(lab, page, make_jwt):
    put_state(lab["home"], "ok", make_jwt)
    hub_view(page, lambda status: status["hub"].update(relogin_required=True))
    try:
        panel = open_panel(page, lab, "ok")
        expect(panel.locator("[data-qcs-field=relogin]")).to_have_attribute("data-qcs-reason", "required")
        expect(panel.locator("[data-qcs-action=login]")).to_have_text("Log in again")
        toast = page.locator(".Toastify__toast", has_text="Your QCS login has ended")
        expect(toast.get_by_role("button", name="Log in again")).to_be_visible()
    finally:
        page.unroute(STATUS_ROUTE)


def test_no_login_button_for_another_origin(lab, page, make_jwt):
    put_state(lab["home"], "ok", make_jwt)
    hub_view(
        page,
        lambda status: status["hub"].update(relogin_required=True, login_url="//evil.example.org/hub/oauth_login"),
    )
    try:
        panel = open_panel(page, lab, "ok")
        expect(panel.locator("[data-qcs-section=identity]")).to_be_visible()
        expect(panel.locator("[data-qcs-action=login]")).to_have_count(0)
        expect(panel).not_to_contain_text("evil.example.org")
    finally:
        page.unroute(STATUS_ROUTE)


def test_non_owner_sees_no_identity_and_no_actions(lab, page, make_jwt):
    put_state(lab["home"], "ok", make_jwt)
    hub_view(page, lambda status: status["hub"].update(owner=False, relogin_required=True))
    try:
        panel = open_panel(page, lab, "ok")
        expect(panel.locator("[data-qcs-field=not-owner]")).to_be_visible()
        expect(panel.locator("[data-qcs-section=access-token]")).to_be_visible()
        expect(panel.locator("[data-qcs-section=identity]")).to_have_count(0)
        expect(panel.locator("[data-qcs-action]")).to_have_count(0)
        expect(panel).not_to_contain_text("ada@example.org")
        enabled = page.evaluate(
            "['restart', 'refresh'].map(c => window.jupyterapp.commands.isEnabled('qcs-jupyter:' + c))"
        )
        assert enabled == [False, False]
    finally:
        page.unroute(STATUS_ROUTE)
