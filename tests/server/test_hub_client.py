"""QCSHubClient: settings from JupyterHub's variables, pull scheduling, same-origin URLs, no redirects followed."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from qcs_jupyter.server.hub_client import QCSHubClient

ENV = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
    "JUPYTERHUB_API_TOKEN": "t",
    "JUPYTERHUB_USER": "ada",
    "JUPYTERHUB_BASE_URL": "/",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/ada/",
}


@pytest.fixture
def client(monkeypatch):
    def make(**env) -> QCSHubClient:
        for key, value in {**ENV, **env}.items():
            monkeypatch.setenv(key, value)
        return QCSHubClient(sync_margin=120, sync_min_interval=5, sync_max_interval=1800)

    return make


def test_settings_default_from_jupyterhubs_variables(client):
    hub = client(JUPYTERHUB_SERVER_NAME="gpu")
    assert (hub.api_url, hub.api_token, hub.user, hub.server_name) == ("http://127.0.0.1:1/hub/api", "t", "ada", "gpu")
    assert hub.available


@pytest.mark.parametrize(
    ("lifetime", "left", "expected"),
    [
        pytest.param(1200, 1200, 1200 - 120, id="pulls-2-min-early"),
        pytest.param(20, 20, 20 - 20 / 3, id="short-token-margin-capped-at-a-third"),
        pytest.param(3600, 60, 5, id="nearly-expired-waits-min-interval"),
        pytest.param(86400, 86400, 1800, id="long-token-capped-at-max-interval"),
    ],
)
def test_next_delay_ahead_of_expiry(client, lifetime, left, expected):
    hub = client()
    now = datetime.now(timezone.utc)
    hub.state.last_sync = now - timedelta(seconds=lifetime - left)
    hub.state.access_token_expires_at = now + timedelta(seconds=left)
    assert hub.next_delay(now.timestamp()) == pytest.approx(expected, abs=0.01)


def test_failures_back_off_and_are_bounded(client):
    hub = client()
    delays = []
    for _ in range(10):
        hub.pull_blocking()  # nothing listens on port 1
        delays.append(hub.next_delay())
    assert delays[:4] == [10, 20, 40, 80] and max(delays) <= 320
    assert "JupyterHub did not answer" in hub.state.last_sync_error


@pytest.mark.parametrize(
    ("server", "base", "spawn", "login"),
    [
        pytest.param(
            "",
            "/",
            "/hub/spawn/ada?next=%2Fuser%2Fada%2Flab",
            "/hub/oauth_login?next=%2Fuser%2Fada%2Flab",
            id="default",
        ),
        pytest.param(
            "gpu",
            "/",
            "/hub/spawn/ada/gpu?next=%2Fuser%2Fada%2Fgpu%2Flab",
            "/hub/oauth_login?next=%2Fuser%2Fada%2Fgpu%2Flab",
            id="named-server",
        ),
        pytest.param("", "//evil.example/", None, None, id="protocol-relative-refused"),
        pytest.param("", "/\\evil.example/", None, None, id="backslash-refused"),
        pytest.param("", "https://evil.example/", None, None, id="absolute-refused"),
    ],
)
def test_spawn_and_login_urls_are_same_origin_paths(client, server, base, spawn, login):
    prefix = f"/user/ada/{server}/" if server else "/user/ada/"
    hub = client(JUPYTERHUB_SERVER_NAME=server, JUPYTERHUB_SERVICE_PREFIX=prefix, JUPYTERHUB_BASE_URL=base)
    assert (hub.spawn_url, hub.login_url) == (spawn, login)


def test_without_hub_everything_is_off_with_a_reason(monkeypatch):
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    hub = QCSHubClient()
    info = hub.info()
    assert not hub.available and info["restart_available"] is False and "JupyterHub" in info["reason"]


def test_non_owner_gets_no_actions(client):
    info = client().info(owner=False)
    assert info["owner"] is False and not info["refresh_available"] and not info["restart_available"]
    assert info["spawn_url"] is None and info["login_url"] is None


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def do_GET(self):
        _Recorder.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/hub/api"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET

    def log_message(self, *args):
        pass


def _pull_from(client, handler) -> QCSHubClient:
    """One pull from a stand-in Hub API on loopback served by ``handler``; the pull fails."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hub = client(JUPYTERHUB_API_URL=f"http://127.0.0.1:{server.server_address[1]}/hub/api")
        assert hub.pull_blocking() is False
    finally:
        server.shutdown()
    return hub


@pytest.mark.parametrize("status", [401, 403])
def test_refusals_say_what_to_do(client, status):
    class Refuse(_Recorder):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"message": "no"}')

    hub = _pull_from(client, Refuse)
    assert hub.state.relogin_required is (status == 401)
    assert ("Log in again" if status == 401 else "Restart your server") in hub.state.last_sync_error


def test_redirects_are_not_followed_with_the_token(client):
    _Recorder.seen = []
    hub = _pull_from(client, _Recorder)
    assert [path for path, _ in _Recorder.seen] == ["/hub/api/qcs/credentials/ada"]  # /elsewhere never asked
    assert "HTTP 302" in hub.state.last_sync_error
