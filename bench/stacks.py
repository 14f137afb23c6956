"""The local stacks the benchmarks run against: ``devstack/``'s IdP and Hub, plus a plain-GenericOAuthenticator Hub."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devstack.localhub import LocalHub, local_stack, login_with_http
from devstack.localidp import LocalIdP, ensure_node_modules, free_port

CLIENT_ID = "qcs-public"


class BaselineHub(LocalHub):
    """The same Hub, proxy and spawner as ``LocalHub``, but with oauthenticator's plain ``GenericOAuthenticator``.

    The user servers run without the qcs_jupyter server extension: this is what a
    Hub costs without qcs-jupyter at all.
    """

    def user_server_config(self) -> dict:
        return {**super().user_server_config(), "ServerApp": {"jpserver_extensions": {"qcs_jupyter": False}}}

    def authenticator_config(self) -> str:
        idp = self.idp
        return f"""
c.JupyterHub.authenticator_class = "oauthenticator.generic.GenericOAuthenticator"
c.GenericOAuthenticator.client_id = {self.client_id!r}
c.GenericOAuthenticator.client_secret = {self.client_secret or ""!r}
c.GenericOAuthenticator.authorize_url = {idp.authorize_url!r}
c.GenericOAuthenticator.token_url = {idp.token_url!r}
c.GenericOAuthenticator.userdata_url = {idp.userinfo_url!r}
c.GenericOAuthenticator.scope = ["openid", "offline_access", "profile", "email"]
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.oauth_callback_url = {self.callback_url!r}
c.GenericOAuthenticator.allow_all = True
c.GenericOAuthenticator.auth_refresh_age = {self.auth_refresh_age}
"""


def callback(port: int) -> str:
    return f"http://127.0.0.1:{port}/hub/oauth_callback"


def make_idp(workdir: Path, ports: list[int], **options: Any) -> LocalIdP:
    """A (not yet started) https IdP with one public client that may redirect to a Hub on each of ``ports``."""
    ensure_node_modules()
    clients = [{"client_id": CLIENT_ID, "redirect_uris": [callback(p) for p in ports]}]
    return LocalIdP(workdir, https=True, clients=clients, **options)


#: Hub config: each server's API token, as JupyterHub issued it, into a 0600 file beside the Hub (bench stacks only),
#: so a benchmark can call the Hub as that server does without looking into any process.
RECORD_SERVER_TOKENS = """
def _qcs_bench_record_server_token(spawner):
    import os, pathlib
    directory = pathlib.Path({directory!r})
    directory.mkdir(mode=0o700, exist_ok=True)
    name = spawner.user.name + ("." + spawner.name if spawner.name else "")
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(spawner.api_token)
c.Spawner.pre_spawn_hook = _qcs_bench_record_server_token
"""


def _tokens_dir(hub: LocalHub) -> Path:
    return hub.workdir / "server-tokens"


@contextlib.contextmanager
def qcs_stack(
    workdir: Path,
    *,
    ttl: int = 3600,
    rotate: bool = False,
    idp_options: dict[str, Any] | None = None,
    extra_config: str = "",
    **hub_options: Any,
) -> Iterator[LocalHub]:
    """A started IdP and QCS Hub (``LocalHub``, in ``workdir / "hub"``); stops both on exit. The Hub records each
    server's API token for ``server_token``."""
    record = RECORD_SERVER_TOKENS.format(directory=str(workdir / "hub" / "server-tokens"))
    with local_stack(
        workdir,
        ttl=ttl,
        rotate=rotate,
        client_id=CLIENT_ID,
        idp_options=idp_options,
        extra_config=record + extra_config,
        **hub_options,
    ) as hub:
        assert _tokens_dir(hub) == workdir / "hub" / "server-tokens"
        yield hub


def hub_api_url(hub: LocalHub) -> str:
    """The Hub's own API address, as user servers get it in JUPYTERHUB_API_URL (not through the proxy)."""
    return f"http://127.0.0.1:{hub.hub_port}/hub/api"


def server_model(hub: LocalHub, user: str) -> dict[str, Any] | None:
    return (hub.api("GET", f"/users/{user}").get("servers") or {}).get("")


def start_server(hub: LocalHub, user: str, timeout: float = 90.0, poll: float = 0.05) -> float:
    """Start ``user``'s default server through the admin API; seconds until the Hub reports it ready."""
    started = time.perf_counter()
    hub.api("POST", f"/users/{user}/server")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = server_model(hub, user)
        if model and model.get("ready"):
            return time.perf_counter() - started
        time.sleep(poll)
    raise TimeoutError(f"{user}'s server was not ready within {timeout:.0f} s")


def server_token(hub: LocalHub, user: str) -> str:
    """The API token JupyterHub gave ``user``'s running default server (recorded by a ``qcs_stack`` Hub when it
    started the server), so a benchmark can call the Hub exactly as that server does. No process is looked into."""
    path = _tokens_dir(hub) / user
    if not path.is_file():
        raise RuntimeError(f"no recorded server token of {user}: start the server on a qcs_stack Hub")
    return path.read_text()


def stop_server(hub: LocalHub, user: str, timeout: float = 60.0, poll: float = 0.05) -> None:
    hub.api("DELETE", f"/users/{user}/server")
    wait_until_stopped(hub, user, timeout, poll)


def wait_until_stopped(hub: LocalHub, user: str, timeout: float = 60.0, poll: float = 0.05) -> None:
    """Wait until the Hub has no default server of ``user`` (asked to stop already)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server_model(hub, user):
            return
        time.sleep(poll)
    raise TimeoutError(f"{user}'s server did not stop within {timeout:.0f} s")


__all__ = [
    "CLIENT_ID",
    "BaselineHub",
    "LocalHub",
    "LocalIdP",
    "free_port",
    "hub_api_url",
    "login_with_http",
    "make_idp",
    "qcs_stack",
    "server_token",
    "start_server",
    "stop_server",
    "wait_until_stopped",
]
