"""P6: requests per idle minute from the QCS panel, counted in a real browser.

A plain ``jupyter lab`` with the extension over a temporary HOME with credentials, opened in Debian's Chromium
through Playwright (loopback only). Once the status item shows a state, every request whose path starts with
``/qcs-jupyter/`` is counted over an idle window that starts at the first status request.

The panel polls every ``pollInterval`` seconds (a setting, default 60). Full mode watches 150 s at the default;
``--quick`` watches 20 s and extrapolates (so one request in the window would read as 3 per minute). A shorter
``pollInterval`` cannot shorten the run: a changed interval applies only after the tick already scheduled with
the old one (60 s after page load), see the report.
"""

from __future__ import annotations

import itertools
import shutil
import time
from typing import Any
from urllib.parse import urlparse

from demo.chromium import CHROMIUM_ARGS, only_loopback

from .common import Figure, Goal, Options
from .jupyter import JupyterProc

GOAL = Goal("<=", 1.0)
DEFAULT_POLL_S = 60


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
            start = ours[0] if ours else time.monotonic()
            end = start + window_s
            for _ in range(int(window_s) + 5):  # wait_for_timeout lets Playwright deliver the events
                left = end - time.monotonic()
                if left <= 0:
                    break
                page.wait_for_timeout(min(1000.0, left * 1000))
        finally:
            browser.close()
    in_window = [t for t in ours if start < t <= end]
    return {
        "panel_state": state,
        "window_s": window_s,
        "qcs_requests_total": len(ours),
        "qcs_requests_in_window": len(in_window),
        "intervals_s": [round(b - a, 2) for a, b in itertools.pairwise(ours)],
        "all_requests_in_window": len([t for t in everything if start < t <= end]),
    }


def run(opts: Options) -> Figure:
    window_s = 20.0 if opts.quick else 150.0
    with JupyterProc(opts.workdir / "lab", "lab") as lab:
        seen = watch(lab, window_s)
    per_minute = seen["qcs_requests_in_window"] / (window_s / 60)
    opts.say(f"P6 {seen['qcs_requests_in_window']} status request(s) in an idle window of {window_s:.0f} s")
    return Figure(
        id="P6",
        name="panel requests per idle minute (browser, default 60 s poll)",
        value=round(per_minute, 2),
        unit="req/min",
        goal=GOAL,
        details={
            **seen,
            "poll_interval_s": DEFAULT_POLL_S,
            "resolution_per_minute": round(60 / window_s, 2),
            "extrapolated": window_s < 60,
            "window_starts_at": "the first qcs-jupyter/ request (page load); that request is not counted",
        },
    )
