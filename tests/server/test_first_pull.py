"""The first pull runs once the server listens; kernels, terminals and the status that come first wait for it,
bounded by ``first_pull_wait``, with a plain message when the Hub does not answer."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from qcs_jupyter.credentials import AuthServer
from qcs_jupyter.handoff import build_payload
from qcs_jupyter.server.gates import hold_kernel_starts, hold_starts, hold_terminal_starts
from qcs_jupyter.server.hub_client import QCSHubClient
from qcs_jupyter.server.keeper import CredentialKeeper

ISSUER = "https://hub.example.org/hub/api/qcs/issuer"


def _env(monkeypatch, api_url: str) -> None:
    for key, value in {
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_API_TOKEN": "server-token",
        "JUPYTERHUB_USER": "ada",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ada/",
    }.items():
        monkeypatch.setenv(key, value)


class _SlowHub(BaseHTTPRequestHandler):
    """The Hub's credentials route, answering after ``delay`` seconds."""

    delay: ClassVar[float] = 0.5
    body: ClassVar[bytes] = b"{}"

    def do_GET(self):
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_hub(home, monkeypatch, token_response):
    """A Hub API on loopback whose credentials answer comes after half a second; yields the access token sent."""
    tokens = token_response()
    state = {**tokens, "qcs": {}, "token_response": tokens}
    payload = build_payload(
        state,
        auth_server=AuthServer(ISSUER, "qcs-public"),
        session_token="qcsj2.session",
        api_url=None,
        grpc_api_url=None,
        profile=None,
    )
    _SlowHub.body = json.dumps(payload).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _env(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}/hub/api")
    yield tokens["access_token"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_hub(home, monkeypatch):
    """A Hub API address that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # never accept()ed: connections complete in the backlog, requests get no answer
    _env(monkeypatch, f"http://127.0.0.1:{sock.getsockname()[1]}/hub/api")
    yield
    sock.close()


class FakeKernelManager:
    """Records what a kernel would find in ~/.qcs at its first line."""

    def __init__(self, home):
        self.secrets = home / ".qcs" / "secrets.toml"
        self.seen: list[str | None] = []

    async def start_kernel(self, **kwargs):
        self.seen.append(self.secrets.read_text() if self.secrets.exists() else None)
        return "kernel-id"


class FakeTerminalManager(FakeKernelManager):
    def new_terminal(self, **kwargs):
        self.seen.append(self.secrets.read_text() if self.secrets.exists() else None)
        return "terminal"


def test_a_kernel_started_before_the_first_pull_finishes_finds_the_files(slow_hub, home):
    async def main():
        hub = QCSHubClient()
        km = FakeKernelManager(home)
        assert hold_kernel_starts(km, hub) and not hold_kernel_starts(km, hub)  # wrapped once
        hub.start()  # what the extension does once the server listens
        started = time.monotonic()
        assert await km.start_kernel() == "kernel-id"
        waited = time.monotonic() - started
        hub.stop()
        return km.seen, waited, hub

    seen, waited, hub = asyncio.run(main())
    assert seen[0] is not None and slow_hub in seen[0], "the kernel did not find the pulled access token"
    assert 0.3 < waited < 5
    assert hub.first_pull_done.is_set() and hub.state.last_sync is not None


def test_a_terminal_started_before_the_first_pull_finishes_finds_the_files(slow_hub, home):
    async def main():
        hub = QCSHubClient()
        tm = FakeTerminalManager(home)
        assert hold_terminal_starts(tm, hub)
        hub.start()
        await asyncio.sleep(0)  # the loop hands the pull to its thread
        assert tm.new_terminal() == "terminal"  # synchronous, on the event loop's thread, as terminado does it
        hub.stop()
        return tm.seen

    seen = asyncio.run(main())
    assert seen[0] is not None and slow_hub in seen[0]


def test_the_status_waits_for_the_first_pull(slow_hub, home):
    async def main():
        keeper = CredentialKeeper(log=logging.getLogger("test"))
        keeper.start()  # while the server starts
        keeper.start_background()  # once it listens
        status = await keeper.status()
        keeper.hub.stop()
        return status

    status = asyncio.run(main())
    assert status["state"] == "ok" and status["hub"]["last_sync"] is not None
    assert status["hub"]["last_sync_error"] is None


def test_a_silent_hub_holds_a_kernel_start_only_first_pull_wait(silent_hub, home, caplog):
    async def main():
        hub = QCSHubClient(first_pull_wait=0.5, timeout=3)
        km = FakeKernelManager(home)
        hold_kernel_starts(km, hub)
        hub.start()
        started = time.monotonic()
        await km.start_kernel()
        waited = time.monotonic() - started
        info = hub.info()
        again = time.monotonic()
        await km.start_kernel()  # the wait is over for good: no second wait
        hub.stop()
        return waited, time.monotonic() - again, info

    with caplog.at_level(logging.INFO):
        waited, second, info = asyncio.run(main())
    assert 0.3 < waited < 2 and second < 0.2
    assert info["last_sync_error"].startswith(
        "Waiting for JupyterHub to send your QCS credentials (no answer within 0.5 s)"
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("JupyterHub has not sent QCS credentials within" in m and "a kernel start" in m for m in warnings)


def test_without_a_hub_nothing_waits_or_is_wrapped(home, monkeypatch):
    for key in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER"):
        monkeypatch.delenv(key, raising=False)
    hub = QCSHubClient()
    hub.expect_first_pull()
    assert not hub.first_pull_pending

    class App:
        kernel_manager = FakeKernelManager(home)

    original = App.kernel_manager.start_kernel
    hold_starts(App, hub)
    assert App.kernel_manager.start_kernel == original


def test_the_extension_imports_no_credential_code_before_the_server_listens():
    """What loads with the extension (before the server listens) stays small: TOML, file locks and the credential
    model come with the first pull."""
    code = (
        "import sys; import qcs_jupyter.server; "
        "print(sorted(m for m in sys.modules if m.startswith(('qcs_jupyter.credentials', 'qcs_jupyter.handoff', "
        "'tomlkit', 'filelock'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_server_waits_for_the_hub_longer_than_the_hub_waits_for_the_idp():
    """With a slow IdP the Hub answers once its own wait is over; the server must still be listening then."""
    from qcs_jupyter.hub.authenticator import QCSAuthenticator

    assert QCSHubClient.timeout.default_value >= QCSAuthenticator.refresh_timeout.default_value + 5
