"""Debian's Chromium driven by Playwright, loopback only."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch(playwright):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def new_page(browser, **kwargs):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True, **kwargs)
    # Nothing leaves the machine: only loopback (and data:/blob:) requests go through.

    def only_loopback(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "https://127.0.0.1", "http://localhost", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page
