"""The deployment examples load and configure what the credential handoff needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

from qcs_jupyter.handoff import CREDENTIALS_SCOPE
from qcs_jupyter.hub import SERVER_TOKEN_SCOPES, QCSAuthenticator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_config(source: str) -> Config:
    c = Config()
    exec(compile(source, "jupyterhub_config.py", "exec"), {"get_config": lambda: c, "c": c})  # noqa: S102
    return c


def assert_ready_for_qcs(c: Config) -> None:
    assert c.JupyterHub.authenticator_class == "qcs"
    assert CREDENTIALS_SCOPE in c.JupyterHub.custom_scopes
    user_role = next(r for r in c.JupyterHub.load_roles if r["name"] == "user")
    assert f"{CREDENTIALS_SCOPE}!user" in user_role["scopes"] and "self" in user_role["scopes"]
    assert set(SERVER_TOKEN_SCOPES) <= set(c.Spawner.server_token_scopes)
    authenticator = QCSAuthenticator(config=c)
    assert authenticator.oauth_callback_url.endswith("/hub/oauth_callback")


@pytest.mark.parametrize("name", ["jupyterhub_config.py", "dockerspawner_config.py"])
def test_python_examples(name):
    assert_ready_for_qcs(run_config((EXAMPLES / name).read_text()))


def test_zero_to_jupyterhub_values():
    values = yaml.safe_load((EXAMPLES / "z2jh-values.yaml").read_text())
    c = Config(values["hub"]["config"])
    for snippet in values["hub"]["extraConfig"].values():
        exec(compile(snippet, "extraConfig", "exec"), {"c": c})  # noqa: S102
    assert_ready_for_qcs(c)
    assert "valueFrom" in values["hub"]["extraEnv"]["JUPYTERHUB_CRYPT_KEY"]  # secrets by reference only


def test_configure_hub_keeps_existing_settings():
    from qcs_jupyter.hub import configure_hub

    c = Config()
    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": ["self", "custom:other"]},
        {"name": "ops", "scopes": ["admin:users"]},
    ]
    c.JupyterHub.custom_scopes = {"custom:other": {"description": "x"}}
    c.Spawner.server_token_scopes = ["users:activity!user", "read:users:name"]
    configure_hub(c)
    configure_hub(c)  # idempotent
    roles = {r["name"]: r["scopes"] for r in c.JupyterHub.load_roles}
    assert roles == {"user": ["self", "custom:other", f"{CREDENTIALS_SCOPE}!user"], "ops": ["admin:users"]}
    assert set(c.JupyterHub.custom_scopes) == {"custom:other", CREDENTIALS_SCOPE}
    assert (
        c.Spawner.server_token_scopes.count("users:activity!user") == 1
        and "read:users:name" in c.Spawner.server_token_scopes
    )


def test_authenticator_warns_when_not_configured(caplog):
    from jupyterhub.app import JupyterHub

    app = JupyterHub()
    authenticator = QCSAuthenticator(parent=app, client_id="")
    problems = authenticator.configuration_problems()
    assert any("client_id" in p for p in problems)
    assert any("configure_hub(c)" in p for p in problems)
    assert any("oauth_callback_url" in p for p in problems)
