"""Shared pieces of the benchmarks: the result record, small statistics, timing and environment helpers."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOG = logging.getLogger("bench")

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda v, t: v <= t,
    ">=": lambda v, t: v >= t,
    "==": lambda v, t: v == t,
}


@dataclass
class Goal:
    """``value <op> target``, e.g. ``Goal("<=", 1.05)``."""

    op: str
    target: float

    def met(self, value: float | None) -> bool | None:
        return None if value is None else _OPS[self.op](value, self.target)

    def __str__(self) -> str:
        return f"{self.op} {self.target:g}"


@dataclass
class Figure:
    """One measured figure: its value against its goal, with the raw numbers behind it in ``details``.

    ``problems`` are things seen while measuring that make the value untrustworthy or the run wrong (an answer
    that was not 200, a refresh that never happened): any of them fails the figure whatever its value.
    """

    id: str
    name: str
    value: float | None
    unit: str
    goal: Goal | None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        if self.error is not None or self.goal is None:
            return None
        if self.problems:
            return False
        return self.goal.met(self.value)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["goal"] = None if self.goal is None else {**asdict(self.goal), "text": str(self.goal)}
        data["passed"] = self.passed
        return data


@dataclass
class Options:
    """What every benchmark gets: quick or full, a scratch directory of its own, and a progress printer."""

    quick: bool
    workdir: Path
    profile: bool = False

    def say(self, message: str) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# --- statistics --------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: list[float], scale: float = 1.0, digits: int = 2) -> dict[str, float | int]:
    """n, median, quartiles, p95, min, max (each multiplied by ``scale``, e.g. 1000 for ms)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values) * scale, digits),
        "p25": round(percentile(values, 25) * scale, digits),
        "p75": round(percentile(values, 75) * scale, digits),
        "p95": round(percentile(values, 95) * scale, digits),
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits),
    }


def bootstrap_interval(
    resampled: Callable[[random.Random], float], resamples: int = 2000, confidence: float = 0.9
) -> dict[str, float | int]:
    """The ``confidence`` interval of a statistic from ``resamples`` draws of ``resampled`` (the statistic of one
    resampling), with a fixed seed, so a run is reproducible from its numbers."""
    rnd = random.Random(12345)  # noqa: S311 - resampling, not secrets
    values = sorted(resampled(rnd) for _ in range(resamples))
    tail = (1 - confidence) / 2 * 100
    return {
        f"ci{round(confidence * 100)}_low": round(percentile(values, tail), 3),
        f"ci{round(confidence * 100)}_high": round(percentile(values, 100 - tail), 3),
        "resamples": resamples,
    }


def ratio_of_medians(
    a: list[float], b: list[float], resamples: int = 2000, confidence: float = 0.9
) -> dict[str, float | int]:
    """median(a) / median(b), with a bootstrap interval.

    The interval is the spread a reader needs to judge a ratio near its goal: a median of 20 noisy spawns moves.
    """

    def resampled(rnd: random.Random) -> float:
        return statistics.median(rnd.choices(a, k=len(a))) / statistics.median(rnd.choices(b, k=len(b)))

    return {
        "ratio": round(statistics.median(a) / statistics.median(b), 3),
        **bootstrap_interval(resampled, resamples, confidence),
    }


def median_of_paired_ratios(
    pairs: list[tuple[float, float]], resamples: int = 2000, confidence: float = 0.9
) -> dict[str, float | int]:
    """The median of a/b over pairs measured side by side, with a bootstrap interval over the pairs.

    For interleaved rounds (A then B, B then A): a pair shares its moment's machine speed, which on a shared
    machine moves by tens of percent between starts a minute apart, so its ratio cancels what the two sides
    share; resampling whole pairs keeps that.
    """
    ratios = [a / b for a, b in pairs]
    return {
        "ratio": round(statistics.median(ratios), 3),
        **bootstrap_interval(lambda rnd: statistics.median(rnd.choices(ratios, k=len(ratios))), resamples, confidence),
        "pairs": len(ratios),
    }


# --- waiting -----------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; bounded by ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def sleep_until_epoch(epoch: float, max_wait: float) -> float:
    """Sleep until the wall clock reaches ``epoch`` (never longer than ``max_wait``); returns the time slept."""
    delay = min(max_wait, max(0.0, epoch - time.time()))
    time.sleep(delay)
    return delay


# --- environment ---------------------------------------------------------------------------------------
def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without QCS_* and JUPYTERHUB_* variables, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QCS_", "JUPYTERHUB_"))}
    env.update(overrides)
    return env


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], drop_prefixes: tuple[str, ...] = ("QCS_",)) -> Iterator[None]:
    """Temporarily set ``values`` in ``os.environ`` and hide variables with ``drop_prefixes``."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith(drop_prefixes)]:
            del os.environ[key]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def quiet_logger(name: str) -> logging.Logger:
    log = logging.getLogger(f"bench.{name}")
    log.setLevel(logging.WARNING)
    return log


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def machine_info() -> dict[str, Any]:
    """Where the numbers were taken: CPUs, load, Python, platform and the versions that matter."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": {
            name: _version(name)
            for name in ("qcs-jupyter", "jupyterhub", "jupyter_server", "oauthenticator", "jupyterlab", "tornado")
        },
        "node": _command_version(["node", "--version"]),
        "chromium": _command_version(["chromium", "--version"]),
        "git_commit": _command_version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    }


# --- a sampler thread -------------------------------------------------------------------------------------
class Ticker(threading.Thread):
    """Calls ``fn`` every ``interval`` seconds until stopped, at most ``max_calls`` times."""

    def __init__(self, fn: Callable[[], None], interval: float, max_calls: int) -> None:
        super().__init__(daemon=True, name="bench-ticker")
        self.fn, self.interval, self.max_calls = fn, interval, max_calls
        self._stop_event = threading.Event()

    def run(self) -> None:
        for _ in range(self.max_calls):
            started = time.monotonic()
            self.fn()
            if self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - started))):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)
