"""P1: a server's time to listening with QCSAuthenticator ÷ the same with plain GenericOAuthenticator.

Two Hubs of the same kind (``LocalHub`` and ``BaselineHub``) against one IdP. One login per Hub, one
unmeasured warm-up start, then N (60) rounds: both Hubs' servers are stopped through the admin API, both sides
wait ``GAP`` seconds, and both servers are started at the same moment, each pinned to a CPU of its own (the
two sides swap CPUs every round). The gap is longer than ``FORCED_REFRESH_MIN_AGE``, so every QCS start pays
the IdP refresh a real restart pays. The plain Hub's servers run without the qcs_jupyter server extension.

Why together: on this shared 2-CPU machine the same start's time and CPU time move by ±30 % from one minute
to the next (a bare single-user start here: 1.9–3.1 s of CPU, same work, within ten minutes). Starts of a round
taken one after the other (12 s apart, or 3 s apart in alternating order) gave per-round ratios with a spread
(standard deviation) of 15 % and more, and a second start in a round ran at another speed than the first, so the
ratio hung on the order. Started together, the two starts share the machine's state of that moment: the spread
fell to 6–8 %. The Hubs, the proxy and the IdP are not pinned; what the QCS Hub adds to a start (its refresh at the
IdP, a few ms of CPU) can land on either CPU, so a little of it may slow the plain side too.

Judged on the time from the start request until the server logs "Jupyter Server ... is running at" (its
extensions loaded, about to serve): that is what qcs-jupyter adds to a start. The extension's first pull of
credentials starts at that moment; whatever reads ``~/.qcs`` first (a kernel, a terminal, the status) waits for
it, so the time from listening until the server logs that the pull wrote the files is reported beside
(``first_pull_after_listening_s``: the longest a kernel started at once would wait). So are the Hub's own
"ready" (polled by the Hub with a randomized backoff, then by us) and the Hub's "took X seconds"; they carry the
Hub's polling noise. Figure: the median over rounds of the round's QCS start ÷ its plain start, with a 90 %
bootstrap interval over rounds; the figure also fails when the interval's upper end exceeds ``CI_HIGH_MAX``
(the run was too noisy to show the goal is met). The ratio of the two sides' medians is reported beside it
(``ratio_of_medians``), and every round's pair (``rounds``).

Both sides' servers run through the same small launcher (``_CPU_PROBE``: pin to the round's CPU,
jupyterhub-singleuser, plus one log line) that logs the process's CPU time (user + system, all threads), its
full garbage collections (count, seconds) and its number of modules when it starts listening;
``cpu_until_listening`` (median of paired ratios, bootstrap interval) says what the extension adds to the work
of a start. It is reported, not judged.

``extension_imports`` says what the extension imports before the server listens beyond what a single-user
JupyterLab server imports anyway (a fresh process: ``import qcs_jupyter.server``), and what the first pull
imports after it listens (a first ``install`` of a token set), grouped by top-level package, median of three
runs: the place to look when the ratio grows.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .common import REPO, Figure, Goal, Options, clean_env, median_of_paired_ratios, ratio_of_medians, summary
from .stacks import (
    CLIENT_ID,
    BaselineHub,
    LocalHub,
    free_port,
    login_with_http,
    make_idp,
    start_server,
    stop_server,
    wait_until_stopped,
)

USER = "bench-spawn"
GOAL = Goal("<=", 1.03)
#: The upper end of the ratio's 90 % interval must not exceed this either.
CI_HIGH_MAX = 1.06
#: Seconds from a round's stops to its starts: past the forced-refresh floor, so QCS starts refresh.
GAP = FORCED_REFRESH_MIN_AGE + 1.0
#: Rounds (one start a side each, at the same moment) in a full run.
ROUNDS = 60
_HUB_LOGGED = re.compile(rf"User {USER} took ([0-9.]+) seconds to start")
_LISTENING = re.compile(
    r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] Jupyter Server \S+ is running at:", re.M
)
# The Hub hands over to the spawner: before it, the Hub's part of a start (auth refresh, pre-spawn hooks).
_SPAWNING = re.compile(r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) JupyterHub spawner:\d+\] Spawning ", re.M)
# The launcher's line as the server starts listening: its CPU time, full collections and modules loaded.
_CPU = re.compile(
    r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] bench: cpu seconds at listening ([0-9.]+) full gc (\d+) ([0-9.]+) modules (\d+)$",
    re.M,
)
#: Both sides' servers: pinned to the round's CPU, jupyterhub-singleuser, logging as it starts listening.
_CPU_PROBE = r"""
import gc, os, resource, runpy, sys, time
os.sched_setaffinity(0, {int(open(sys.argv.pop(1)).read())})  # the CPU the bench gave this side for this round
full_gc = [0, 0.0, 0.0]  # collections of the oldest generation, their seconds, the running one's start
def _count(phase, info):
    if info["generation"] == 2:
        if phase == "start":
            full_gc[2] = time.perf_counter()
        else:
            full_gc[0] += 1
            full_gc[1] += time.perf_counter() - full_gc[2]
gc.callbacks.append(_count)
import jupyter_server.serverapp as serverapp
_info = serverapp.ServerApp.running_server_info
def running_server_info(self, kernel_count=True):
    if not kernel_count:  # start_app(): about to log "is running at"
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.log.info("bench: cpu seconds at listening %.4f full gc %d %.4f modules %d",
                      usage.ru_utime + usage.ru_stime, full_gc[0], full_gc[1], len(sys.modules))
    return _info(self, kernel_count)
serverapp.ServerApp.running_server_info = running_server_info
sys.argv[0] = "jupyterhub-singleuser"
runpy.run_module("jupyterhub.singleuser", run_name="__main__", alter_sys=True)
"""
# The server's first pull wrote (or kept) the files.
_PULLED = re.compile(
    r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \w+\] qcs-jupyter: QCS credentials for profile ", re.M
)

# What a single-user JupyterLab server imports anyway, then the extension's start path (no Hub: the pull's
# install is done directly). The JWT is made by hand so that making it imports nothing.
_IMPORT_PROBE = r"""
import base64, json, os, sys, tempfile, time
import jupyterhub.singleuser, jupyter_server.serverapp, jupyterlab.labapp
before = set(sys.modules)
t0 = time.perf_counter()
import qcs_jupyter.server
t1 = time.perf_counter()
at_start = set(sys.modules)
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
                              "added": sorted(at_start - before), "added_by_pull": sorted(set(sys.modules) - at_start)}))
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
    added = {"start": set(result.pop("added")), "pull": set(result.pop("added_by_pull"))}
    by_package: dict[str, dict[str, float]] = {when: defaultdict(float) for when in added}
    for line in proc.stderr.splitlines():  # "import time: self [us] | cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        for when, names in added.items():
            if name in names:
                by_package[when][name.split(".")[0]] += int(parts[0]) / 1000
    result["modules_added"] = {when: len(names) for when, names in added.items()}
    result["by_package_ms"] = {when: dict(packages) for when, packages in by_package.items()}
    return result


def extension_imports(runs: int = 3) -> dict[str, Any]:
    """What the extension imports on top of a single-user server before it listens (``start``) and with its first
    pull after (``pull``), median of ``runs`` fresh processes."""
    results = [_import_run() for _ in range(runs)]

    def by_package(when: str) -> dict[str, float]:
        packages = {p for r in results for p in r["by_package_ms"][when]}
        medians = {
            p: round(statistics.median(r["by_package_ms"][when].get(p, 0.0) for r in results), 1) for p in packages
        }
        return dict(sorted(medians.items(), key=lambda kv: -kv[1]))

    return {
        "import_qcs_jupyter_server_ms": round(statistics.median(r["import_ms"] for r in results), 1),
        "modules_added_before_listening": max(r["modules_added"]["start"] for r in results),
        "import_self_ms_by_package_before_listening": by_package("start"),
        "first_install_ms": round(statistics.median(r["install_ms"] for r in results), 1),
        "modules_added_by_first_pull": max(r["modules_added"]["pull"] for r in results),
        "import_self_ms_by_package_first_pull": by_package("pull"),
        "runs": runs,
        "method": "fresh process after importing jupyterhub.singleuser, jupyter_server.serverapp and "
        "jupyterlab.labapp: -X importtime self times of the modules added by import qcs_jupyter.server (what loads "
        "before the server listens) and then by a first CredentialStore.install (what the first pull loads, after)",
    }


def _logged_after(hub: LocalHub, pattern: re.Pattern[str], since: float) -> float | None:
    """Epoch time of the first line matching ``pattern`` logged at or after ``since`` (log times are local)."""
    for stamp in pattern.findall(hub.log_text()):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if at >= since:
            return at
    return None


def _probe_logged_after(hub: LocalHub, since: float) -> dict[str, float] | None:
    """The launcher's line: CPU seconds, full collections (count, seconds) and modules loaded at listening."""
    for stamp, cpu, full_gcs, full_gc_s, modules in _CPU.findall(hub.log_text()):
        if datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp() >= since:
            return {
                "cpu": float(cpu),
                "full_gcs": int(full_gcs),
                "full_gc_s": float(full_gc_s),
                "modules": int(modules),
            }
    return None


def _stop(hubs: dict[str, LocalHub]) -> None:
    """Stop both Hubs' servers at once (the two stops overlap; neither side's start follows the other's stop)."""
    for hub in hubs.values():
        hub.api("DELETE", f"/users/{USER}/server")
    for hub in hubs.values():
        wait_until_stopped(hub, USER)


def _start(hub: LocalHub, *, qcs: bool) -> dict[str, float | None]:
    """Start; seconds from the start request until the server logged that it listens (``listening``), until the
    Hub handed over to the spawner (``spawning``), and until the Hub said ready (``ready``); what the launcher
    logged as the server started listening (``cpu`` seconds, full collections, modules); and (QCS) from listening
    until the server logged that its first pull wrote the files (``pulled``). Returns once that pull is done, so
    nothing of this start runs into the next."""
    since = time.time()
    ready = start_server(hub, USER)
    # Log lines have millisecond resolution; allow for their rounding down.
    listening = _logged_after(hub, _LISTENING, since - 0.001)
    spawning = _logged_after(hub, _SPAWNING, since - 0.001)
    pulled = None
    if qcs and listening is not None:
        deadline = time.monotonic() + 30
        while pulled is None and time.monotonic() < deadline:
            pulled = _logged_after(hub, _PULLED, listening - 0.001)
            if pulled is None:
                time.sleep(0.05)
    return {
        "listening": None if listening is None else listening - since,
        "spawning": None if spawning is None else spawning - since,
        "ready": ready,
        "pulled": None if pulled is None or listening is None else pulled - listening,
        **(_probe_logged_after(hub, since - 0.001) or {"cpu": None}),
    }


def _start_together(hubs: dict[str, LocalHub]) -> dict[str, dict[str, float | None]]:
    """Start every Hub's server at the same moment (a thread each); what ``_start`` says of each."""
    with ThreadPoolExecutor(len(hubs)) as pool:
        futures = {label: pool.submit(_start, hub, qcs=label == "qcs") for label, hub in hubs.items()}
        return {label: future.result() for label, future in futures.items()}


def _hub_logged(hub: LocalHub, n: int) -> list[float]:
    """The Hub's own "took X seconds to start" for the last ``n`` starts."""
    return [float(x) for x in _HUB_LOGGED.findall(hub.log_text())][-n:]


def run(opts: Options) -> Figure:
    n = 3 if opts.quick else ROUNDS
    imports = extension_imports(1 if opts.quick else 3)
    opts.say(
        f"P1 the extension imports before listening {imports['import_self_ms_by_package_before_listening']}, "
        f"with its first pull {imports['import_self_ms_by_package_first_pull']}"
    )
    ports = [free_port(), free_port()]
    labels = ("qcs", "generic")
    listen: dict[str, list[float]] = {label: [] for label in labels}
    hub_part: dict[str, list[float]] = {label: [] for label in labels}
    ready: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    # Per side: full collections (count, seconds) and modules loaded when the server listened.
    full_gcs: dict[str, list[float]] = {label: [] for label in labels}
    full_gc_s: dict[str, list[float]] = {label: [] for label in labels}
    modules: dict[str, list[float]] = {label: [] for label in labels}
    first_pull: list[float] = []
    # Per round, both sides' starts when both were measured: (qcs, generic).
    listen_pairs: list[tuple[float, float]] = []
    cpu_pairs: list[tuple[float, float]] = []
    problems: list[str] = []
    rounds: list[dict[str, Any]] = []  # every round's CPUs and both starts, for a look at what moves
    with make_idp(opts.workdir / "idp", ports, access_token_ttl=3600) as idp:
        probe = opts.workdir / "start_probe.py"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(_CPU_PROBE)
        cpus = sorted(os.sched_getaffinity(0))[:2]
        pins = {label: opts.workdir / f"cpu-{label}" for label in labels}
        for k, label in enumerate(labels):
            pins[label].write_text(str(cpus[k % len(cpus)]))

        def launcher(label: str) -> str:
            return f"c.Spawner.cmd = [{sys.executable!r}, {str(probe)!r}, {str(pins[label])!r}]\n"

        qcs = LocalHub(opts.workdir / "qcs", idp, port=ports[0], client_id=CLIENT_ID, extra_config=launcher("qcs"))
        base = BaselineHub(
            opts.workdir / "generic", idp, port=ports[1], client_id=CLIENT_ID, extra_config=launcher("generic")
        )
        with qcs, base:
            hubs = {"qcs": qcs, "generic": base}
            for label, hub in hubs.items():
                login_with_http(hub, USER)
                opts.say(f"P1 warm-up start on the {label} hub: {start_server(hub, USER):.2f} s")
            idp.reset_stats()
            for i in range(n):
                _stop(hubs)
                for k, label in enumerate(labels):  # the sides swap CPUs every round
                    pins[label].write_text(str(cpus[(i + k) % len(cpus)]))
                time.sleep(GAP)
                this_round = _start_together(hubs)
                for label in labels:
                    start = this_round[label]
                    listening, spawning, pulled = start["listening"], start["spawning"], start["pulled"]
                    ready[label].append(start["ready"])
                    if start["cpu"] is None:
                        problems.append(f"{label} start {i + 1}: the launcher logged no CPU time")
                    else:
                        cpu[label].append(start["cpu"])
                        full_gcs[label].append(start["full_gcs"])
                        full_gc_s[label].append(start["full_gc_s"])
                        modules[label].append(start["modules"])
                    if label == "qcs":
                        if pulled is None:
                            problems.append(f"qcs start {i + 1}: the server never logged its first pull")
                        else:
                            first_pull.append(pulled)
                    if listening is None or spawning is None:
                        problems.append(f"{label} start {i + 1}: no 'Spawning' or 'is running at' line in the log")
                    else:
                        listen[label].append(listening)
                        hub_part[label].append(spawning)
                rounds.append(
                    {
                        "qcs_on_cpu": cpus[i % len(cpus)],
                        **{
                            f"{label}_{key}": this_round[label][key] for label in labels for key in ("listening", "cpu")
                        },
                    }
                )
                for pairs, key in ((listen_pairs, "listening"), (cpu_pairs, "cpu")):
                    a, b = this_round["qcs"][key], this_round["generic"][key]
                    if a is not None and b is not None:
                        pairs.append((a, b))
                last = {label: f"{v[-1]:.2f} s" if v else "-" for label, v in listen.items()}
                used = {label: f"{v[-1]:.2f} s" if v else "-" for label, v in cpu.items()}
                opts.say(
                    f"P1 round {i + 1}/{n}: listening after qcs {last['qcs']}, generic {last['generic']} "
                    f"(CPU qcs {used['qcs']}, generic {used['generic']})"
                )
            refreshes = idp.stats().get("refresh_ok", 0)
            logged = {label: _hub_logged(hub, n) for label, hub in hubs.items()}
            for hub in hubs.values():
                stop_server(hub, USER)
    if refreshes < n:
        problems.append(f"only {refreshes} IdP refreshes for {n} QCS starts: the starts did not pay a real refresh")
    spread = median_of_paired_ratios(listen_pairs) if listen_pairs else None
    if spread and spread["ci90_high"] > CI_HIGH_MAX:
        problems.append(
            f"the ratio's 90 % interval reaches {spread['ci90_high']:g} (> {CI_HIGH_MAX:g}): too noisy to show the goal"
        )
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
        name="time to listening, QCSAuthenticator ÷ GenericOAuthenticator (median of paired starts)",
        value=spread["ratio"] if spread else None,
        unit="ratio",
        goal=GOAL,
        error=None if spread else "no start logged 'is running at' on one of the Hubs",
        problems=problems,
        details={
            "spawns_each": n,
            "ratio_spread": spread,
            "ratio_of_medians": ratio_of_medians(listen["qcs"], listen["generic"]) if all(listen.values()) else None,
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
            "first_pull_after_listening_s": summary(first_pull, digits=3),
            "cpu_until_listening_qcs_s": summary(cpu["qcs"], digits=3),
            "cpu_until_listening_generic_s": summary(cpu["generic"], digits=3),
            "cpu_until_listening_ratio": median_of_paired_ratios(cpu_pairs) if cpu_pairs else None,
            "full_gcs_until_listening": {label: summary(v, digits=1) for label, v in full_gcs.items()},
            "full_gc_s_until_listening": {label: summary(v, digits=3) for label, v in full_gc_s.items()},
            "modules_at_listening": {label: summary(v, digits=0) for label, v in modules.items()},
            "idp_refreshes_during_qcs_starts": refreshes,
            "extension_imports": imports,
            "rounds": rounds,
            "gap_between_stop_and_start_s": GAP,
            "cpus": cpus,
            "ci90_high_max": CI_HIGH_MAX,
            "method": f"admin API stop of both servers, {GAP:g} s wait, both started at the same moment, each "
            "pinned to a CPU of its own (swapped every round); judged on the median of each round's QCS ÷ plain time "
            "to listening; 'until_listening' = start request until the server logs 'is running at' (log time, ms "
            "resolution), split into 'hub_part' (until the Hub logs 'Spawning') and 'server_part' (from there); "
            "'until_ready' = until the Hub's API says ready (polled every 50 ms, after the Hub's own randomized "
            "readiness backoff); 'first_pull_after_listening' = from 'is running at' until the extension logs that "
            "its first pull wrote the files",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
