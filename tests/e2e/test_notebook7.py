"""Notebook 7 (``/tree`` and a notebook opened there), in Chromium against the real Hub: the QCS status is there (in
the top area: Notebook 7 has no status bar) and opens the panel with the same actions as in JupyterLab; "Log in
again" comes back to the page it started from.

``QCS_JUPYTER_SCREENSHOTS=1`` re-takes ``docs/notebook7.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect, sync_playwright

from .browser import fill_idp_form, launch, new_page, sign_in
from .conftest import stack
from .pages import ExposedHub, ask_qcs, open_panel

DOCS = Path(__file__).resolve().parents[2] / "docs"
USER = "nia"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with stack(tmp_path_factory.mktemp("nb7"), rotate=False, ttl=3600, qcs_api=True, hub_class=ExposedHub) as hub:
        yield hub


@pytest.fixture(scope="module")
def page(hub):
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, hub.url, USER, wait_for=f"**/user/{USER}/lab**")  # the Hub starts the server
        page.goto(f"{hub.url}/user/{USER}/tree")  # where a Notebook 7 user starts
        yield page
        browser.close()


def test_tree_shows_the_status_and_its_actions(hub, page):
    item = page.locator("#top-panel .qcs-jupyter-status-item")  # Notebook 7's top area: it has no status bar
    expect(item).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
    panel = open_panel(page, keyboard=True)  # Enter on the item opens the left side panel
    expect(page.locator("#jp-left-stack")).to_be_visible()
    expect(panel.locator("[data-qcs-field=email]")).to_have_text(f"{USER}@example.org")
    expect(panel.locator("[data-qcs-field=settings-path] code")).to_have_text("~/.qcs/settings.toml")
    expect(panel.locator("[data-qcs-field=settings-path] code")).to_have_attribute(
        "title", str(hub.home(USER) / ".qcs" / "settings.toml")
    )
    # The same actions as in JupyterLab.
    for action in ("restart", "refresh", "check", "check-qcs", "copy-path"):
        # (Check with QCS waits out the few seconds since another test of this server asked QCS.)
        expect(panel.locator(f"[data-qcs-action={action}]").first).to_be_enabled(timeout=15_000)
    commands = page.evaluate(
        "['open', 'restart', 'refresh', 'check-qcs'].map(c => window.jupyterapp.commands.hasCommand('qcs-jupyter:' + c))"
    )
    assert commands == [True, True, True, True]
    hub.qcs_api.reset()
    result = ask_qcs(page, panel, "accepted")
    expect(result).to_contain_text("you can see 2 quantum processors")
    (call,) = hub.qcs_api.calls  # asked once, with the token the server wrote for this user
    assert call.accepted and call.subject == USER and call.query == "pageSize=100"
    if os.environ.get("QCS_JUPYTER_SCREENSHOTS"):  # re-take the docs' picture only when asked to
        expect(panel.locator("[data-qcs-action=check-qcs]")).not_to_have_attribute(
            "aria-disabled", "true", timeout=10_000
        )
        page.screenshot(path=str(DOCS / "notebook7.png"))
    with page.expect_response(lambda r: r.request.method == "POST" and "/qcs-jupyter/refresh" in r.url) as answer:
        panel.locator("[data-qcs-action=refresh]").click()
    assert answer.value.status == 200
    expect(page.get_by_text("QCS credentials refreshed.")).to_be_visible()


def test_a_notebook_shows_the_status_and_log_in_again_comes_back_to_it(hub, page):
    name = "qcs.ipynb"
    notebook = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {}, "outputs": [], "source": ""}
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (hub.home(USER) / name).write_text(json.dumps(notebook))
    path = f"/user/{USER}/notebooks/{name}"
    page.goto(f"{hub.url}{path}")
    item = page.locator("#top-panel .qcs-jupyter-status-item")
    expect(item).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
    panel = open_panel(page)
    # QCS refuses the token: the answer offers "Log in again", which goes through the Hub and the IdP and comes
    # back to this notebook (not to JupyterLab), where the page pulls the new tokens.
    hub.qcs_api.answer_with(401)
    try:
        result = ask_qcs(page, panel, "refused")
    finally:
        hub.qcs_api.answer_with(None)
    login = result.locator("[data-qcs-action=login]")
    expect(login).to_have_text("Log in again")
    with page.expect_request(lambda r: r.method == "POST" and "/qcs-jupyter/refresh" in r.url, timeout=120_000):
        login.click()
        try:  # the IdP asks again unless its own session is still open
            page.wait_for_selector("input[name=login]", timeout=5_000)
            fill_idp_form(page, USER)
        except PlaywrightTimeoutError:
            pass
    page.wait_for_url(f"**{path}", timeout=120_000)
    expect(page.get_by_text("QCS credentials refreshed.")).to_be_visible()
    expect(page.locator("#top-panel .qcs-jupyter-status-item")).to_have_attribute("data-qcs-state", "ok")
    panel = open_panel(page)
    ask_qcs(page, panel, "accepted")
