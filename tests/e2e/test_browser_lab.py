"""The JupyterLab panel and status bar in a real Chromium against a real `jupyter lab` (no Hub)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from demo.localidp import free_port
from qcs_jupyter.credentials import CredentialStore, TokenSet

from .browser import launch, new_page

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a throwaway home, with the app exposed for theme switching."""
    root = tmp_path_factory.mktemp("lab")
    # Screenshots for the docs show a neutral home rather than a temporary directory.
    home = Path("/home/ada") if os.environ.get("QCS_JUPYTER_SCREENSHOTS") else root / "home"
    home.mkdir(parents=True, exist_ok=True)
    config = root / "config"
    config.mkdir()
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


@pytest.fixture(scope="module")
def page(lab):
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        yield page
        browser.close()


def put_state(home: Path, state: str, make_jwt) -> None:
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
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        CredentialStore().install(tokens)
    finally:
        os.environ["HOME"] = old_home or ""


@pytest.mark.parametrize("state", ["ok", "expiring", "expired", "missing", "corrupt"])
def test_panel_and_status_bar_show_state(lab, page, make_jwt, state):
    put_state(lab["home"], state, make_jwt)
    page.goto(f"{lab['url']}/lab?token={lab['token']}")
    item = page.locator(".qcs-jupyter-status-item")
    shown = "error" if state == "corrupt" else state
    expect(item).to_have_attribute("data-qcs-state", shown, timeout=60_000)
    item.click()
    panel = page.locator("#qcs-jupyter-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-qcs-state", shown)
    restart = panel.locator("[data-qcs-action=restart]")
    expect(restart).to_be_disabled()  # no Hub here, and the panel says why
    if state in ("ok", "expiring", "expired"):
        expect(panel.locator("[data-qcs-field=email]")).to_have_text("ada@example.org")
        expect(panel.locator("[data-qcs-field=refresh-bar]")).to_be_visible()
    if state == "expiring":
        expect(panel.locator("li.qcs-jupyter-problem[data-qcs-problem=refresh_token_expiring]")).to_be_visible()
        expect(page.get_by_text("Your QCS refresh token expires soon")).to_be_visible()  # a notification
    if state == "corrupt":
        expect(page.get_by_text("Your QCS credentials are not usable")).to_be_visible()
    if state == "expired":
        expect(panel.locator("[data-qcs-field=access-status]")).to_have_text("Expired")
    if state == "missing":
        expect(panel.locator("[data-qcs-section=empty]")).to_contain_text("qcs-jupyter install")
    if state == "corrupt":
        expect(panel.locator("li.qcs-jupyter-problem[data-qcs-problem=file_corrupt]")).to_be_visible()
    if state == "ok":
        commands = page.evaluate(
            "['open', 'restart', 'refresh'].map(c => window.jupyterapp.commands.hasCommand('qcs-jupyter:' + c))"
        )
        assert commands == [True, True, True]
        schema = page.evaluate(
            "window.jupyterapp.serviceManager.settings.fetch('qcs-jupyter:plugin').then(s => s.schema.properties)"
        )
        assert schema["pollInterval"]["default"] == 60 and schema["warningDays"]["default"] == 7
    if state == "ok" and os.environ.get("QCS_JUPYTER_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        panel.screenshot(path=str(DOCS / "panel-light.png"))
        page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_timeout(1500)
        panel.screenshot(path=str(DOCS / "panel-dark.png"))
        page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
        page.wait_for_timeout(1000)
