"""Debian's Chromium driven by Playwright, loopback only."""

from __future__ import annotations

import pytest

from devstack.chromium import CHROMIUM, CHROMIUM_ARGS, MISSING, chromium_installed, missing_is_fatal, only_loopback


def require_chromium() -> None:
    """Skip without Chromium on a developer machine; fail in CI, where a skip would hide untested browser code."""
    if not chromium_installed():
        if missing_is_fatal():
            pytest.fail(f"{MISSING}; CI=true, so the browser tests fail instead of being skipped", pytrace=False)
        pytest.skip(MISSING)


def launch(playwright):
    require_chromium()
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def new_page(browser, **kwargs):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True, **kwargs)
    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def sign_in(page, hub_url: str, user: str, *, next_path: str | None = None, wait_for: str | None = None) -> None:
    """Log in through the Hub's login button and the local IdP's form, as a person would."""
    query = f"?next={next_path.replace('/', '%2F')}" if next_path else ""
    page.goto(f"{hub_url}/hub/login{query}")
    page.get_by_role("button", name="Sign in with Rigetti QCS").click()
    fill_idp_form(page, user)
    if wait_for:
        page.wait_for_url(wait_for, timeout=120_000)


def fill_idp_form(page, user: str) -> None:
    """The local IdP's login form (and its consent form, when it asks again)."""
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "any password")
    page.locator("button[type=submit], input[type=submit]").first.click()
