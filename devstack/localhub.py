"""Run a real JupyterHub with QCSAuthenticator, configurable-http-proxy and local user servers, on 127.0.0.1.

Used by the README demo, the end-to-end tests and the benchmarks, always together with ``LocalIdP``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .localidp import LocalIdP, ensure_node_modules, free_port
from .process import LoggedProcess
from .qcsapi import QCSAPI

PROXY_DIR = Path(__file__).resolve().parent / "proxy"
#: The venvs of the real QCS clients ``scripts/setup.sh`` makes: ``pyquil`` (4.22) and ``qcs-sdk`` (0.31) ...
CLIENT_VENVS = Path(__file__).resolve().parents[1] / ".venv-clients"
#: ... and where it registers their kernelspecs (``qcs-pyquil``, ``qcs-sdk``).
CLIENT_KERNELS_PATH = CLIENT_VENVS / "share" / "jupyter"


class LocalHubError(RuntimeError):
    """The Hub could not be started."""


class LocalHub(LoggedProcess):
    """A JupyterHub process configured for qcs-jupyter against a ``LocalIdP``.

    ``admin_token`` belongs to a service with ``admin:users``, ``admin:auth_state``, ``admin:servers`` and
    ``access:servers``, for tests to look inside; users log in at ``url`` with any name.

    ``https``: the proxy serves https with a certificate from the IdP's throwaway CA, and user servers (so their
    kernels) get ``SSL_CERT_FILE`` pointing at that CA: qcs-sdk-python 0.31 refreshes only at an https issuer, and
    the Hub's issuer for clients lives under the Hub's public URL. ``qcs_api``: the stand-in QCS API that users'
    ``settings.toml`` names. ``client_kernels``: user servers see the kernelspecs of the real QCS clients.
    """

    stop_timeout = 20.0

    def __init__(
        self,
        workdir: Path,
        idp: LocalIdP,
        *,
        client_id: str = "qcs-public",
        client_secret: str | None = None,
        refresh_margin: int = 300,
        auth_refresh_age: int = 300,
        sync_margin: float = 120.0,
        extra_config: str = "",
        port: int | None = None,
        startup_timeout: float = 60.0,
        https: bool = False,
        qcs_api: QCSAPI | None = None,
        client_kernels: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.idp = idp
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_margin, self.auth_refresh_age, self.sync_margin = refresh_margin, auth_refresh_age, sync_margin
        self.extra_config = extra_config
        self.port = port or free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.admin_token = secrets.token_hex(24)
        self.crypt_key = secrets.token_hex(32)  # kept across restarts of this Hub: auth_state stays readable
        self.startup_timeout = startup_timeout
        self.https, self.qcs_api, self.client_kernels = https, qcs_api, client_kernels
        if https and idp.ca_path is None:
            raise LocalHubError("an https Hub needs a started https IdP (its CA signs the Hub's certificate)")
        if client_kernels and not (CLIENT_KERNELS_PATH / "kernels").is_dir():
            raise LocalHubError(f"no QCS client kernelspecs in {CLIENT_KERNELS_PATH}; run bash scripts/setup.sh")
        self.homes = self.workdir / "homes"
        super().__init__(self.workdir / "jupyterhub.log")

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """Trusts the Hub's certificate (the IdP's CA) when it serves https."""
        return self.idp.ssl_context() if self.https else None

    @property
    def callback_url(self) -> str:
        return f"{self.url}/hub/oauth_callback"

    def home(self, user: str) -> Path:
        return self.homes / user

    def session_token(self, user: str) -> str:
        """The session refresh token the user's server wrote into ~/.qcs/secrets.toml (what kernels refresh with)."""
        import tomlkit

        doc = tomlkit.parse((self.home(user) / ".qcs" / "secrets.toml").read_text()).unwrap()
        token = doc["credentials"]["default"]["token_payload"]["refresh_token"]
        assert token.startswith("qcsj2."), "the refresh token in secrets.toml is not a session token of the Hub"
        return token

    def user_server_config(self) -> dict:
        """jupyter_server config of the user servers (JupyterLab's news and update checks off)."""
        return {
            "QCSHubClient": {"sync_margin": self.sync_margin, "sync_min_interval": 1.0},
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
        }

    def authenticator_config(self) -> str:
        """The authenticator part of jupyterhub_config.py: QCSAuthenticator against the local IdP."""
        return f"""
c.JupyterHub.authenticator_class = "qcs"
c.QCSAuthenticator.issuer = {self.idp.issuer!r}
c.QCSAuthenticator.client_id = {self.client_id!r}
c.QCSAuthenticator.client_secret = {self.client_secret or ""!r}
c.QCSAuthenticator.oauth_callback_url = {self.callback_url!r}
c.QCSAuthenticator.allow_all = True
c.QCSAuthenticator.refresh_margin = {self.refresh_margin}
c.QCSAuthenticator.auth_refresh_age = {self.auth_refresh_age}
c.QCSAuthenticator.allow_insecure_issuer = {not self.idp.https!r}  # only a local IdP on loopback is ever http
"""

    def spawner_environment(self) -> dict[str, str]:
        """Environment of the user servers, and so of their kernels."""
        env = {"JUPYTER_CONFIG_DIR": str(self.workdir / "user-config")}
        if self.https:
            env["SSL_CERT_FILE"] = str(self.idp.ca_path)  # test stack only: the throwaway CA
        if self.client_kernels:
            env["JUPYTER_PATH"] = str(CLIENT_KERNELS_PATH)
        return env

    def stack_config(self) -> str:
        """The parts of jupyterhub_config.py that come from the stack's options (https, stand-in QCS API)."""
        lines = []
        if self.https:
            cert, key = self.idp.issue_cert(self.workdir, "hub")
            lines += [f"c.JupyterHub.ssl_cert = {str(cert)!r}", f"c.JupyterHub.ssl_key = {str(key)!r}"]
        if self.qcs_api is not None:
            lines.append(f"c.QCSAuthenticator.qcs_api_url = {self.qcs_api.url!r}")
            lines.append(f"c.QCSAuthenticator.qcs_grpc_api_url = {self.qcs_api.grpc_url!r}")
        return "\n".join(lines)

    def config_text(self) -> str:
        user_config = self.workdir / "user-config"
        user_config.mkdir(parents=True, exist_ok=True)
        (user_config / "jupyter_server_config.json").write_text(json.dumps(self.user_server_config()))
        root_args = ["--allow-root"] if os.geteuid() == 0 else []
        return f"""
c = get_config()  # noqa: F821
c.JupyterHub.services = [{{"name": "qcs-test", "api_token": {self.admin_token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "qcs-test", "scopes": ["admin:users", "admin:auth_state", "admin:servers", "access:servers", "read:users", "tokens"], "services": ["qcs-test"]}}
]
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {self.hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{str(PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
c.JupyterHub.db_url = "sqlite:///" + {str(self.workdir / "jupyterhub.sqlite")!r}
c.JupyterHub.cookie_secret_file = {str(self.workdir / "jupyterhub_cookie_secret")!r}
c.JupyterHub.pid_file = {str(self.workdir / "jupyterhub.pid")!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(self.homes)!r} + "/{{username}}"
c.Spawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {root_args!r}
c.Spawner.default_url = "/lab"
c.Spawner.environment = {self.spawner_environment()!r}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
{self.authenticator_config()}
{self.stack_config()}
{self.extra_config}
"""

    def start(self) -> LocalHub:
        ensure_node_modules(PROXY_DIR, package="configurable-http-proxy")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.homes.mkdir(exist_ok=True)
        config = self.workdir / "jupyterhub_config.py"
        config.write_text(self.config_text())
        env = {
            **os.environ,
            **self.idp.ca_env(),
            "JUPYTERHUB_CRYPT_KEY": self.crypt_key,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self._spawn([sys.executable, "-m", "jupyterhub", "-f", str(config), "--debug"], cwd=self.workdir, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalHubError(f"JupyterHub exited with {self._proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                self.api("GET", "/")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        self.stop()
        raise LocalHubError(
            f"JupyterHub did not come up within {self.startup_timeout:.0f} s:\n{self.log_text()[-4000:]}"
        )

    def stop(self, *, leave_running: bool = False) -> None:
        """Stop the Hub. Unless ``leave_running`` (a test of a Hub restart that keeps servers), every process it
        started and left behind (``cleanup_servers``/``cleanup_proxy`` off, or a Hub that was killed) is stopped
        too: the user servers its database records and the proxy its pid file names."""
        super().stop()
        if not leave_running:
            stop_processes(self.leftover_pids())

    def leftover_pids(self) -> list[int]:
        """Running processes this Hub started: the proxy (its pid file) and user servers (their spawner state)."""
        pids = []
        proxy_pid_file = self.workdir / "jupyterhub-proxy.pid"
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(proxy_pid_file.read_text().strip()))
        database = self.workdir / "jupyterhub.sqlite"
        if database.exists():
            import sqlite3

            with (
                contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db,
                contextlib.suppress(sqlite3.Error),
            ):
                for (state,) in db.execute("SELECT state FROM spawners WHERE state IS NOT NULL"):
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        pid = json.loads(state).get("pid")
                        if isinstance(pid, int) and pid > 0:
                            pids.append(pid)
        return [pid for pid in pids if _started_by_a_hub(pid)]

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/hub/api{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "DELETE") else None),
            headers={"Authorization": f"token {token or self.admin_token}"},
        )
        with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as response:
            text = response.read()
            return json.loads(text) if text else None

    def auth_state(self, user: str) -> dict[str, Any] | None:
        return self.api("GET", f"/users/{user}")["auth_state"]

    def wait_for_server(self, user: str, *, ready: bool = True, timeout: float = 60.0) -> dict[str, Any]:
        """Until the user's default server is ready (and has pulled its first credentials), or stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}")
            server = (model.get("servers") or {}).get("")
            if ready and server and server.get("ready"):
                self.wait_for_first_pull(user, timeout=max(1.0, deadline - time.monotonic()))
                return model
            if not ready and not server:
                return model
            time.sleep(0.25)
        raise LocalHubError(f"server of {user} did not become {'ready' if ready else 'stopped'} within {timeout:.0f} s")

    def wait_for_first_pull(self, user: str, timeout: float = 30.0) -> None:
        """A ready server pulls its first credentials once it listens, which can be just after the Hub calls it
        ready. Its status answers once that pull has written ``~/.qcs`` (or failed): ask it, so that a test reads
        the files after they were written. A server without the extension (404) has nothing to wait for."""
        deadline = time.monotonic() + timeout
        url = f"{self.url}/user/{user}/qcs-jupyter/status"
        while time.monotonic() < deadline:
            request = urllib.request.Request(url, headers={"Authorization": f"token {self.admin_token}"})
            try:
                with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()):
                    return
            except urllib.error.HTTPError as e:
                if e.code < 500:  # 404: no extension; a refusal: nothing to learn by asking again
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)


def _started_by_a_hub(pid: int) -> bool:
    """Whether ``pid`` runs a user server or configurable-http-proxy (a pid file may name a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(
        part in cmdline for part in (b"jupyterhub-singleuser", b"jupyterhub.singleuser", b"configurable-http-proxy")
    )


def stop_processes(pids: list[int], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s, to processes that are not our children (no wait() for them)."""
    import signal

    alive = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2 :].split()[0] != "Z"  # a zombie has ended, waiting for its parent


def login_with_http(hub: LocalHub, username: str, next_url: str = "/hub/home"):
    """Log in to the hub through the IdP's login form with ``requests`` (no browser); returns the session."""
    import re
    from html import unescape
    from urllib.parse import urljoin

    import requests

    session = requests.Session()
    session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
    session.verify = str(hub.idp.ca_path) if hub.idp.ca_path else True
    page = session.get(f"{hub.url}/hub/oauth_login", params={"next": next_url}, timeout=30)
    match = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    if not match or 'name="login"' not in page.text:
        raise LocalHubError(f"no IdP login form at {page.url} (HTTP {page.status_code})")
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    fields.update({"login": username, "password": "any"})
    done = session.post(urljoin(page.url, unescape(match.group(1))), data=fields, timeout=60)
    if not done.url.startswith(hub.url) or done.status_code >= 400:
        raise LocalHubError(f"login as {username} ended at {done.url} (HTTP {done.status_code})")
    return session


@contextlib.contextmanager
def local_stack(
    workdir: Path,
    *,
    https: bool = True,
    ttl: int = 3600,
    rotate: bool = False,
    client_id: str = "qcs-public",
    client_secret: str | None = None,
    port: int | None = None,
    idp_options: dict[str, Any] | None = None,
    hub_https: bool = False,
    qcs_api: bool = False,
    hub_class: type[LocalHub] = LocalHub,
    **hub_options: Any,
) -> Iterator[LocalHub]:
    """A started local IdP (one client, allowed to redirect to the Hub) and a ``LocalHub`` using it.

    ``hub_https`` serves the Hub over https (the IdP must be https too); ``qcs_api`` also starts the stand-in
    QCS API (``hub.qcs_api``), which introspects tokens at the IdP as a client of its own. ``hub_class``: a
    ``LocalHub`` subclass (e.g. ``devstack.docker.DockerHub``), given ``hub_options`` too.
    """
    ensure_node_modules()
    port = port or free_port()
    if hub_https and not https:
        raise LocalHubError("hub_https=True needs https=True: the IdP's CA signs the Hub's certificate")
    callback = f"{'https' if hub_https else 'http'}://127.0.0.1:{port}/hub/oauth_callback"
    client: dict[str, Any] = {"client_id": client_id, "redirect_uris": [callback]}
    if client_secret:
        client["client_secret"] = client_secret
    clients = [client]
    api_client = {"client_id": "qcs-api", "client_secret": secrets.token_urlsafe(24), "resource_server": True}
    if qcs_api:
        clients.append(api_client)
    idp = LocalIdP(
        workdir / "idp",
        https=https,
        access_token_ttl=ttl,
        rotate_refresh_tokens=rotate,
        clients=clients,
        **(idp_options or {}),
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(idp)
        api = (
            stack.enter_context(QCSAPI(idp, api_client["client_id"], api_client["client_secret"])) if qcs_api else None
        )
        hub = hub_class(
            workdir / "hub",
            idp,
            port=port,
            client_id=client_id,
            client_secret=client_secret,
            https=hub_https,
            qcs_api=api,
            **hub_options,
        )
        yield stack.enter_context(hub)
