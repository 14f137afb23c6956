"""JupyterHub's internal TLS: the server reaches the Hub API over https with the certificates JupyterHub gave it
(`JUPYTERHUB_SSL_*`), for the pull at start and for every later one."""

from __future__ import annotations

from .conftest import spawn, stack
from .procs import environ_of


def test_pulls_work_over_internal_tls(tmp_path):
    extra = f"""
c.ConfigurableHTTPProxy.api_url = c.ConfigurableHTTPProxy.api_url.replace("http://", "https://")
c.JupyterHub.internal_ssl = True
c.JupyterHub.internal_certs_location = {str(tmp_path / "internal-certs")!r}
"""
    with stack(tmp_path, rotate=True, ttl=600, extra_config=extra) as hub:
        session = spawn(hub, "ada")
        env = dict(
            line.split("=", 1)
            for line in environ_of(hub.proc.pid, b"jupyterhub.singleuser")[0].split("\0")
            if "=" in line
        )
        assert env["JUPYTERHUB_API_URL"].startswith("https://") and env["JUPYTERHUB_SSL_CLIENT_CA"]
        assert hub.auth_state("ada")["access_token"] in (hub.home("ada") / ".qcs" / "secrets.toml").read_text()
        session.get(f"{hub.url}/user/ada/lab", timeout=60)
        xsrf = session.cookies.get("_xsrf", path="/user/ada/")
        status = session.post(
            f"{hub.url}/user/ada/qcs-jupyter/refresh", headers={"X-XSRFToken": xsrf}, timeout=60
        ).json()
        assert status["hub"]["last_sync_error"] is None and status["hub"]["last_sync"]
