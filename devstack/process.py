"""A child process whose output goes to a log file, stopped politely (terminate, then kill) on exit."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


class LoggedProcess:
    """Base for the local IdP, Hub and Jupyter servers the demo, tests and benchmarks start."""

    stop_timeout = 10.0

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen | None = None
        self._log_fh: Any = None

    @property
    def proc(self) -> subprocess.Popen | None:
        return self._proc

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, cmd: list[str], **popen_kwargs: Any) -> subprocess.Popen:
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log_fh, stderr=subprocess.STDOUT, **popen_kwargs
        )
        return self._proc

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def start(self) -> LoggedProcess:
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
