"""`authenticator_class = "qcs"` is the whole Hub configuration: the Zero-to-JupyterHub example's `hub.config`, loaded
into a real JupyterHub the way the chart does, logs users in and hands their servers QCS credentials; anything
missing is one log line naming the setting, never a traceback."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from devstack.localhub import PROXY_DIR, LocalHub, LocalHubError, login_with_http
from devstack.localidp import LocalIdP, ensure_node_modules, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class ChartConfiguredHub(LocalHub):
    """The authenticator part of the config is the example values' `hub.config`, applied as the chart's
    jupyterhub_config.py does (`c[section].update(values)` per section). Only what a cluster would supply
    differently here is set after it: the issuer (the local IdP instead of QCS's) and this Hub's own URL."""

    def authenticator_config(self) -> str:
        return f"""
import yaml
with open({str(EXAMPLES / "z2jh-values.yaml")!r}) as f:
    _values = yaml.safe_load(f)
for _section, _settings in _values["hub"]["config"].items():
    c[_section].update(_settings)
c.QCSAuthenticator.issuer = {self.idp.issuer!r}
c.QCSAuthenticator.oauth_callback_url = {self.callback_url!r}
"""


def test_z2jh_values_alone_configure_a_working_hub(tmp_path, monkeypatch):
    values = yaml.safe_load((EXAMPLES / "z2jh-values.yaml").read_text())
    assert "extraConfig" not in values["hub"]  # hub.config YAML alone, no Python
    assert "allow_all" not in values["hub"]["config"]["QCSAuthenticator"]
    assert "valueFrom" in values["hub"]["extraEnv"]["JUPYTERHUB_CRYPT_KEY"]  # secrets by reference only
    ensure_node_modules()
    port = free_port()
    client = {"client_id": "z2jh-client", "redirect_uris": [f"http://127.0.0.1:{port}/hub/oauth_callback"]}
    # The chart passes the client id from a Kubernetes secret as OAUTH_CLIENT_ID (extraEnv); so does this test.
    monkeypatch.setenv("OAUTH_CLIENT_ID", "z2jh-client")
    with (
        LocalIdP(tmp_path / "idp", https=True, clients=[client]) as idp,
        ChartConfiguredHub(tmp_path / "hub", idp, port=port, client_id="ignored") as hub,
    ):
        allowed = values["hub"]["config"]["QCSAuthenticator"]["allowed_users"][0]  # ada@example.org
        session = login_with_http(hub, allowed)  # the local IdP's preferred_username is the login name
        session.get(f"{hub.url}/hub/spawn/{allowed}", timeout=90)
        hub.wait_for_server(allowed)
        settings = (hub.home(allowed) / ".qcs" / "settings.toml").read_text()
        assert f'issuer = "{hub.url}/hub/api/qcs/issuer"' in settings and 'client_id = "z2jh-client"' in settings
        assert "access_token" in (hub.home(allowed) / ".qcs" / "secrets.toml").read_text()
        with pytest.raises(LocalHubError, match="HTTP 403"):
            login_with_http(hub, "mallory")  # not in allowed_users
        assert "Traceback" not in hub.log_text()


class ExampleConfiguredHub(LocalHub):
    """``examples/jupyterhub_config.py`` loaded as it is, then only what this machine supplies differently: the issuer
    (the local IdP), this Hub's URL, and local processes instead of its SystemdSpawner (no systemd runs here)."""

    def authenticator_config(self) -> str:
        return f"""
load_subconfig({str(EXAMPLES / "jupyterhub_config.py")!r})
assert c.JupyterHub.spawner_class == "systemd"
c.JupyterHub.spawner_class = "simple"
c.QCSAuthenticator.issuer = {self.idp.issuer!r}
c.QCSAuthenticator.oauth_callback_url = {self.callback_url!r}
"""


def test_local_example_configures_a_working_hub(tmp_path, monkeypatch):
    ensure_node_modules()
    port = free_port()
    client = {"client_id": "example-client", "redirect_uris": [f"http://127.0.0.1:{port}/hub/oauth_callback"]}
    monkeypatch.setenv("OAUTH_CLIENT_ID", "example-client")  # as the example's comment says to export it
    monkeypatch.delenv("OAUTH_CLIENT_SECRET", raising=False)
    with (
        LocalIdP(tmp_path / "idp", https=True, clients=[client]) as idp,
        ExampleConfiguredHub(tmp_path / "hub", idp, port=port, client_id="ignored") as hub,
    ):
        session = login_with_http(hub, "ada@example.org")  # in the example's allowed_users
        session.get(f"{hub.url}/hub/spawn/ada@example.org", timeout=90)
        hub.wait_for_server("ada@example.org")
        assert "access_token" in (hub.home("ada@example.org") / ".qcs" / "secrets.toml").read_text()
        with pytest.raises(LocalHubError, match="HTTP 403"):
            login_with_http(hub, "mallory@example.org")  # not in allowed_users
        assert "Traceback" not in hub.log_text()


def test_missing_settings_are_one_log_line_each(tmp_path):
    """A Hub with only `authenticator_class = "qcs"` and the allow setting starts, and says what is missing."""
    port, hub_port, api_port = free_port(), free_port(), free_port()
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        f"""
c = get_config()  # noqa: F821
c.JupyterHub.authenticator_class = "qcs"
c.QCSAuthenticator.allowed_users = {{"ada"}}
c.QCSAuthenticator.issuer = "http://127.0.0.1:{free_port()}/oauth2/unreachable"
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
"""
    )
    env = {**os.environ, "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
    env.pop("OAUTH_CLIENT_ID", None)
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                try:
                    if requests.get(f"http://127.0.0.1:{port}/hub/api", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.25)
            else:
                raise LocalHubError(f"the Hub did not come up:\n{log.read_text()[-3000:]}")
            # The login page still renders; the IdP being down is a clear 503, not a crash.
            login = requests.get(f"http://127.0.0.1:{port}/hub/oauth_login", timeout=30, allow_redirects=False)
            assert login.status_code == 503 and "cannot be reached" in login.text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "QCS:" in line and "oauth_callback_url" in line]
    assert len(errors) == 1 and "c.QCSAuthenticator.oauth_callback_url" in errors[0], errors


@pytest.mark.parametrize("name", ["jupyterhub_config.py", "dockerspawner_config.py"])
def test_python_examples_are_zero_config(name):
    text = (EXAMPLES / name).read_text()
    assert 'c.JupyterHub.authenticator_class = "qcs"' in text
    for removed in ("configure_hub", "load_roles", "server_token_scopes", "custom_scopes", "allow_all"):
        assert removed not in text, removed
    assert "allowed_users" in text


def test_missing_crypt_key_is_one_line_not_a_traceback(tmp_path):
    """Without JUPYTERHUB_CRYPT_KEY JupyterHub itself stops before any authenticator check: one line naming it."""
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        f"""
c = get_config()  # noqa: F821
c.JupyterHub.authenticator_class = "qcs"
c.QCSAuthenticator.allowed_users = {{"ada"}}
c.QCSAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {free_port()}
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
"""
    )
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_CRYPT_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "JUPYTERHUB_CRYPT_KEY" in out and "Traceback" not in out, out[-2000:]
