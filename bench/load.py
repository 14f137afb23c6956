"""P7 (``--load``): 200 users log in through the IdP form, then each makes a refresh-triggering request after
their access token expired; errors, total time, and the Hub's event-loop lag.

Logins and requests run on a bounded pool of threads (20). The lag is the latency of a cheap Hub request,
``GET /hub/api/`` on the Hub's own port (not through the proxy), sampled every 100 ms from a separate thread:
at idle before the load, then during the logins and during the refreshes. A rotating IdP with a short
access-token lifetime; ``auth_refresh_age=1`` so each request asks the authenticator.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from .common import Figure, Goal, Options, Ticker, sleep_until_epoch, summary
from .stacks import LocalHub, login_with_http, qcs_stack

GOAL = Goal("==", 0)
TTL = 30
SAMPLE_EVERY_S = 0.1


class LagProbe:
    """Times ``GET /hub/api/`` on the Hub's port over one keep-alive connection; samples tagged by phase."""

    def __init__(self, hub: LocalHub) -> None:
        self.port = hub.hub_port
        self.phase = "idle"
        self.samples: dict[str, list[float]] = {}
        self.failures = 0
        self._conn: http.client.HTTPConnection | None = None

    def sample(self) -> None:
        phase = self.phase
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._conn.request("GET", "/hub/api/")
            response = self._conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            if self._conn is not None:
                self._conn.close()
            self._conn = None
        if ok:
            self.samples.setdefault(phase, []).append(time.perf_counter() - started)
        else:
            self.failures += 1


def _pool_map(fn: Callable[[int], Any], n: int, threads: int) -> tuple[list[Any], float]:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(fn, range(n), timeout=900))
    return results, time.perf_counter() - started


def run(opts: Options) -> Figure:
    users, threads, idle_s = (20, 5, 3.0) if opts.quick else (200, 20, 10.0)
    names = [f"load-{i:03d}" for i in range(users)]
    sessions: list[requests.Session | None] = [None] * users
    errors: list[str] = []
    lock = threading.Lock()

    def note(message: str) -> None:
        with lock:
            errors.append(message)

    with qcs_stack(opts.workdir, ttl=TTL, rotate=True, auth_refresh_age=1) as hub:
        probe = LagProbe(hub)
        ticker = Ticker(probe.sample, SAMPLE_EVERY_S, max_calls=int(3600 / SAMPLE_EVERY_S))
        ticker.start()
        try:
            time.sleep(idle_s)

            def login(i: int) -> None:
                try:
                    sessions[i] = login_with_http(hub, names[i])
                except Exception as e:
                    note(f"login {names[i]}: {type(e).__name__}: {str(e)[:120]}")

            probe.phase = "logins"
            _, login_s = _pool_map(login, users, threads)
            probe.phase = "waiting"
            opts.say(f"P7 {users} logins in {login_s:.1f} s; waiting for the tokens to expire")
            latest = max((hub.auth_state(n) or {}).get("qcs", {}).get("access_token_expires_at") or 0 for n in names)
            sleep_until_epoch(latest + 0.5, TTL + 600)
            hub.idp.reset_stats()

            def refresh(i: int) -> None:
                session = sessions[i]
                if session is None:
                    return
                try:
                    code = session.get(f"{hub.url}/hub/api/user", timeout=60).status_code
                    if code != 200:
                        note(f"request {names[i]}: HTTP {code}")
                except requests.RequestException as e:
                    note(f"request {names[i]}: {type(e).__name__}")

            probe.phase = "refreshes"
            _, refresh_s = _pool_map(refresh, users, threads)
            probe.phase = "after"
        finally:
            ticker.stop()
        stats = hub.idp.stats()
    idle = probe.samples.get("idle", [])
    loaded = probe.samples.get("logins", []) + probe.samples.get("refreshes", [])
    idle_p = summary(idle, 1000)
    load_p = summary(loaded, 1000)
    refreshes = stats["token_requests"].get("refresh_token", 0)
    opts.say(f"P7 refreshes in {refresh_s:.1f} s; {len(errors)} error(s); IdP refresh calls {refreshes}")
    return Figure(
        id="P7",
        name=f"load: {users} users log in, then refresh after expiry — errors",
        value=len(errors),
        unit="errors",
        goal=GOAL,
        details={
            "users": users,
            "threads": threads,
            "login_phase_s": round(login_s, 2),
            "refresh_phase_s": round(refresh_s, 2),
            "total_s": round(login_s + refresh_s, 2),
            "logins_per_s": round(users / login_s, 2),
            "idp_refresh_calls": refreshes,
            "idp_refresh_failed": stats.get("refresh_failed"),
            "errors_first": errors[:10],
            "hub_lag_ms": {
                "idle": idle_p,
                "during_logins": summary(probe.samples.get("logins", []), 1000),
                "during_refreshes": summary(probe.samples.get("refreshes", []), 1000),
                "during_load": load_p,
                "p50_ratio_load_to_idle": round(load_p["median"] / idle_p["median"], 2) if idle and loaded else None,
                "p95_ratio_load_to_idle": round(load_p["p95"] / idle_p["p95"], 2) if idle and loaded else None,
                "probe_failures": probe.failures,
                "probe": f"GET /hub/api/ on the Hub's own port every {SAMPLE_EVERY_S * 1000:.0f} ms, keep-alive",
            },
            "access_token_ttl_s": TTL,
        },
    )
