"""P2: the credential handoff at server start, exactly as a starting server does it.

``HubLink(env).pull_blocking()`` with a token that carries ``custom:qcs:credentials!user`` (made through the
admin API): ``GET /hub/api/user`` (its scopes), ``GET /hub/api/qcs/credentials/{user}``, then
``CredentialStore().install(...)`` into a fresh temporary ``HOME`` (``CredentialStore`` finds ``~/.qcs`` through
``$HOME``). A fresh ``HubLink`` and an empty ``HOME`` per run: the server-start case. Against the Hub's own
API address (as ``JUPYTERHUB_API_URL`` is), not the proxy.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from qcs_jupyter.handoff import CREDENTIALS_ROUTE, CREDENTIALS_SCOPE
from qcs_jupyter.server.hubsync import HubLink

from .common import Figure, Goal, Options, patched_environ, quiet_logger, summary
from .stacks import hub_api_url, login_with_http, qcs_stack

USER = "bench-handoff"
GOAL = Goal("<=", 25.0)


def _pull_into_fresh_home(env: dict[str, str], home: Path) -> float:
    home.mkdir(parents=True)
    with patched_environ({"HOME": str(home)}):
        link = HubLink(env, profile=None, log=quiet_logger("handoff"))
        started = time.perf_counter()
        ok = link.pull_blocking()
        elapsed = time.perf_counter() - started
    if not ok or not (home / ".qcs" / "secrets.toml").is_file():
        raise RuntimeError(f"the handoff failed: {link.state.last_sync_error}")
    return elapsed


def _steady(env: dict[str, str], home: Path, n: int) -> tuple[list[float], list[float]]:
    """A running server's later pulls (same HubLink, files already there), and the Hub call alone."""
    pulls, fetches = [], []
    with patched_environ({"HOME": str(home)}):
        link = HubLink(env, profile=None, log=quiet_logger("handoff"))
        link.pull_blocking()
        for _ in range(n):
            started = time.perf_counter()
            link.pull_blocking()
            pulls.append(time.perf_counter() - started)
            started = time.perf_counter()
            link._call("GET", f"{CREDENTIALS_ROUTE}/{USER}")
            fetches.append(time.perf_counter() - started)
    return pulls, fetches


def run(opts: Options) -> Figure:
    n, warmup = (10, 2) if opts.quick else (50, 5)
    with qcs_stack(opts.workdir) as hub:
        login_with_http(hub, USER)
        token = hub.api("POST", f"/users/{USER}/tokens", {"scopes": [f"{CREDENTIALS_SCOPE}!user"], "note": "bench"})
        env = {"JUPYTERHUB_API_URL": hub_api_url(hub), "JUPYTERHUB_API_TOKEN": token["token"], "JUPYTERHUB_USER": USER}
        homes = opts.workdir / "homes"
        times = [_pull_into_fresh_home(env, homes / f"h{i}") for i in range(warmup + n)][warmup:]
        steady, fetch = _steady(env, homes / "steady", n)
    median_ms = statistics.median(times) * 1000
    return Figure(
        id="P2",
        name="credential handoff at server start (Hub API + write ~/.qcs), median",
        value=round(median_ms, 2),
        unit="ms",
        goal=GOAL,
        details={
            "server_start_ms": summary(times, 1000),
            "p95_within_goal": GOAL.met(summary(times, 1000)["p95"]),
            "later_pull_ms": summary(steady, 1000),
            "hub_credentials_call_only_ms": summary(fetch, 1000),
            "warmup_runs_dropped": warmup,
            "method": "fresh HubLink + empty temp HOME per run: GET /user, GET /qcs/credentials/{user}, install",
        },
    )
