""".ci/leftovers.py, the end of .ci/run: it lists the run's processes that are still running (by the mark they
inherit, or by working under the run's temporary directory) and fails; other processes are not the run's."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

LEFTOVERS = Path(__file__).resolve().parents[1] / ".ci" / "leftovers.py"


@pytest.fixture(scope="module")
def leftovers():
    spec = importlib.util.spec_from_file_location("ci_leftovers", LEFTOVERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sleeper():
    """Start ``sleep`` with extra environment or working directory; each is stopped (by its pid) afterwards."""
    started = []

    def start(env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(["sleep", "60"], env={**os.environ, **(env or {})}, cwd=cwd)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def test_a_marked_process_or_one_in_the_run_tmp_is_listed(leftovers, sleeper, tmp_path, capsys):
    run_id = f"test-{uuid.uuid4().hex}"
    run_tmp = tmp_path / "run"
    (run_tmp / "home").mkdir(parents=True)
    marked = sleeper(env={"QCS_JUPYTER_CI_RUN": run_id})
    inside = sleeper(cwd=run_tmp / "home")
    other = sleeper(env={"QCS_JUPYTER_CI_RUN": "another-run"}, cwd=tmp_path)
    found = leftovers.leftovers(run_id, [str(run_tmp)])
    assert marked.pid in found and inside.pid in found
    assert other.pid not in found and os.getpid() not in found  # nor this process, an ancestor of the check
    assert leftovers.main([run_id, str(run_tmp)]) == 1
    assert f"pid {marked.pid}" in capsys.readouterr().err
    assert marked.poll() is None and inside.poll() is None  # listed, never stopped


def test_nothing_left_passes(leftovers, tmp_path):
    done = subprocess.run(
        [sys.executable, str(LEFTOVERS), f"test-{uuid.uuid4().hex}", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "no process of this run is left running" in done.stdout
