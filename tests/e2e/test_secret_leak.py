"""Secrets stay secret: after the whole flow with DEBUG logging everywhere, no token value is in any log,
REST response, kernel environment or spawner environment."""

from __future__ import annotations

import json
import time

import requests
from jupyter_client import BlockingKernelClient

from .conftest import ACCESS_TOKEN_TTL, spawn, stack
from .procs import environ_of


def _kernel_environ(hub, user: str, session: requests.Session) -> dict[str, str]:
    """Start a kernel in the user's server and read os.environ from inside it."""
    xsrf = session.cookies.get("_xsrf", path=f"/user/{user}/")
    kernel = session.post(
        f"{hub.url}/user/{user}/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}, timeout=60
    ).json()
    runtime = hub.home(user) / ".local" / "share" / "jupyter" / "runtime"
    connection = runtime / f"kernel-{kernel['id']}.json"
    deadline = time.monotonic() + 60
    while not connection.exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    client = BlockingKernelClient(connection_file=str(connection))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            "import os, json; print(json.dumps(dict(os.environ)))", timeout=60, output_hook=_collect
        )
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()
    return json.loads(_collect.text[-1])


def _collect(msg) -> None:
    if msg["msg_type"] == "stream":
        _collect.text.append(msg["content"]["text"])


_collect.text = []


def test_no_token_value_anywhere(tmp_path):
    with stack(tmp_path, rotate=True, extra_config="c.Spawner.debug = True\nc.Application.log_level = 'DEBUG'") as hub:
        session = spawn(hub, "lee")
        session.get(f"{hub.url}/user/lee/lab", timeout=60)
        responses = [session.get(f"{hub.url}/user/lee/qcs-jupyter/status", timeout=30).text]
        first = hub.auth_state("lee")
        # Let one live refresh happen, so rotated and refreshed tokens are in play too.
        deadline = time.monotonic() + ACCESS_TOKEN_TTL + 20
        while hub.auth_state("lee")["access_token"] == first["access_token"] and time.monotonic() < deadline:
            time.sleep(0.5)
        second = hub.auth_state("lee")
        assert second["access_token"] != first["access_token"]
        xsrf = session.cookies.get("_xsrf", path="/user/lee/")
        responses.append(
            session.post(f"{hub.url}/user/lee/qcs-jupyter/refresh", headers={"X-XSRFToken": xsrf}, timeout=60).text
        )
        responses.append(session.get(f"{hub.url}/user/lee/qcs-jupyter/status", timeout=30).text)
        kernel_env = _kernel_environ(hub, "lee", session)
        third = hub.auth_state("lee")
        secrets = {
            s[k] for s in (first, second, third) for k in ("access_token", "refresh_token", "id_token") if s.get(k)
        } | {hub.session_token("lee")}
        assert len(secrets) >= 5  # three access tokens, rotated refresh tokens, id tokens

        # Positive control: the search finds a token where it belongs.
        assert third["access_token"] in (hub.home("lee") / ".qcs" / "secrets.toml").read_text()
        log = hub.log_text()
        assert "[D " in log and "qcs-jupyter: QCS credentials for profile" in log  # DEBUG logs of Hub and server
        places = {"hub+server log": log, "idp log": hub.idp.log_text(), "kernel environ": json.dumps(kernel_env)}
        places.update({f"response {i}": text for i, text in enumerate(responses)})
        places.update(
            {f"server environ {i}": env for i, env in enumerate(environ_of(hub.proc.pid, b"jupyterhub.singleuser"))}
        )
        places.update(
            {
                f"kernel process environ {i}": env
                for i, env in enumerate(environ_of(hub.proc.pid, b"ipykernel_launcher"))
            }
        )
        assert any(k.startswith("server environ") for k in places) and any(
            k.startswith("kernel process") for k in places
        )
        for where, text in places.items():
            for value in secrets:
                assert value not in text, f"a token value leaked into {where}"
        assert "QCS" not in " ".join(k for k in kernel_env if "TOKEN" in k)
