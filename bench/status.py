"""P3: throughput of ``GET qcs-jupyter/status`` ÷ jupyter-server's own ``GET /api/status``, same server, same client.

One plain ``jupyter server`` with the extension over a temporary HOME with credentials. The client keeps N
keep-alive connections busy from one selector loop over raw sockets (far lighter than ``requests``, so the
server, not the client, is what saturates), hitting one endpoint for a fixed time; rounds alternate the endpoints
(A,B then B,A) to cancel drift. Any answer other than 200, on either endpoint, fails the figure (an error page is
fast, not throughput). The server's CPU time per request is reported beside the rates.

Judged with the server's caches defeated (``uncached``): before every request it sends (on both endpoints, so the
client's cost is the same on both), the client moves ``secrets.toml``'s modification time on by a nanosecond (the
server cannot tell that from a rewrite: it compares inode, time, size and mode, never contents), over one
connection, so that each status request finds the files changed since the one before and reads, parses and judges
them again, without the one-second reuse of an unchanged status; with more connections, requests queued together
would share one reading. The same measure with the files left alone over ``concurrency`` connections (so most
status requests are answered from that cache, as many open tabs polling an unchanged home are) is reported
beside it (``cached``), not judged. ``--profile`` (or a
ratio under the goal) runs the server once more under cProfile, files changing, and reports where the status
handler's time goes.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import re
import selectors
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Figure, Goal, Options, patched_environ, quiet_logger, summary
from .jupyter import JupyterProc

GOAL = Goal(">=", 0.8)
ENDPOINTS = {"qcs": "/qcs-jupyter/status", "baseline": "/api/status"}
MAX_LOOP_ITERATIONS = 5_000_000
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)

try:  # psutil comes with the Jupyter stack here; the figure does not depend on it
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


class _Conn:
    """One keep-alive connection of the load client: a pre-built request, a receive buffer, a start time."""

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.request, self.buf, self.sent_at = request, b"", 0.0

    def send(self, before: Callable[[], None] | None = None) -> None:
        if before is not None:
            before()
        self.sent_at = time.perf_counter()
        self.sock.sendall(self.request)  # a few hundred bytes: fits the socket buffer at once

    def take_response(self) -> int | None:
        """The status of one complete response at the head of the buffer (consumed), or None if incomplete."""
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buf[:head_end]
        match = _CONTENT_LENGTH.search(head)
        if match is None:
            raise ValueError("response without Content-Length")
        end = head_end + 4 + int(match.group(1))
        if len(self.buf) < end:
            return None
        self.buf = self.buf[end:]
        return int(head[9:12])


class Churn:
    """Moves a file's modification time on by one nanosecond per call: the file changed, as far as anyone can tell
    without reading it (its inode, size and mode stay)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mtime_ns = path.stat().st_mtime_ns
        self.calls = 0

    def __call__(self) -> None:
        self.mtime_ns += 1
        self.calls += 1
        os.utime(self.path, ns=(self.mtime_ns, self.mtime_ns))


def hammer(
    server: JupyterProc, path: str, seconds: float, concurrency: int, churn: Churn | None = None
) -> dict[str, Any]:
    """``concurrency`` keep-alive connections GET ``path`` back to back for ``seconds``; with ``churn``, the
    credentials file changes before every request sent.

    A single-threaded selector loop over raw sockets: a few tens of microseconds of client work per request,
    so the server (one core, one event loop) is what saturates. Returns requests, errors, latencies, server CPU.
    """
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: token {server.token}\r\n\r\n"
    ).encode()
    proc = psutil.Process(server.proc.pid) if psutil and server.proc else None
    cpu_before = sum(proc.cpu_times()[:2]) if proc else None
    sel = selectors.DefaultSelector()
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    started = time.monotonic()
    deadline = started + seconds
    conns = [_Conn(server.port, request) for _ in range(concurrency)]
    for conn in conns:
        sel.register(conn.sock, selectors.EVENT_READ, conn)
        conn.send(churn)
    open_conns = len(conns)
    for _ in range(MAX_LOOP_ITERATIONS):
        if open_conns == 0 or time.monotonic() >= deadline + 30:
            break
        for key, _ in sel.select(timeout=1.0):
            conn: _Conn = key.data
            data = conn.sock.recv(262144)
            if not data:
                raise ConnectionError(f"the server closed a keep-alive connection on {path}")
            conn.buf += data
            status = conn.take_response()
            if status is None:
                continue
            latencies.append(time.perf_counter() - conn.sent_at)
            if status != 200:
                errors += 1
                first_error = first_error or f"HTTP {status}"
            if time.monotonic() < deadline:
                conn.send(churn)
            else:
                sel.unregister(conn.sock)
                conn.sock.close()
                open_conns -= 1
    wall = time.monotonic() - started
    for conn in conns:
        conn.sock.close()
    sel.close()
    cpu = (sum(proc.cpu_times()[:2]) - cpu_before) if proc else None
    return {
        "requests": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "wall": wall,
        "latencies": latencies,
        "server_cpu": cpu,
    }


def _measure(
    server: JupyterProc, rounds: int, seconds: float, concurrency: int, say, churn: Churn | None = None
) -> dict[str, dict[str, Any]]:
    totals = {
        name: {"requests": 0, "errors": 0, "first_error": None, "wall": 0.0, "latencies": [], "server_cpu": 0.0}
        for name in ENDPOINTS
    }
    mode = "files changing" if churn else "files unchanged"
    for path in ENDPOINTS.values():  # warm-up, not counted
        hammer(server, path, min(1.0, seconds), concurrency, churn)
    for r in range(rounds):
        order = list(ENDPOINTS.items()) if r % 2 == 0 else list(reversed(ENDPOINTS.items()))
        for name, path in order:
            result = hammer(server, path, seconds, concurrency, churn)
            for key in ("requests", "errors", "wall"):
                totals[name][key] += result[key]
            totals[name]["first_error"] = totals[name]["first_error"] or result["first_error"]
            totals[name]["latencies"].extend(result["latencies"])
            totals[name]["server_cpu"] += result["server_cpu"] or 0.0
            say(f"P3 {mode}, round {r + 1}/{rounds} {name}: {result['requests'] / result['wall']:.0f} req/s")
    return totals


def _describe(total: dict[str, Any]) -> dict[str, Any]:
    rate = total["requests"] / total["wall"] if total["wall"] else 0.0
    cpu = total["server_cpu"]
    return {
        "requests": total["requests"],
        "errors": total["errors"],
        "seconds": round(total["wall"], 2),
        "requests_per_s": round(rate, 1),
        "latency_ms": summary(total["latencies"], 1000),
        "server_cpu_ms_per_request": round(cpu * 1000 / total["requests"], 3) if total["requests"] and cpu else None,
        "server_cpu_utilisation": round(cpu / total["wall"], 2) if total["wall"] and cpu else None,
    }


def profile_status(workdir: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    """Run the server under cProfile, GET the status for ``seconds`` (files changing), and list where the time
    went."""
    out = workdir / "status.prof"
    server = JupyterProc(workdir, wrap=[sys.executable, "-m", "cProfile", "-o", str(out)])
    with server:
        churn = Churn(server.home / ".qcs" / "secrets.toml")
        base = hammer(server, ENDPOINTS["baseline"], seconds, concurrency, churn)["requests"]
        n = hammer(server, ENDPOINTS["qcs"], seconds, concurrency, churn)["requests"]
    if not out.exists():
        return {"error": "cProfile wrote no output (the server did not exit cleanly)"}
    stats = pstats.Stats(str(out))
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((cumtime, tottime, calls, f"{Path(filename).name}:{line}({func})", filename))
    per = 1e6 / max(n, 1)

    def fmt(row) -> dict[str, Any]:
        return {
            "function": row[3],
            "calls": row[2],
            "cum_us_per_req": round(row[0] * per, 1),
            "tot_s": round(row[1], 3),
        }

    ours = sorted((r for r in rows if "qcs_jupyter" in r[4]), reverse=True)[:12]
    by_tottime = sorted(rows, key=lambda r: r[1], reverse=True)[:12]
    return {
        "status_requests_profiled": n,
        "baseline_requests_profiled": base,
        "note": "cum_us_per_req divides whole-run cumulative time by the status requests (both endpoints ran); "
        "the event loop's thread only: reading the files runs in a worker thread (see in_process.store_read_us)",
        "qcs_jupyter_by_cumulative": [fmt(r) for r in ours],
        "all_by_own_time": [fmt(r) for r in by_tottime],
    }


def compute_status_cost(home: Path, n: int = 2000) -> dict[str, Any]:
    """In-process, over the files in ``home``: microseconds per ``CredentialStore.read()`` (what a worker thread
    does for every changed file), per ``compute_status`` on a snapshot just read and on one judged before, and per
    ``CredentialKeeper.status()`` with unchanged files (what the status handler runs besides tornado; no Hub)."""
    from qcs_jupyter.credentials import CredentialStore, QCSPaths, compute_status
    from qcs_jupyter.server.keeper import CredentialKeeper

    store = CredentialStore(paths=QCSPaths.from_env({}, home=home))
    snap = store.read()
    started = time.perf_counter()
    snaps = [store.read() for _ in range(n // 4)]
    read = (time.perf_counter() - started) / len(snaps) * 1e6
    started = time.perf_counter()
    for fresh in snaps:
        compute_status(fresh)
    per_fresh = (time.perf_counter() - started) / len(snaps) * 1e6
    started = time.perf_counter()
    for _ in range(n):
        compute_status(snap)
    per_call = (time.perf_counter() - started) / n * 1e6

    async def handler_work() -> float:
        keeper = CredentialKeeper(log=quiet_logger("status"))
        await keeper.status()  # fills the snapshot cache, as the first request does
        started = time.perf_counter()
        for _ in range(n):
            await keeper.status()
        return (time.perf_counter() - started) / n * 1e6

    with patched_environ({"HOME": str(home)}, drop_prefixes=("QCS_", "JUPYTERHUB_")):
        whole = asyncio.run(handler_work())
    return {
        "store_read_us": round(read, 1),
        "compute_status_fresh_snapshot_us": round(per_fresh, 1),
        "compute_status_same_snapshot_us": round(per_call, 1),
        "keeper_status_files_unchanged_us": round(whole, 1),
        "calls": n,
    }


def run(opts: Options) -> Figure:
    rounds, seconds, concurrency = (1, 2.0, 4) if opts.quick else (4, 5.0, 8)
    with JupyterProc(opts.workdir / "server") as server:
        churn = Churn(server.home / ".qcs" / "secrets.toml")
        modes = {
            "cached": _measure(server, rounds, seconds, concurrency, opts.say),
            "uncached": _measure(server, rounds, seconds, 1, opts.say, churn),
        }
    described = {mode: {name: _describe(total) for name, total in totals.items()} for mode, totals in modes.items()}
    ratios = {mode: d["qcs"]["requests_per_s"] / d["baseline"]["requests_per_s"] for mode, d in described.items()}
    ratio = ratios["uncached"]
    # A fast error page is not throughput: any answer but 200, on either side, fails the figure.
    problems = [
        f"{mode}: {d[name]['errors']} of {d[name]['requests']} answers of {ENDPOINTS[name]} were not 200"
        f" (first: {modes[mode][name]['first_error']})"
        for mode, d in described.items()
        for name in ENDPOINTS
        if d[name]["errors"]
    ]
    details: dict[str, Any] = {
        "qcs_jupyter_status": described["uncached"]["qcs"],
        "api_status": described["uncached"]["baseline"],
        "cached": {
            "ratio": round(ratios["cached"], 3),
            "qcs_jupyter_status": described["cached"]["qcs"],
            "api_status": described["cached"]["baseline"],
        },
        "file_changes": churn.calls,
        "judged": "uncached: one connection, secrets.toml's mtime moves on before every request, so every status "
        "request reads, parses and judges the files again",
        "rounds": rounds,
        "seconds_per_endpoint_per_round": seconds,
        "concurrent_connections": {"cached": concurrency, "uncached": 1},
        "client": "one selector loop, N keep-alive raw-socket connections, token in the Authorization header",
    }
    if opts.profile or not GOAL.met(ratio):
        opts.say("P3 profiling the status handler under cProfile")
        details["profile"] = profile_status(opts.workdir / "profile", seconds, 1)
        details["in_process"] = compute_status_cost(opts.workdir / "server" / "home")
    return Figure(
        id="P3",
        name="GET qcs-jupyter/status ÷ GET /api/status throughput, files changing (uncached)",
        value=round(ratio, 3),
        unit="ratio",
        goal=GOAL,
        details=details,
        problems=problems,
    )
