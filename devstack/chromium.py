"""Debian's Chromium for Playwright on this kind of machine: the flags it needs and a loopback-only route."""

from __future__ import annotations

import os
import shutil
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MISSING = "Debian's chromium is not installed (scripts/setup.sh installs it; or: sudo apt-get install chromium)"
#: Headless as root, with no background traffic (the network is closed apart from loopback).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOOPBACK = ("http://127.0.0.1", "https://127.0.0.1", "http://localhost", "data:", "blob:")


def only_loopback(route: Any) -> None:
    """A Playwright route handler: nothing leaves the machine."""
    if route.request.url.startswith(LOOPBACK):
        route.continue_()
    else:
        route.abort()


def chromium_installed() -> bool:
    """Whether the Chromium that Playwright is pointed at exists and can be run."""
    return os.access(CHROMIUM, os.X_OK)


def missing_is_fatal() -> bool:
    """In CI (``CI=true``) a missing browser is a broken set-up: browser tests fail instead of skipping."""
    return os.environ.get("CI", "").lower() == "true"
