"""Debian's Chromium driven by Playwright, loopback only."""

from __future__ import annotations

import shutil

import pytest

from demo.chromium import CHROMIUM, CHROMIUM_ARGS, only_loopback


def launch(playwright):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def new_page(browser, **kwargs):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True, **kwargs)
    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page
