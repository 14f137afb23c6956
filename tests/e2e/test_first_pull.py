"""The first pull runs once the server listens, and what comes first waits for it: a kernel started the moment the
server listens finds the fresh credentials of this start in ``~/.qcs`` at its first line, and so does the status.

A real IdP and Hub. The Hub holds back its answer to the server's first pull by ``HUB_DELAY`` seconds (a slow
Hub), so the kernel's start certainly comes before the pull has written the files; the server's log shows that it
waited. The kernel is a kernelspec whose first line copies ``~/.qcs/secrets.toml`` aside, then runs ipykernel.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import sys
import time
from pathlib import Path

import requests

from devstack.localhub import login_with_http
from devstack.localidp import free_port
from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .conftest import stack

USER = "kai"
HUB_DELAY = 2.0
#: The kernel's first line reads the files, as a notebook whose first cell makes a QCS client would.
PROBE = (
    "import pathlib; s = pathlib.Path.home() / '.qcs' / 'secrets.toml'; "
    "(pathlib.Path.home() / 'kernel-saw.toml').write_text(s.read_text() if s.exists() else 'MISSING')\n"
    "from ipykernel.kernelapp import launch_new_instance\n"
    "launch_new_instance()\n"
)
#: Hub config: every answer of the credentials route comes HUB_DELAY seconds late (without holding the Hub up).
SLOW_HUB = f"""
import asyncio as _asyncio
from qcs_jupyter.hub import handlers as _qcs_handlers
_qcs_get = _qcs_handlers.QCSCredentialsHandler.get
async def _qcs_slow_get(self, user_name):
    await _asyncio.sleep({HUB_DELAY})
    await _qcs_get(self, user_name)
_qcs_handlers.QCSCredentialsHandler.get = _qcs_slow_get
"""


def _kernelspec(root: Path) -> Path:
    spec = root / "kernels" / "qcs-probe"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", PROBE, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "probe", "language": "python"}))
    return root


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _access_token(secrets_toml: str) -> str | None:
    import tomlkit

    try:
        doc = tomlkit.parse(secrets_toml).unwrap()
        return doc["credentials"]["default"]["token_payload"]["access_token"]
    except (KeyError, ValueError, TypeError):
        return None


def test_a_kernel_started_the_moment_the_server_listens_finds_fresh_files(tmp_path):
    port = free_port()
    kernels = _kernelspec(tmp_path / "jupyter-path")
    extra = f"""
c.Spawner.port = {port}
c.Spawner.environment["JUPYTER_PATH"] = {str(kernels)!r}
{SLOW_HUB}
"""
    # Tokens live long: the only new access token during the test is the one this start brings.
    with stack(tmp_path / "stack", rotate=True, ttl=600, extra_config=extra) as hub:
        login_with_http(hub, USER)
        hub.api("POST", f"/users/{USER}/server")
        hub.wait_for_server(USER, timeout=90)
        home = hub.home(USER)
        old = _access_token((home / ".qcs" / "secrets.toml").read_text())
        assert old, "the first start wrote no access token"
        token = hub.api("POST", f"/users/{USER}/tokens", {"scopes": [f"access:servers!user={USER}"], "expires_in": 600})
        auth = {"Authorization": f"token {token['token']}"}
        hub.api("DELETE", f"/users/{USER}/server")
        hub.wait_for_server(USER, ready=False)
        (home / "kernel-saw.toml").unlink(missing_ok=True)
        obtained = hub.auth_state(USER)["qcs"]["access_token_obtained_at"]
        time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))  # this start refreshes
        log_offset = len(hub.log_text())

        hub.api("POST", f"/users/{USER}/server")
        deadline = time.monotonic() + 90
        while not _listening(port):
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.005)
        listened = time.monotonic()
        base = f"http://127.0.0.1:{port}/user/{USER}"
        with concurrent.futures.ThreadPoolExecutor(2) as pool, requests.Session() as session:
            session.trust_env = False
            kernel = pool.submit(
                session.post, f"{base}/api/kernels", json={"name": "qcs-probe"}, headers=auth, timeout=60
            )
            status = pool.submit(requests.get, f"{base}/qcs-jupyter/status", headers=auth, timeout=60)
            kernel_answer, status_answer = kernel.result(), status.result()
        answered = time.monotonic() - listened
        assert kernel_answer.status_code == 201, kernel_answer.text
        assert status_answer.status_code == 200, status_answer.text

        saw = home / "kernel-saw.toml"
        deadline = time.monotonic() + 60
        while not saw.exists():
            assert time.monotonic() < deadline, "the probe kernel never ran its first line"
            time.sleep(0.1)
        fresh = hub.auth_state(USER)["access_token"]
        assert fresh != old, "the start did not bring a new access token"
        assert _access_token(saw.read_text()) == fresh, "the kernel's first line read old or no credentials"
        # The status waited too: it shows the pull of this start and no error.
        hub_part = status_answer.json()["hub"]
        assert hub_part["last_sync"] is not None and hub_part["last_sync_error"] is None, hub_part
        # The kernel's start came before the pull had finished (the Hub held its answer back) and waited for it.
        log = hub.log_text()[log_offset:]
        assert "a kernel start waits for the first QCS credentials from JupyterHub" in log
        # (No lower bound on ``answered``: the server may send its pull before this test sees the port open, so
        # under load the Hub's held-back answer can arrive less than HUB_DELAY after "listened". The kernel reading
        # this start's token, and the log line above, show the wait.)
        assert answered < HUB_DELAY + 30
        session_kernels = requests.get(f"{base}/api/kernels", headers=auth, timeout=30).json()
        for k in session_kernels:
            requests.delete(f"{base}/api/kernels/{k['id']}", headers=auth, timeout=30)
