"""P4: IdP refresh calls caused by 100 concurrent Hub requests of one user right after the access token expired.

A rotating IdP (a second refresh with the same refresh token would revoke the grant), short-lived tokens, and
``auth_refresh_age=1`` so every request asks the authenticator. One login, then per round: wait until the
access token has expired, reset the IdP's counters, release 100 requests at once (a barrier; each its own
connection with the login cookie) to ``GET /hub/api/user``, and count token requests with
``grant_type=refresh_token``. Goal: exactly 1 in every round, and every request answered 200.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from .common import Figure, Goal, Options, sleep_until_epoch
from .stacks import LocalHub, login_with_http, qcs_stack

USER = "bench-burst"
TTL = 20
GOAL = Goal("==", 1)


def burst(hub: LocalHub, cookies: Any, n: int) -> list[int | str]:
    """``n`` threads, each with its own session, released together; the status codes (or error names)."""
    barrier = threading.Barrier(n, timeout=60)
    results: list[int | str] = [0] * n

    def call(i: int) -> None:
        with requests.Session() as session:
            session.trust_env = False
            session.cookies.update(cookies)
            try:
                barrier.wait()
                results[i] = session.get(f"{hub.url}/hub/api/user", timeout=60).status_code
            except (requests.RequestException, threading.BrokenBarrierError) as e:
                results[i] = type(e).__name__

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def run(opts: Options) -> Figure:
    rounds, n = (1, 100) if opts.quick else (3, 100)
    per_round: list[dict[str, Any]] = []
    with qcs_stack(opts.workdir, ttl=TTL, rotate=True, refresh_margin=8, auth_refresh_age=1) as hub:
        cookies = login_with_http(hub, USER).cookies
        for r in range(rounds):
            expires = hub.auth_state(USER)["qcs"]["access_token_expires_at"]
            sleep_until_epoch(expires + 0.5, TTL + 5)
            hub.idp.reset_stats()
            after_expiry = time.time() - expires
            started = time.perf_counter()
            codes = burst(hub, cookies, n)
            seconds = time.perf_counter() - started
            stats = hub.idp.stats()
            refreshes = stats["token_requests"].get("refresh_token", 0)
            per_round.append(
                {
                    "idp_refresh_calls": refreshes,
                    "refresh_failed": stats.get("refresh_failed"),
                    "non_200": [c for c in codes if c != 200],
                    "seconds_for_all": round(seconds, 3),
                    "burst_started_s_after_expiry": round(after_expiry, 2),
                }
            )
            opts.say(f"P4 round {r + 1}/{rounds}: {refreshes} refresh call(s), {codes.count(200)}/{n} answered 200")
    worst = max(per_round, key=lambda p: abs(p["idp_refresh_calls"] - 1))
    ok = all(not p["non_200"] and not p["refresh_failed"] for p in per_round)
    return Figure(
        id="P4",
        name=f"IdP refresh calls for {n} concurrent requests after expiry (worst round)",
        value=worst["idp_refresh_calls"] if ok else None,
        unit="calls",
        goal=GOAL,
        details={"rounds": per_round, "concurrent_requests": n, "access_token_ttl_s": TTL, "rotating_idp": True},
        error=None if ok else "some requests were not answered 200 or a refresh failed (see rounds)",
    )
