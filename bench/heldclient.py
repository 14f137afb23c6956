"""P9: latency of the call that needs a refresh, for a pyQuil client held across expiries: through the Hub's
issuer against refreshing directly at the IdP.

One https stack on loopback (IdP with short access tokens, Hub over https, the stand-in QCS API that checks every
token at the IdP). A pyQuil 4.22 client (its own venv, as in a kernel) is loaded once and calls
``list_quantum_computers`` every ``INTERVAL`` s. When its token has expired the API answers 401 and the client
refreshes once and retries inside that same call: that call's wall time is one sample. The call that saw a 401
is found in the API's log by time. Two clients of different users:

- direct (baseline): ``~/.qcs`` made by the benchmark with a real IdP refresh token (a login at the IdP) and the
  IdP as issuer, as a user without JupyterHub has it.
- held: the user's server writes ``~/.qcs`` (the Hub's issuer and session refresh token) and keeps running, as in
  a deployment: the Hub refreshes at the IdP ahead of expiry, so it usually answers a client from its store.

The two clients run side by side (other users of the machine slow both alike).

Figure: median refresh-call latency held / direct. Goal <= 1.2.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack.localhub import CLIENT_VENVS, LocalHub
from devstack.qcsapi import ApiCall

from .common import Figure, Goal, Options, clean_env, summary, wait_until
from .stacks import login_with_http, qcs_stack, start_server

GOAL = Goal("<=", 1.2)
PYQUIL_PYTHON = CLIENT_VENVS / "pyquil" / "bin" / "python"
TTL = 3  # seconds; every TTL the held client's token expires and one call refreshes
INTERVAL = 0.2  # seconds between the client's calls
HELD_USER, DIRECT_USER = "bench-held", "bench-direct"

# Runs in the pyQuil venv: one client for the whole run, one JSON line per call, until the stop file appears.
CLIENT = """
import json, os, sys, time
from pyquil import list_quantum_computers
from pyquil.api import QCSClient

stop, interval, limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
client = QCSClient.load()
print(json.dumps({"issuer": client.oauth_session.auth_server.issuer}), flush=True)
deadline = time.monotonic() + limit
while not os.path.exists(stop) and time.monotonic() < deadline:
    at, started = time.time(), time.perf_counter()
    try:
        list_quantum_computers(qpus=True, qvms=False, client_configuration=client)
        error = None
    except Exception as e:
        error = f"{type(e).__name__}: {e}"[:300]
    print(json.dumps({"at": at, "seconds": time.perf_counter() - started, "error": error}), flush=True)
    time.sleep(interval)
os._exit(0)  # the client's runtime can crash at interpreter exit
"""


def write_direct_files(home: Path, hub: LocalHub, tokens: dict[str, Any]) -> None:
    """``~/.qcs`` as a user without JupyterHub has it: the IdP as issuer, a real refresh token."""
    qcs = home / ".qcs"
    qcs.mkdir(parents=True, mode=0o700)
    (qcs / "settings.toml").write_text(
        'default_profile_name = "default"\n[profiles.default]\n'
        f'api_url = "{hub.qcs_api.url}"\nauth_server_name = "default"\ncredentials_name = "default"\n'
        f'[auth_servers.default]\nclient_id = "{hub.client_id}"\nissuer = "{hub.idp.issuer}"\n'
    )
    secrets = qcs / "secrets.toml"
    secrets.touch(mode=0o600)
    secrets.write_text(
        "[credentials.default.token_payload]\n"
        f'access_token = "{tokens["access_token"]}"\nrefresh_token = "{tokens["refresh_token"]}"\n'
        f'token_type = "Bearer"\nexpires_in = {TTL}\n'
        f'updated_at = "{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}"\n'
    )


def classify(calls: list[dict[str, Any]], api_calls: list[ApiCall], subject: str) -> dict[str, list[float]]:
    """Split the client's calls into those during which the API refused a token (a refresh) and plain ones;
    ``refresh_at`` holds when each refreshing call started."""
    refused = [c.at for c in api_calls if c.subject == subject and not c.accepted]
    samples: dict[str, list[float]] = {"refresh": [], "plain": [], "refresh_at": []}
    for call in calls:
        start, end = call["at"] - 0.005, call["at"] + call["seconds"] + 0.05
        if any(start <= at <= end for at in refused):
            samples["refresh"].append(call["seconds"])
            samples["refresh_at"].append(call["at"])
        else:
            samples["plain"].append(call["seconds"])
    return samples


def hub_refreshes(hub: LocalHub, user: str) -> list[float]:
    """When the Hub refreshed ``user``'s tokens at the IdP, from its log (local time, as JupyterHub logs)."""
    found = re.findall(
        rf"^\[I (\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*QCS: refreshed the access token of {re.escape(user)}$",
        hub.log_text(),
        flags=re.MULTILINE,
    )
    return [datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f").timestamp() for t in found]


class ClientRun:
    """One held pyQuil client in a child process, its calls read as they happen."""

    def __init__(self, opts: Options, hub: LocalHub, home: Path, subject: str, label: str, limit: float) -> None:
        if not PYQUIL_PYTHON.exists():
            raise RuntimeError(f"{PYQUIL_PYTHON} is missing; run bash scripts/setup.sh (it makes .venv-clients)")
        self.hub, self.subject, self.label = hub, subject, label
        self.stop_file = opts.workdir / f"{label}.stop"
        env = clean_env(HOME=str(home), SSL_CERT_FILE=str(hub.idp.ca_path), QCS_SECRETS_READ_ONLY="true")
        self.proc = subprocess.Popen(
            [str(PYQUIL_PYTHON), "-c", CLIENT, str(self.stop_file), str(INTERVAL), str(limit)],
            cwd=opts.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        self.lines.extend(json.loads(line) for line in self.proc.stdout)

    @property
    def done(self) -> bool:
        return self.proc.poll() is not None

    def samples(self) -> dict[str, list[float]]:
        return classify(self.lines[1:], self.hub.qcs_api.calls, self.subject)

    def stop(self) -> dict[str, Any]:
        self.stop_file.touch()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(10)
        if not self.lines:
            raise RuntimeError(f"the {self.label} client printed nothing: {self.proc.stderr.read()[-2000:]}")
        calls = self.lines[1:]
        return {
            "issuer": self.lines[0]["issuer"],
            "samples": self.samples(),
            "calls": len(calls),
            "errors": [c["error"] for c in calls if c["error"]],
        }


def describe(result: dict[str, Any]) -> dict[str, Any]:
    refresh, plain = result["samples"]["refresh"], result["samples"]["plain"]
    return {
        "issuer": result["issuer"],
        "refresh_call_ms": summary(refresh, 1000),
        "plain_call_ms": summary(plain, 1000),
        "extra_ms_median": round((statistics.median(refresh) - statistics.median(plain)) * 1000, 2)
        if refresh and plain
        else None,
        "refresh_call_samples_ms": [round(s * 1000, 2) for s in refresh],
        "calls": result["calls"],
        "errors": result["errors"][:5],
    }


def run(opts: Options) -> Figure:
    need = 5 if opts.quick else 20
    limit = need * TTL * 3 + 60
    with qcs_stack(
        opts.workdir / "stack",
        ttl=TTL,
        hub_https=True,
        qcs_api=True,
        refresh_margin=2,
        auth_refresh_age=1,
        sync_margin=1.5,
    ) as hub:
        tokens = hub.idp.login(hub.client_id, hub.callback_url, DIRECT_USER, client_secret=hub.client_secret)
        direct_home = opts.workdir / "direct-home"
        write_direct_files(direct_home, hub, tokens)
        login_with_http(hub, HELD_USER)
        start_server(hub, HELD_USER)
        secrets = hub.home(HELD_USER) / ".qcs" / "secrets.toml"
        wait_until(secrets.exists, 30, "the user's server to write ~/.qcs")

        # Side by side, so whatever else loads the machine meanwhile falls on both.
        hub.idp.reset_stats()
        runs = {
            "direct": ClientRun(opts, hub, direct_home, DIRECT_USER, "direct", limit),
            "held": ClientRun(opts, hub, hub.home(HELD_USER), HELD_USER, "held", limit),
        }
        try:
            wait_until(
                lambda: all(r.done or len(r.samples()["refresh"]) >= need for r in runs.values()),
                limit + 10,
                f"{need} refreshing calls of each client",
                interval=0.5,
            )
        finally:
            results = {name: r.stop() for name, r in runs.items()}
        idp = hub.idp.stats()
        hub_refresh_times = hub_refreshes(hub, HELD_USER)
    direct, held = results["direct"], results["held"]
    inside = [
        at
        for at, seconds in zip(held["samples"]["refresh_at"], held["samples"]["refresh"], strict=True)
        if any(at <= t <= at + seconds for t in hub_refresh_times)
    ]
    for name, r in results.items():
        opts.say(
            f"P9 {name}: {len(r['samples']['refresh'])} refreshing call(s) of {r['calls']}, {len(r['errors'])} error(s)"
        )

    details = {
        "direct": describe(direct),
        "held": describe(held),
        "client": "pyquil 4.22.0 (qcs-sdk-python 0.21.22)",
        "access_token_ttl_s": TTL,
        "call_interval_s": INTERVAL,
        "refreshes_wanted": need,
        "held_issuer_is_hub": held["issuer"] == f"{hub.url}/hub/api/qcs/issuer",
        # The direct client's refreshes plus the Hub's own (for the running server and the held client).
        "idp_refresh_grants": idp.get("refresh_ok"),
        # Held refresh calls the Hub answered only after refreshing at the IdP itself (the rest from its store).
        "held_refresh_calls_with_hub_idp_refresh": len(inside),
    }
    problems = [f"{name}: {r['errors'][0]}" for name, r in (("direct", direct), ("held", held)) if r["errors"]]
    short = [name for name, r in (("direct", direct), ("held", held)) if len(r["samples"]["refresh"]) < need]
    if short:
        problems.append(f"fewer than {need} refreshing calls: {', '.join(short)}")
    if not details["held_issuer_is_hub"]:
        problems.append(f"the held client did not load the Hub's issuer but {held['issuer']}")
    value = None
    if not problems:
        value = round(
            statistics.median(held["samples"]["refresh"]) / statistics.median(direct["samples"]["refresh"]), 2
        )
    return Figure(
        id="P9",
        name="held pyQuil client: refresh-call latency via the Hub / direct at the IdP (median)",
        value=value,
        unit="x",
        goal=GOAL,
        details=details,
        error="; ".join(problems) or None,
    )
