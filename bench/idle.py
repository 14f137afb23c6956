"""P6: requests per idle minute from the QCS panel, counted in a real browser: 60 ÷ the median interval.

A plain ``jupyter lab`` with the extension over a temporary HOME with credentials, opened in Debian's Chromium
through Playwright (loopback only). Every request whose path starts with ``/qcs-jupyter/`` is recorded. The page
counts as idle ``SETTLE_S`` seconds after the status item first shows a state; every interval between two
consecutive panel requests that ends in the idle window is an idle interval (the first one runs from the last
page-load request to the first poll). The figure is 60 ÷ the median idle interval: it does not depend on where a
window happens to cut the polling, and a second request per poll (a short interval) pulls the median down.

The panel polls every ``pollInterval`` seconds (a setting, default 60), which this figure is about. Full mode
watches 190 s (three intervals); ``--quick`` watches 70 s (one interval). With no interval in the window the
figure fails (a panel that stopped polling, or a window too short to judge).
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import time
from typing import Any
from urllib.parse import urlparse

from devstack.chromium import CHROMIUM_ARGS, only_loopback

from .common import Figure, Goal, Options
from .jupyter import JupyterProc

GOAL = Goal("<=", 1.0)
DEFAULT_POLL_S = 60
SETTLE_S = 5.0  # page load done: the requests before this are the page's own start-up


def watch(lab: JupyterProc, window_s: float) -> dict[str, Any]:
    """Open JupyterLab, wait for the panel's first status, then record requests for ``window_s`` seconds."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("Debian's chromium is not installed (scripts/setup.sh installs it)")
    ours: list[float] = []
    everything: list[float] = []

    def on_request(request: Any) -> None:
        now = time.monotonic()
        everything.append(now)
        if urlparse(request.url).path.startswith("/qcs-jupyter/"):
            ours.append(now)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(90_000)
            page.on("request", on_request)
            page.goto(f"{lab.url}/lab?token={lab.token}")
            page.locator(".qcs-jupyter-status-item[data-qcs-state]").wait_for()
            state = page.locator(".qcs-jupyter-status-item").get_attribute("data-qcs-state")
            start = time.monotonic()
            end = start + window_s
            for _ in range(int(window_s) + 5):  # wait_for_timeout lets Playwright deliver the events
                left = end - time.monotonic()
                if left <= 0:
                    break
                page.wait_for_timeout(min(1000.0, left * 1000))
        finally:
            browser.close()
    settled = start + SETTLE_S
    idle_intervals = [b - a for a, b in itertools.pairwise(ours) if settled < b <= end]
    return {
        "panel_state": state,
        "window_s": window_s,
        "settle_s": SETTLE_S,
        "qcs_requests_total": len(ours),
        "qcs_requests_at_load": len([t for t in ours if t <= settled]),
        "qcs_requests_idle": len([t for t in ours if settled < t <= end]),
        "idle_intervals_s": [round(i, 2) for i in idle_intervals],
        "intervals_s": [round(b - a, 2) for a, b in itertools.pairwise(ours)],
        "all_requests_idle": len([t for t in everything if settled < t <= end]),
    }


def run(opts: Options) -> Figure:
    window_s = 70.0 if opts.quick else 190.0
    with JupyterProc(opts.workdir / "lab", "lab") as lab:
        seen = watch(lab, window_s)
    intervals = seen["idle_intervals_s"]
    per_minute = round(60 / statistics.median(intervals), 2) if intervals else None
    opts.say(f"P6 idle intervals between panel requests: {intervals} s")
    figure = Figure(
        id="P6",
        name="panel requests per idle minute (browser, default poll): 60 ÷ median interval",
        value=per_minute,
        unit="req/min",
        goal=GOAL,
        details={
            **seen,
            "poll_interval_s": DEFAULT_POLL_S,
            "idle_window": f"from {SETTLE_S:.0f} s after the status item showed a state, for the rest of the window",
            "requests_per_idle_minute_by_count": round(seen["qcs_requests_idle"] / ((window_s - SETTLE_S) / 60), 2),
        },
    )
    if not intervals:
        figure.problems.append(
            f"no interval between two panel requests ended in the idle window ({window_s - SETTLE_S:.0f} s)"
        )
    return figure
