"""No QCS token or secret reaches what a spawner builds: the real KubeSpawner's Pod manifest and DockerSpawner's
container settings for a logged-in user, after QCSAuthenticator's spawn hooks ran."""

from __future__ import annotations

import json
import time

import pytest

from qcs_jupyter.hub import QCSAuthenticator

from .test_authenticator import FakeIdP, FakeUser, access_token

pytest.importorskip("kubespawner")
pytest.importorskip("dockerspawner")

SERVER_TOKEN = "the-server-api-token"


def logged_in_user() -> FakeUser:
    now = time.time()
    return FakeUser(
        "ada",
        {
            "access_token": access_token(),
            "refresh_token": "the-real-refresh-token",
            "id_token": access_token(),
            "oauth_user": {"preferred_username": "ada", "email": "ada@example.org"},
            "qcs": {
                "access_token_obtained_at": now,
                "access_token_expires_at": now + 3600,
                "refresh_token_obtained_at": now,
                "servers": {},
            },
        },
    )


def secrets_of(user: FakeUser, authenticator: QCSAuthenticator) -> set[str]:
    state = user.state
    session = authenticator.session_token(user.name, state)
    assert session  # the hooks began the session
    return {state["access_token"], state["refresh_token"], state["id_token"], session}


async def prepared(spawner_class, user: FakeUser, **kwargs):
    from jupyterhub.objects import Hub

    authenticator = QCSAuthenticator(
        issuer="https://idp.example/oauth2/default",
        client_id="c",
        oauth_callback_url="https://hub.example.org/hub/oauth_callback",
    )
    authenticator.http_client = FakeIdP(discovery={"issuer": authenticator.issuer})
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    spawner = spawner_class(user=user, hub=hub, api_token=SERVER_TOKEN, **kwargs)
    user.spawners[""] = spawner
    await authenticator.pre_spawn_start(user, spawner)
    await spawner.run_auth_state_hook(await user.get_auth_state())
    assert user.state["qcs"]["session_id"]  # the hooks really ran
    return spawner, authenticator


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: not-used}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@pytest.mark.asyncio
async def test_kubespawner_pod_manifest_holds_no_qcs_secret(tmp_path, monkeypatch):
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    # Building a manifest contacts no cluster, but KubeSpawner loads a client configuration when it is made.
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setattr(
        "kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig")
    )
    user = logged_in_user()
    user.url, user.id, user.escaped_name, user.server = "/user/ada/", 1, "ada", None
    spawner, authenticator = await prepared(KubeSpawner, user, _mock=True)
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    manifest = json.dumps(pod)
    assert SERVER_TOKEN in manifest  # positive control: the environment is in the manifest we search
    for value in secrets_of(user, authenticator):
        assert value not in manifest
    assert "QCS" not in manifest.upper().replace("QCS-JUPYTER", "")
    # What the Pod sees instead: its own API token and the Hub's API URL (where the server pulls); the issuer
    # URL for kernels reaches them only through settings.toml, written after the pull.
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_TOKEN"] == SERVER_TOKEN
    assert env["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"
    assert authenticator.issuer_for_clients() == "https://hub.example.org/hub/api/qcs/issuer"
    assert authenticator.issuer_for_clients() not in manifest


@pytest.mark.asyncio
async def test_dockerspawner_container_settings_hold_no_qcs_secret():
    from dockerspawner import DockerSpawner

    user = logged_in_user()
    user.url, user.id, user.escaped_name, user.server = "/user/ada/", 1, "ada", None
    spawner, authenticator = await prepared(
        DockerSpawner, user, cmd=["jupyterhub-singleuser"]
    )  # no image inspection: no daemon
    built = json.dumps(
        {"env": spawner.get_env(), "cmd": await spawner.get_command(), "binds": spawner.volume_binds}, default=str
    )
    assert SERVER_TOKEN in built  # positive control
    for value in secrets_of(user, authenticator):
        assert value not in built
