"""P1: a server's time to listening with QCSAuthenticator ÷ the same with plain GenericOAuthenticator.

Two Hubs of the same kind (``LocalHub`` and ``BaselineHub``) against one IdP. One login per Hub, one
unmeasured warm-up start, then N stop+start cycles per Hub through the admin API, interleaved A,B then B,A so
that drift (another process on the machine, caches) falls on both alike. Each QCS start comes at least
``FORCED_REFRESH_MIN_AGE`` after the last refresh, so it pays the IdP refresh a real restart pays; the plain
Hub's servers run without the qcs_jupyter server extension.

Judged on the time from the start request until the server logs "Jupyter Server ... is running at" (its
extensions loaded, ``~/.qcs`` written, about to serve): that is what qcs-jupyter adds to a start. The Hub's own
"ready" (polled by the Hub with a randomized backoff, then by us) and the Hub's "took X seconds" are reported
beside it; they carry the Hub's polling noise. Figure: median ÷ median, with a bootstrap interval.

``extension_imports`` says what the extension's start path imports beyond what a single-user JupyterLab server
imports anyway (a fresh process: ``import qcs_jupyter.server`` and a first ``install`` of a token set, as the
first pull does), grouped by top-level package, median of three runs: the place to look when the ratio grows.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .common import REPO, Figure, Goal, Options, clean_env, ratio_of_medians, sleep_until_epoch, summary
from .stacks import CLIENT_ID, BaselineHub, LocalHub, free_port, login_with_http, make_idp, start_server, stop_server

USER = "bench-spawn"
GOAL = Goal("<=", 1.03)
_HUB_LOGGED = re.compile(rf"User {USER} took ([0-9.]+) seconds to start")
_LISTENING = re.compile(
    r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] Jupyter Server \S+ is running at:", re.M
)
# The Hub hands over to the spawner: before it, the Hub's part of a start (auth refresh, pre-spawn hooks).
_SPAWNING = re.compile(r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) JupyterHub spawner:\d+\] Spawning ", re.M)

# What a single-user JupyterLab server imports anyway, then the extension's start path (no Hub: the pull's
# install is done directly). The JWT is made by hand so that making it imports nothing.
_IMPORT_PROBE = r"""
import base64, json, os, sys, tempfile, time
import jupyterhub.singleuser, jupyter_server.serverapp, jupyterlab.labapp
before = set(sys.modules)
t0 = time.perf_counter()
import qcs_jupyter.server
t1 = time.perf_counter()
from qcs_jupyter.credentials import CredentialStore, QCSPaths, TokenSet
def part(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
now = int(time.time())
jwt = part({"alg": "RS256", "typ": "JWT"}) + "." + part({"sub": "ada", "exp": now + 3600, "iat": now}) + ".c2ln"
from pathlib import Path
home = Path(tempfile.mkdtemp(prefix="qcs-bench-import-"))
CredentialStore(paths=QCSPaths.from_env({}, home=home)).install(TokenSet(access_token=jwt, refresh_token="r"))
t2 = time.perf_counter()
import shutil; shutil.rmtree(home)
print("RESULT " + json.dumps({"import_ms": (t1 - t0) * 1e3, "install_ms": (t2 - t1) * 1e3,
                              "added": sorted(set(sys.modules) - before)}))
"""


def _import_run() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _IMPORT_PROBE],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
        env=clean_env(),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the import probe failed: {proc.stderr.strip()[-800:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    added = set(result.pop("added"))
    by_package: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():  # "import time: self [us] | cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        if name in added:
            by_package[name.split(".")[0]] += int(parts[0]) / 1000
    result["modules_added"] = len(added)
    result["by_package_ms"] = dict(by_package)
    return result


def extension_imports(runs: int = 3) -> dict[str, Any]:
    """What the extension's start path imports on top of a single-user server, median of ``runs`` fresh processes."""
    results = [_import_run() for _ in range(runs)]
    packages = {p for r in results for p in r["by_package_ms"]}
    by_package = {p: round(statistics.median(r["by_package_ms"].get(p, 0.0) for r in results), 1) for p in packages}
    return {
        "import_qcs_jupyter_server_ms": round(statistics.median(r["import_ms"] for r in results), 1),
        "first_install_ms": round(statistics.median(r["install_ms"] for r in results), 1),
        "modules_added": max(r["modules_added"] for r in results),
        "import_self_ms_by_package": dict(sorted(by_package.items(), key=lambda kv: -kv[1])),
        "runs": runs,
        "method": "fresh process after importing jupyterhub.singleuser, jupyter_server.serverapp and "
        "jupyterlab.labapp: -X importtime self times of the modules added by import qcs_jupyter.server and a "
        "first CredentialStore.install",
    }


def _wait_past_forced_refresh_floor(hub: LocalHub) -> None:
    """A QCS start right after the previous one skips the IdP (tokens seconds old); wait that window out."""
    obtained = (hub.auth_state(USER) or {}).get("qcs", {}).get("access_token_obtained_at") or 0
    sleep_until_epoch(obtained + FORCED_REFRESH_MIN_AGE + 0.5, FORCED_REFRESH_MIN_AGE + 1)


def _logged_after(hub: LocalHub, pattern: re.Pattern[str], since: float) -> float | None:
    """Epoch time of the first line matching ``pattern`` logged at or after ``since`` (log times are local)."""
    for stamp in pattern.findall(hub.log_text()):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if at >= since:
            return at
    return None


def _cycle(hub: LocalHub, *, qcs: bool) -> tuple[float | None, float | None, float]:
    """Stop, then start. Seconds from the start request until the server logged that it listens, until the Hub
    handed over to the spawner, and until the Hub said ready."""
    stop_server(hub, USER)
    if qcs:
        _wait_past_forced_refresh_floor(hub)
    since = time.time()
    ready = start_server(hub, USER)
    # Log lines have millisecond resolution; allow for their rounding down.
    listening = _logged_after(hub, _LISTENING, since - 0.001)
    spawning = _logged_after(hub, _SPAWNING, since - 0.001)
    return (
        None if listening is None else listening - since,
        None if spawning is None else spawning - since,
        ready,
    )


def _hub_logged(hub: LocalHub, n: int) -> list[float]:
    """The Hub's own "took X seconds to start" for the last ``n`` starts."""
    return [float(x) for x in _HUB_LOGGED.findall(hub.log_text())][-n:]


def run(opts: Options) -> Figure:
    n = 3 if opts.quick else 20
    imports = extension_imports(1 if opts.quick else 3)
    opts.say(f"P1 extension start path: {imports['import_self_ms_by_package']}")
    ports = [free_port(), free_port()]
    labels = ("qcs", "generic")
    listen: dict[str, list[float]] = {label: [] for label in labels}
    hub_part: dict[str, list[float]] = {label: [] for label in labels}
    ready: dict[str, list[float]] = {label: [] for label in labels}
    problems: list[str] = []
    with make_idp(opts.workdir / "idp", ports, access_token_ttl=3600) as idp:
        qcs = LocalHub(opts.workdir / "qcs", idp, port=ports[0], client_id=CLIENT_ID)
        base = BaselineHub(opts.workdir / "generic", idp, port=ports[1], client_id=CLIENT_ID)
        with qcs, base:
            hubs = {"qcs": qcs, "generic": base}
            for label, hub in hubs.items():
                login_with_http(hub, USER)
                opts.say(f"P1 warm-up start on the {label} hub: {start_server(hub, USER):.2f} s")
            idp.reset_stats()
            for i in range(n):
                for label in labels if i % 2 == 0 else tuple(reversed(labels)):
                    listening, spawning, was_ready = _cycle(hubs[label], qcs=label == "qcs")
                    ready[label].append(was_ready)
                    if listening is None or spawning is None:
                        problems.append(f"{label} start {i + 1}: no 'Spawning' or 'is running at' line in the log")
                    else:
                        listen[label].append(listening)
                        hub_part[label].append(spawning)
                last = {label: f"{v[-1]:.2f} s" if v else "-" for label, v in listen.items()}
                opts.say(f"P1 round {i + 1}/{n}: listening after qcs {last['qcs']}, generic {last['generic']}")
            refreshes = idp.stats().get("refresh_ok", 0)
            logged = {label: _hub_logged(hub, n) for label, hub in hubs.items()}
            for hub in hubs.values():
                stop_server(hub, USER)
    if refreshes < n:
        problems.append(f"only {refreshes} IdP refreshes for {n} QCS starts: the starts did not pay a real refresh")
    spread = ratio_of_medians(listen["qcs"], listen["generic"]) if all(listen.values()) else None
    # Where the difference goes: the Hub's part (until it hands over to the spawner) and the server's part.
    server_part = {label: [a - b for a, b in zip(listen[label], hub_part[label], strict=True)] for label in labels}
    extra_ms = {
        f"{part}_ms": round((statistics.median(values["qcs"]) - statistics.median(values["generic"])) * 1000, 1)
        for part, values in (("hub_part", hub_part), ("server_part", server_part), ("until_listening", listen))
        if all(values.values())
    }
    ready_ratio = round(statistics.median(ready["qcs"]) / statistics.median(ready["generic"]), 3)
    logged_ratio = None
    if all(len(v) == n for v in logged.values()):
        logged_ratio = round(statistics.median(logged["qcs"]) / statistics.median(logged["generic"]), 3)
    return Figure(
        id="P1",
        name="time to listening, QCSAuthenticator ÷ GenericOAuthenticator (median)",
        value=spread["ratio"] if spread else None,
        unit="ratio",
        goal=GOAL,
        error=None if spread else "no start logged 'is running at' on one of the Hubs",
        problems=problems,
        details={
            "spawns_each": n,
            "ratio_spread": spread,
            "until_listening_qcs_s": summary(listen["qcs"], digits=3),
            "until_listening_generic_s": summary(listen["generic"], digits=3),
            "qcs_extra_median": extra_ms,
            "hub_part_qcs_s": summary(hub_part["qcs"], digits=3),
            "hub_part_generic_s": summary(hub_part["generic"], digits=3),
            "server_part_qcs_s": summary(server_part["qcs"], digits=3),
            "server_part_generic_s": summary(server_part["generic"], digits=3),
            "until_ready_qcs_s": summary(ready["qcs"], digits=3),
            "until_ready_generic_s": summary(ready["generic"], digits=3),
            "until_ready_ratio": ready_ratio,
            "hub_logged_qcs_s": summary(logged["qcs"], digits=3),
            "hub_logged_generic_s": summary(logged["generic"], digits=3),
            "hub_logged_ratio": logged_ratio,
            "idp_refreshes_during_qcs_starts": refreshes,
            "extension_imports": imports,
            "method": "admin API stop+start, interleaved A,B then B,A; 'until_listening' = start request until the "
            "server logs 'is running at' (log time, ms resolution), split into 'hub_part' (until the Hub logs "
            "'Spawning') and 'server_part' (from there); 'until_ready' = until the Hub's API says ready (polled "
            "every 50 ms, after the Hub's own randomized readiness backoff)",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
