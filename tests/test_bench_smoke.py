"""The bench command: its exit status follows the figures (checked with stand-in figures whose outcome is known),
and a real run writes its JSON (one cheap figure against a local IdP, Hub and user server; the full run is
documented in docs/reference/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from bench import run as bench_run
from bench.common import Figure, Goal
from bench.run import main


def fake_figure(fid: str, value: float | None, *, problems: list[str] | None = None, fails: bool = False):
    module = types.ModuleType(f"fake_{fid}")
    module.__doc__ = f"{fid}: a stand-in figure"
    module.GOAL = Goal("<=", 10.0)

    def run(opts):
        if fails:
            raise RuntimeError("could not measure")
        return Figure(fid, "stand-in", value, "ms", module.GOAL, problems=list(problems or []))

    module.run = run
    return module


@pytest.mark.parametrize(
    ("figures", "code"),
    [
        pytest.param({"PA": fake_figure("PA", 5.0)}, 0, id="goal-met"),
        pytest.param({"PA": fake_figure("PA", 5.0), "PB": fake_figure("PB", 11.0)}, 1, id="one-goal-missed"),
        pytest.param({"PA": fake_figure("PA", 5.0, problems=["a 500 answer"])}, 1, id="a-problem-fails-it"),
        pytest.param({"PA": fake_figure("PA", None, fails=True)}, 1, id="not-measured"),
    ],
)
def test_exit_status_follows_the_figures(tmp_path, monkeypatch, capsys, figures, code):
    monkeypatch.setattr(bench_run, "FIGURES", figures)
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", ",".join(figures), "--out", str(out)]) == code
    report = json.loads(out.read_text())
    assert report["all_passed"] is (code == 0)
    assert [f["id"] for f in report["figures"]] == list(figures)


def test_a_figure_that_leaves_a_process_running_fails_and_the_process_is_stopped(tmp_path, monkeypatch):
    module = fake_figure("PA", 5.0)
    started = []

    def run(opts):
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))
        return Figure("PA", "stand-in", 5.0, "ms", module.GOAL)

    module.run = run
    monkeypatch.setattr(bench_run, "FIGURES", {"PA": module})
    out = tmp_path / "bench.json"
    earlier = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # not the figure's
    try:
        assert main(["--quick", "--only", "PA", "--out", str(out)]) == 1
        (figure,) = json.loads(out.read_text())["figures"]
        assert figure["problems"] and "1 process(es) left running" in figure["problems"][0]
        assert started[0].wait(timeout=10) is not None  # stopped by the bench
        assert earlier.poll() is None  # left alone
    finally:  # neither outlives the test, whatever failed
        for process in (earlier, *started):
            process.kill()
            process.wait(timeout=10)


@pytest.mark.e2e  # starts a local IdP, Hub and a user server
def test_bench_quick_smoke(tmp_path):
    out = tmp_path / "bench.json"
    code = main(["--quick", "--only", "P2", "--out", str(out)])
    report = json.loads(out.read_text())
    figures = {f["id"]: f for f in report["figures"]}
    assert set(figures) == {"P2"}
    assert report["machine"]["cpu_count"] >= 1
    p2 = figures["P2"]
    assert p2["error"] is None, p2.get("error")  # measured: the handoff worked every time
    assert p2["value"] > 0 and p2["details"]["server_start_ms"]["n"] == 10
    # Whether a busy machine meets the 25 ms goal is the bench's report, not this test's: the verdict and the
    # exit status must follow the value and the goal written beside it.
    goal = p2["goal"]
    assert (goal["op"], goal["target"]) == ("<=", 25.0)
    met = p2["value"] <= goal["target"] and not p2["problems"]
    assert p2["passed"] is met and code == (0 if met else 1)
