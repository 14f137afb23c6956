"""P2: the credential handoff at server start, exactly as a starting server does it, cold.

The user's server is really spawned, so the Hub has recorded it; its own API token (the one JupyterHub issued to it)
is what every pull carries. Each run is a **fresh Python process** (as a starting server is) that builds a
``QCSHubClient`` and times its first ``pull_blocking()``: ``GET /hub/api/qcs/credentials/{user}`` then
``CredentialStore().install(...)`` into an empty temporary ``HOME``. Imports are not timed (server start pays them
anyway; P1 covers them); nothing is warmed up or dropped. Against the Hub's own API address (as
``JUPYTERHUB_API_URL`` is), not the proxy.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from .common import Figure, Goal, Options, summary
from .stacks import hub_api_url, login_with_http, qcs_stack, server_token

USER = "bench-handoff"
GOAL = Goal("<=", 25.0)

_ONE_COLD_PULL = """
import json, logging, sys, time
from qcs_jupyter.server.hub_client import QCSHubClient
import qcs_jupyter.credentials, qcs_jupyter.handoff  # the pull imports these on first use: not timed (P1 has them)
client = QCSHubClient(log=logging.getLogger("quiet"))
started = time.perf_counter()
ok = client.pull_blocking()
elapsed = time.perf_counter() - started
print(json.dumps({"ok": ok, "seconds": elapsed, "error": client.state.last_sync_error}))
"""


def _cold_pull(env: dict[str, str], home: Path) -> float:
    home.mkdir(parents=True)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("QCS_", "JUPYTERHUB_"))}
    child_env.update(env, HOME=str(home))
    out = subprocess.run(
        [sys.executable, "-c", _ONE_COLD_PULL], env=child_env, capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["ok"] or not (home / ".qcs" / "secrets.toml").is_file():
        raise RuntimeError(f"the handoff failed: {result['error']}")
    return result["seconds"]


def run(opts: Options) -> Figure:
    n = 10 if opts.quick else 30
    with qcs_stack(opts.workdir) as hub:
        session = login_with_http(hub, USER)
        session.get(f"{hub.url}/hub/spawn/{USER}", timeout=90)
        hub.wait_for_server(USER)
        env = {
            "JUPYTERHUB_API_URL": hub_api_url(hub),
            "JUPYTERHUB_API_TOKEN": server_token(hub, USER),
            "JUPYTERHUB_USER": USER,
        }
        homes = opts.workdir / "homes"
        times = [_cold_pull(env, homes / f"h{i}") for i in range(n)]
    median_ms = statistics.median(times) * 1000
    return Figure(
        id="P2",
        name="credential handoff at server start, cold (Hub API + write ~/.qcs), median",
        value=round(median_ms, 2),
        unit="ms",
        goal=GOAL,
        details={
            "server_start_ms": summary(times, 1000),
            "p95_within_goal": GOAL.met(summary(times, 1000)["p95"]),
            "method": "a fresh process per run, its first pull with the spawned server's own token, empty HOME",
        },
    )
