"""The README's demo, as `bash scripts/demo.sh` runs it: it starts and prints where to go, a user signs in through
the local IdP in Chromium, their `~/.qcs` is written, JupyterLab opens with the QCS panel; Ctrl-C (SIGINT to
the demo's process group, as a terminal sends it) or SIGTERM to the demo ends every process it started and
leaves no port listening.

`scripts/demo.sh` first runs `scripts/setup.sh` (already done for the tests; it would reinstall `.venv` under
everyone else's feet), then execs the demo: the test checks that shape and runs that exec line itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomlkit
from playwright.sync_api import expect, sync_playwright

from devstack.localhub import login_with_http

from .browser import launch, new_page, sign_in
from .procs import descendants

ROOT = Path(__file__).resolve().parents[2]
DEMO_SH = ROOT / "scripts" / "demo.sh"
BANNER_END = "Ctrl-C stops everything."


def demo_exec_line() -> str:
    """The command `scripts/demo.sh` hands over to, after its set-up step."""
    lines = [s for line in DEMO_SH.read_text().splitlines() if (s := line.strip()) and not s.startswith("#")]
    assert "bash scripts/setup.sh" in lines, lines
    assert lines[-1].startswith("exec "), lines
    assert lines.index("bash scripts/setup.sh") < len(lines) - 1  # set-up first, then the demo
    assert re.fullmatch(r'exec \S*python\S* devstack/run\.py "\$@"', lines[-1]), lines[-1]
    return lines[-1]


def start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), None if gone or a zombie: tells reused pids apart."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields[19]


def listening_ports(pids: list[int]) -> set[int]:
    """TCP ports in LISTEN state held by any of ``pids`` (from their socket inodes and /proc/net/tcp*)."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    return {port for port, inode in listening_sockets() if inode in inodes}


def listening_sockets() -> list[tuple[int, str]]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A":  # LISTEN
                    found.append((int(cols[1].rsplit(":", 1)[1], 16), cols[9]))
    return found


@dataclass
class Demo:
    proc: subprocess.Popen
    workdir: Path
    output: Path
    url: str = ""
    homes: Path = Path()
    started: dict[int, str] = field(default_factory=dict)  # pid -> start time of everything the demo started

    def banner(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while BANNER_END not in (text := self.output.read_text(errors="replace")):
            assert self.proc.poll() is None, f"the demo exited with {self.proc.returncode}:\n{text[-3000:]}"
            assert time.monotonic() < deadline, f"no banner within {timeout:.0f} s:\n{text[-3000:]}"
            time.sleep(0.25)
        return text

    def snapshot(self) -> None:
        for pid in descendants(self.proc.pid):
            if (started := start_time(pid)) is not None:
                self.started[pid] = started

    def alive(self) -> list[int]:
        return [pid for pid, started in self.started.items() if start_time(pid) == started]

    def stop_and_check(self, sig: int, group: bool) -> None:
        """Send ``sig`` (to the whole process group, as a terminal's Ctrl-C does, or to the demo only), then
        check that every process it started ended and none of their ports still listens."""
        self.snapshot()
        ports = listening_ports(list(self.started))
        hub_port = int(self.url.rsplit(":", 1)[1])
        assert hub_port in ports, (ports, self.url)
        assert len(self.started) >= 4, self.started  # demo, IdP, Hub, proxy (and the user's server)
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        self.proc.wait(90)
        deadline = time.monotonic() + 30
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.25)
        left = self.alive()
        for pid in left:  # ours: started by this test's demo; end them so the machine is clean, then fail
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        still = ports & {port for port, _ in listening_sockets()}
        commands = {
            pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in left if Path(f"/proc/{pid}").exists()
        }
        assert not left, f"processes still running after the demo stopped: {commands}"
        assert not still, f"ports still listening after the demo stopped: {sorted(still)}"
        assert self.proc.returncode == 0, self.output.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def run_demo(tmp_path: Path) -> Iterator[Demo]:
    """Run what `scripts/demo.sh` execs, from the repository root, in a new process group."""
    workdir, output = tmp_path / "demo", tmp_path / "demo.out"
    command = ["bash", "-c", f"set -euo pipefail\n{demo_exec_line()}", str(DEMO_SH)]
    command += ["--port", "0", "--workdir", str(workdir)]
    with output.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    demo = Demo(proc, workdir, output)
    try:
        text = demo.banner()
        demo.url = re.search(r"Open (http://127\.0\.0\.1:\d+)/hub/login", text).group(1)
        demo.homes = Path(re.search(r"User homes \(see ~/\.qcs\): (\S+)", text).group(1))
        assert demo.homes.is_relative_to(workdir)
        yield demo
    finally:
        if proc.poll() is None:  # a failed test: stop it the polite way, then for sure
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def check_qcs_files(demo: Demo, user: str) -> None:
    qcs = demo.homes / user / ".qcs"
    deadline = time.monotonic() + 60
    while not (qcs / "secrets.toml").exists():
        assert time.monotonic() < deadline, f"no {qcs}/secrets.toml"
        time.sleep(0.25)
    assert stat.S_IMODE(qcs.stat().st_mode) == 0o700
    for name in ("settings.toml", "secrets.toml"):
        assert stat.S_IMODE((qcs / name).stat().st_mode) == 0o600, name
    settings = tomlkit.parse((qcs / "settings.toml").read_text()).unwrap()
    assert settings["auth_servers"]["default"]["issuer"] == f"{demo.url}/hub/api/qcs/issuer"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCS_")} | {"HOME": str(demo.homes / user)}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "qcs-jupyter"), "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    status = json.loads(done.stdout)
    assert done.returncode == 0 and status["usable"], status
    assert status["identity"]["email"] == f"{user}@example.org"


def test_demo_login_lab_panel_and_ctrl_c(tmp_path):
    with run_demo(tmp_path) as demo, sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, demo.url, "grace", wait_for="**/user/grace/lab**")  # /hub/login: the URL the banner prints
        check_qcs_files(demo, "grace")
        item = page.locator(".qcs-jupyter-status-item")
        expect(item).to_have_attribute("data-qcs-state", re.compile(r"^(ok|expiring)$"), timeout=60_000)
        item.click()
        panel = page.locator("#qcs-jupyter-panel")
        expect(panel).to_be_visible()
        expect(panel.locator("[data-qcs-field=email]")).to_have_text("grace@example.org")
        browser.close()
        demo.stop_and_check(signal.SIGINT, group=True)


def test_demo_stops_on_sigterm(tmp_path):
    with run_demo(tmp_path) as demo:
        # requests, not a browser: what matters here is a running user server for the Hub to stop.
        session = login_with_http(SimpleNamespace(url=demo.url, idp=SimpleNamespace(ca_path=None)), "ada")
        session.get(f"{demo.url}/hub/spawn/ada", timeout=120)
        check_qcs_files(demo, "ada")
        demo.stop_and_check(signal.SIGTERM, group=False)


@pytest.mark.parametrize("bad", [["--port", "x"], ["--ttl"]])
def test_demo_rejects_bad_arguments(tmp_path, bad):
    """Bad options end at once with argparse's message, before anything starts."""
    command = ["bash", "-c", f"set -euo pipefail\n{demo_exec_line()}", str(DEMO_SH), *bad]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "error:" in done.stderr, done.stderr
