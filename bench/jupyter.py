"""A plain ``jupyter server`` / ``jupyter lab`` (no Hub) with the extension, over a temporary HOME holding
credentials written by ``CredentialStore``."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import jwt

from devstack.localidp import free_port
from devstack.process import LoggedProcess
from qcs_jupyter.credentials import CredentialStore, QCSPaths, TokenSet

from .common import clean_env


def install_credentials(home: Path, ttl: int = 3600) -> None:
    """A realistic ~/.qcs: JWT access and id tokens (HS256 with a throwaway key; nobody verifies them here)."""
    key = secrets.token_hex(32)
    now = int(time.time())

    def token(**claims: Any) -> str:
        return jwt.encode({"sub": "ada", "iat": now, "exp": now + ttl, **claims}, key, algorithm="HS256")

    tokens = TokenSet(
        access_token=token(), refresh_token="r-" + secrets.token_hex(8), id_token=token(email="ada@example.org")
    )
    CredentialStore(paths=QCSPaths.from_env({}, home=home)).install(tokens)


class JupyterProc(LoggedProcess):
    """``python -m jupyter {server|lab}`` on 127.0.0.1 with a token; ``wrap`` prefixes the command (e.g. cProfile)."""

    stop_timeout = 30.0

    def __init__(
        self,
        workdir: Path,
        app: str = "server",
        *,
        config: dict[str, Any] | None = None,
        lab_settings: dict[str, dict[str, Any]] | None = None,
        wrap: list[str] | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.workdir, self.app = Path(workdir), app
        self.config = config or {}
        self.lab_settings = lab_settings or {}
        self.wrap = wrap or []
        self.startup_timeout = startup_timeout
        self.home = self.workdir / "home"
        self.port, self.token = free_port(), secrets.token_hex(16)
        super().__init__(self.workdir / f"{app}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        config_dir = self.workdir / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
            **self.config,
        }
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        for plugin_id, values in self.lab_settings.items():  # e.g. {"qcs-jupyter:plugin": {"pollInterval": 10}}
            package, plugin = plugin_id.split(":")
            target = config_dir / "lab" / "user-settings" / package / f"{plugin}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        return config_dir

    def command(self) -> list[str]:
        module = ["-m", "jupyter_server"] if self.app == "server" else ["-m", "jupyter", self.app]
        cmd = [
            *(self.wrap or [sys.executable]),
            *module,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.home}",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def start(self) -> JupyterProc:
        self.home.mkdir(parents=True, exist_ok=True)
        install_credentials(self.home)
        env = clean_env(HOME=str(self.home), JUPYTER_CONFIG_DIR=str(self._write_config()))
        proc = self._spawn(self.command(), env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter {self.app} did not answer within {self.startup_timeout:.0f} s")
