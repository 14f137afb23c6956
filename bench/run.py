"""Run the benchmarks, print a table, and write the results (machine, every figure, goal, pass/fail) as JSON.

    .venv/bin/python -m bench                 # P1-P6, P9 and P10
    .venv/bin/python -m bench --quick         # small N and short windows: a smoke run
    .venv/bin/python -m bench --only P1,P3    # some figures
    .venv/bin/python -m bench --load          # also the long runs: load test P7 and IdP outage P8
    .venv/bin/python -m bench --scale         # P11 alone: a 10,000-user Hub (--quick: 1,000)

Exit status: 0 when every figure run was measured and met its goal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from . import handoff, heldclient, idle, install, load, outage, refresh, scale, size, spawn, status
from .common import REPO, Figure, Options, machine_info

try:  # psutil comes with the Jupyter stack here; without it the check for leftover processes is skipped
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

FIGURES: dict[str, ModuleType] = {
    "P1": spawn,
    "P2": handoff,
    "P3": status,
    "P4": refresh,
    "P5": size,
    "P6": idle,
    "P7": load,
    "P8": outage,
    "P9": heldclient,
    "P10": install,
    "P11": scale,
}
DEFAULT = ["P1", "P2", "P3", "P4", "P5", "P6", "P9", "P10"]
LONG = ["P7", "P8"]  # minutes each: only with --load or --only
RESULTS = REPO / "bench" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small N and short windows (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated figure ids, e.g. P1,P3 (P7, P8 are the long runs)")
    parser.add_argument("--load", action="store_true", help="also run the long runs: load P7 and IdP outage P8")
    parser.add_argument("--scale", action="store_true", help="only P11: a 10,000-user Hub (with --quick: 1,000)")
    parser.add_argument("--profile", action="store_true", help="P3: also profile the status handler with cProfile")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default bench/results/<time>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs of every process)")
    return parser.parse_args(argv)


def selected(args: argparse.Namespace) -> list[str]:
    if args.scale:
        return ["P11"]
    if args.only:
        ids = [part.strip().upper() for part in args.only.split(",") if part.strip()]
        unknown = [i for i in ids if i not in FIGURES]
        if unknown:
            raise SystemExit(f"unknown figure id(s): {', '.join(unknown)}; known: {', '.join(FIGURES)}")
        return ids
    return DEFAULT + (LONG if args.load else [])


def run_one(fid: str, run: Callable[[Options], Figure], opts: Options) -> Figure:
    """Run one figure; a failure to measure becomes a figure with ``error`` set, never an exception."""
    opts.workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        figure = run(opts)
    except Exception as e:
        figure = Figure(
            fid, FIGURES[fid].__doc__.strip().splitlines()[0][:80], None, "", getattr(FIGURES[fid], "GOAL", None)
        )
        figure.error = f"{type(e).__name__}: {e}"[:2000]
        figure.details["traceback"] = traceback.format_exc()[-4000:]
    figure.seconds = round(time.monotonic() - started, 1)
    return figure


def running_children() -> list[Any]:
    """This process's descendants that are running (not zombies: exited, only not yet waited for)."""
    if psutil is None:
        return []
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                children.append(child)
        except psutil.Error:
            continue
    return children


def reap_leftovers(before: list[Any], grace: float = 5.0) -> list[str]:
    """The processes started since ``before`` (a list of ``running_children()``) that still run: a figure must stop
    what it starts, or it skews the figures after it. Their command lines; they are terminated, then killed after
    ``grace`` seconds. (Processes that were there before, e.g. a host's helpers, are left alone.)"""
    if psutil is None:
        return []
    children = [c for c in running_children() if c not in before]  # psutil compares pid and start time
    found = []
    for child in children:
        try:
            found.append(f"{child.pid}: {' '.join(child.cmdline())[:200]}")
            child.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=grace)
    return found


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def table(figures: list[Figure]) -> str:
    rows = [("id", "figure", "value", "unit", "goal", "result", "time")]
    for f in figures:
        result = "ERROR" if f.error else {True: "pass", False: "FAIL", None: "-"}[f.passed]
        rows.append((f.id, f.name, _cell(f.value), f.unit, str(f.goal or "-"), result, f"{f.seconds or 0:.0f} s"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for f in figures:
        if f.error:
            lines.append(f"{f.id} could not be measured: {f.error.splitlines()[0]}")
        for problem in f.problems[:5]:
            lines.append(f"{f.id} fails: {problem}")
        if len(f.problems) > 5:
            lines.append(f"{f.id} fails: ... and {len(f.problems) - 5} more (see the JSON)")
    return "\n".join(lines)


def report(figures: list[Figure], machine: dict[str, Any], args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    machine = {**machine, "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if args.quick else "full",
        "seconds": round(seconds, 1),
        "machine": machine,
        "all_passed": all(f.passed for f in figures),
        "figures": [f.to_json() for f in figures],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ids = selected(args)
    out = (
        args.out
        or RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}{'-quick' if args.quick else ''}.json"
    )
    scratch = Path(tempfile.mkdtemp(prefix="qcs-bench-"))
    machine = machine_info()
    print(f"qcs-jupyter bench ({'quick' if args.quick else 'full'}): {', '.join(ids)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    figures = []
    try:
        for fid in ids:
            print(FIGURES[fid].__doc__.strip().splitlines()[0], file=sys.stderr, flush=True)
            opts = Options(quick=args.quick, workdir=scratch / fid, profile=args.profile)
            before = running_children()
            figure = run_one(fid, FIGURES[fid].run, opts)
            leftovers = reap_leftovers(before)
            if leftovers:
                figure.problems.append(f"{len(leftovers)} process(es) left running (stopped now): {leftovers}")
            figures.append(figure)
    finally:
        if args.keep:
            print(f"scratch directory kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    data = report(figures, machine, args, time.monotonic() - started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(table(figures))
    print(f"\n{len(figures)} figure(s) in {data['seconds']:.0f} s; results: {out}")
    return 0 if data["all_passed"] else 1
