"""The first pull runs once the server listens, and what comes first waits for it: a kernel started the moment the
server listens finds the fresh credentials of this start in ``~/.qcs`` at its first line, and so does the status.

A real IdP and Hub. The Hub holds back its answers to the server's pulls until the test lets them go (a slow Hub,
as slow as it takes): the test lets the first pull of the start go only once the server has logged that the
kernel's start waits for it, so the kernel's start certainly comes before the pull has written the files, however
slowly a busy machine serves the kernel's request. The kernel is a kernelspec whose first line copies ``~/.qcs/secrets.toml`` aside, then runs ipykernel.
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
HELD_AT_MOST = 60  # s: how long the Hub holds an answer back, at most, while the test has not let it go
WAITS = "a kernel start waits for the first QCS credentials from JupyterHub"
#: The kernel's first line reads the files, as a notebook whose first cell makes a QCS client would.
PROBE = (
    "import pathlib; s = pathlib.Path.home() / '.qcs' / 'secrets.toml'; "
    "(pathlib.Path.home() / 'kernel-saw.toml').write_text(s.read_text() if s.exists() else 'MISSING')\n"
    "from ipykernel.kernelapp import launch_new_instance\n"
    "launch_new_instance()\n"
)


def slow_hub(gate: Path) -> str:
    """Hub config: the credentials route answers only while ``gate`` exists (it waits, without holding the Hub up,
    at most HELD_AT_MOST seconds)."""
    return f"""
import asyncio as _asyncio, pathlib as _pathlib, time as _time
from qcs_jupyter.hub import handlers as _qcs_handlers
_qcs_get = _qcs_handlers.QCSCredentialsHandler.get
async def _qcs_slow_get(self, user_name):
    _until = _time.monotonic() + {HELD_AT_MOST}
    while not _pathlib.Path({str(gate)!r}).exists() and _time.monotonic() < _until:
        await _asyncio.sleep(0.05)
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
    gate = tmp_path / "hub-answers"
    gate.touch()  # the first start's pulls go through
    extra = f"""
c.Spawner.port = {port}
c.Spawner.environment["JUPYTER_PATH"] = {str(kernels)!r}
{slow_hub(gate)}
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
        gate.unlink()  # from now on the Hub holds its answers back until the kernel's start is seen waiting

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
            # The kernel's start came before the pull had finished (the Hub holds its answer back) and waits for it.
            deadline = time.monotonic() + 45
            while WAITS not in hub.log_text()[log_offset:]:
                assert time.monotonic() < deadline, "the server never said that the kernel's start waits"
                assert not kernel.done(), f"the kernel started without waiting: {kernel.result().text}"
                time.sleep(0.05)
            gate.touch()
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
        assert answered < HELD_AT_MOST  # the wait ended with the pull, not with the server's own bound
        session_kernels = requests.get(f"{base}/api/kernels", headers=auth, timeout=30).json()
        for k in session_kernels:
            requests.delete(f"{base}/api/kernels/{k['id']}", headers=auth, timeout=30)
