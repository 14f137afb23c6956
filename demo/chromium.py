"""Debian's Chromium for Playwright on this kind of machine: the flags it needs and a loopback-only route."""

from __future__ import annotations

import shutil
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
