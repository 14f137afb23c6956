"""P1: server spawn time with QCSAuthenticator ÷ the same with plain GenericOAuthenticator.

Two Hubs of the same kind (``LocalHub`` and ``BaselineHub``) against one IdP. One login per Hub, one
unmeasured warm-up start, then N stop+start cycles per Hub through the admin API, interleaved A, B, A, B
so that drift (another process on the machine, caches) falls on both alike. Each QCS start comes at least
``FORCED_REFRESH_MIN_AGE`` after the last refresh, so it pays the IdP refresh a real restart pays.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import datetime

from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .common import Figure, Goal, Options, sleep_until_epoch, summary
from .stacks import CLIENT_ID, BaselineHub, LocalHub, free_port, login_with_http, make_idp, start_server, stop_server

USER = "bench-spawn"
GOAL = Goal("<=", 1.05)
_HUB_LOGGED = re.compile(rf"User {USER} took ([0-9.]+) seconds to start")
_LISTENING = re.compile(
    r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] Jupyter Server \S+ is running at:", re.M
)


def _wait_past_forced_refresh_floor(hub: LocalHub) -> None:
    """A QCS start right after the previous one skips the IdP (tokens seconds old); wait that window out."""
    obtained = (hub.auth_state(USER) or {}).get("qcs", {}).get("access_token_obtained_at") or 0
    sleep_until_epoch(obtained + FORCED_REFRESH_MIN_AGE + 0.5, FORCED_REFRESH_MIN_AGE + 1)


def _listening_after(hub: LocalHub, since: float) -> float | None:
    """Epoch time of the first "Jupyter Server ... is running at" line logged after ``since`` (local time)."""
    for stamp in _LISTENING.findall(hub.log_text()):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if at >= since:
            return at
    return None


def _cycle(hub: LocalHub, *, qcs: bool) -> tuple[float, float | None]:
    """Stop, then start; (seconds until the Hub says ready, seconds until the server process listened)."""
    stop_server(hub, USER)
    if qcs:
        _wait_past_forced_refresh_floor(hub)
    since = time.time()
    ready = start_server(hub, USER)
    listening = _listening_after(hub, since - 0.002)
    return ready, None if listening is None else listening - since


def _hub_logged(hub: LocalHub, n: int) -> list[float]:
    """The Hub's own "took X seconds to start" for the last ``n`` starts (a cross-check free of our polling)."""
    return [float(x) for x in _HUB_LOGGED.findall(hub.log_text())][-n:]


def run(opts: Options) -> Figure:
    n = 3 if opts.quick else 12
    ports = [free_port(), free_port()]
    with make_idp(opts.workdir / "idp", ports, access_token_ttl=3600) as idp:
        qcs = LocalHub(opts.workdir / "qcs", idp, port=ports[0], client_id=CLIENT_ID)
        base = BaselineHub(opts.workdir / "generic", idp, port=ports[1], client_id=CLIENT_ID)
        with qcs, base:
            hubs = {"qcs": qcs, "generic": base}
            for label, hub in hubs.items():
                login_with_http(hub, USER)
                opts.say(f"P1 warm-up start on the {label} hub: {start_server(hub, USER):.2f} s")
            times: dict[str, list[float]] = {"qcs": [], "generic": []}
            listen: dict[str, list[float]] = {"qcs": [], "generic": []}
            idp.reset_stats()
            for i in range(n):
                for label, hub in hubs.items():
                    ready, listening = _cycle(hub, qcs=label == "qcs")
                    times[label].append(ready)
                    if listening is not None:
                        listen[label].append(listening)
                opts.say(f"P1 round {i + 1}/{n}: qcs {times['qcs'][-1]:.2f} s, generic {times['generic'][-1]:.2f} s")
            refreshes = idp.stats().get("refresh_ok", 0)
            logged = {label: _hub_logged(hub, n) for label, hub in hubs.items()}
            for hub in hubs.values():
                stop_server(hub, USER)
    medians = {label: statistics.median(values) for label, values in times.items()}
    ratio = medians["qcs"] / medians["generic"]
    logged_ratio = listen_ratio = None
    if all(len(v) == n for v in logged.values()):
        logged_ratio = round(statistics.median(logged["qcs"]) / statistics.median(logged["generic"]), 3)
    if all(listen.values()):
        listen_ratio = round(statistics.median(listen["qcs"]) / statistics.median(listen["generic"]), 3)
    return Figure(
        id="P1",
        name="spawn time, QCSAuthenticator ÷ GenericOAuthenticator (median)",
        value=round(ratio, 3),
        unit="ratio",
        goal=GOAL,
        details={
            "spawns_each": n,
            "qcs_s": summary(times["qcs"], digits=3),
            "generic_s": summary(times["generic"], digits=3),
            "hub_logged_qcs_s": summary(logged["qcs"], digits=3),
            "hub_logged_generic_s": summary(logged["generic"], digits=3),
            "hub_logged_ratio": logged_ratio,
            "until_listening_qcs_s": summary(listen["qcs"], digits=3),
            "until_listening_generic_s": summary(listen["generic"], digits=3),
            "until_listening_ratio": listen_ratio,
            "until_listening_within_goal": GOAL.met(listen_ratio),
            "idp_refreshes_during_qcs_starts": refreshes,
            "method": "admin API stop+start, ready polled every 50 ms, interleaved A,B; generic hub runs its "
            "servers without the qcs_jupyter server extension. 'until_listening' = POST until the server logs "
            "'is running at' (free of the Hub's randomized readiness backoff, which makes 'ready' noisy)",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
