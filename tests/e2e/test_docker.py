"""DockerSpawner on a real Docker engine: the admin's ``examples/dockerspawner_config.py`` with the real IdP, Hub
and proxy, user containers from an image holding the project's wheel, JupyterLab and pyQuil.

The engine is a private ``dockerd`` (``devstack.docker``), containers use the host's network only and listen on
127.0.0.1; homes are Docker volumes owned by uid 1000 (``jovyan``), not by the Hub's user. The Hub serves https
with a certificate of a throwaway CA, which the containers trust through a read-only mount and ``SSL_CERT_FILE``.
DockerSpawner's default ``remove = False`` resumes a stopped container with the API token it was created with;
``remove = True`` makes a new container each time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
import requests

from devstack.docker import DockerEngine, DockerError, DockerHub, build_user_image, unavailable_reason
from devstack.localhub import login_with_http
from qcs_jupyter.credentials.tokens import jwt_expiry
from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .conftest import spawn, stack
from .kernels import PYQUIL, Kernel
from .test_held_clients import COMMON, RESULT_MARK, SETUP, TTL, accepted_tokens, hold_client
from .test_hub_flow import payload, wait_until
from .test_lifecycle import _refresh, _refused_at_idp

pytestmark = pytest.mark.timeout(1200)  # the first test also builds the user image (about 3 minutes cold)

NB_UID = "1000"
#: A Hub restart must not stop the containers (DockerSpawner then finds them running and keeps them).
RESTART_SAFE = """
c.JupyterHub.cleanup_servers = False
"""


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unusable(reason: str) -> None:
    """Skip on a developer machine without Docker; fail in CI, where a skip would hide untested containers."""
    if _ci():
        pytest.fail(f"{reason}; CI=true, so the Docker tests fail instead of being skipped", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    reason = unavailable_reason()
    if reason:
        _unusable(f"no private Docker engine: {reason}")
    try:
        started = DockerEngine().start()
    except DockerError as e:
        _unusable(f"the private Docker engine did not start: {e}")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def image(engine) -> str:
    began = time.monotonic()
    name = build_user_image(engine)
    print(f"user image {name} ready in {time.monotonic() - began:.1f} s ({engine.storage_driver})")
    return name


@contextlib.contextmanager
def docker_stack(workdir, engine, image, **options) -> Iterator[DockerHub]:
    """A Hub running the Docker example; every container and volume it made is removed at the end."""
    try:
        with stack(workdir, hub_class=DockerHub, engine=engine, image=image, **options) as hub:
            yield hub
    finally:
        engine._remove_leftovers()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, engine, image) -> Iterator[DockerHub]:
    """DockerSpawner's defaults (``remove = False``); 15 s tokens, https Hub, stand-in QCS API."""
    with docker_stack(
        tmp_path_factory.mktemp("docker"),
        engine,
        image,
        rotate=True,
        ttl=TTL,
        hub_https=True,
        qcs_api=True,
        extra_config=RESTART_SAFE,
    ) as hub:
        yield hub


def _server_token(hub: DockerHub, user: str, server: str = "") -> str:
    """The API token the container really holds (DockerSpawner reads it back from there when it resumes)."""
    return hub.container_env(user, server)["JUPYTERHUB_API_TOKEN"]


def _pull(hub: DockerHub, token: str, user: str) -> requests.Response:
    """What the server extension in the container asks the Hub for, with a given token."""
    client = requests.Session()
    client.trust_env = False
    return client.get(
        f"{hub.url}/hub/api/qcs/credentials/{user}",
        headers={"Authorization": f"token {token}"},
        verify=str(hub.idp.ca_path),
        timeout=60,
    )


def _state(hub: DockerHub, user: str, server: str = "") -> dict:
    info = hub.engine.inspect("container", hub.container(user, server))
    assert info is not None, f"no container for {user}/{server}"
    return info


def _stat_in_container(hub: DockerHub, user: str, server: str = "") -> dict[str, str]:
    """``mode uid gid`` of ~/.qcs and its files, as the container sees them."""
    out = hub.engine.docker(
        "exec",
        hub.container(user, server),
        "stat",
        "-c",
        "%n %a %u %g",
        "/home/jovyan/.qcs",
        "/home/jovyan/.qcs/settings.toml",
        "/home/jovyan/.qcs/secrets.toml",
    )
    return {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()}


def _wait_for_named(hub: DockerHub, user: str, server: str, timeout: float = 90) -> None:
    wait_until(
        lambda: (hub.api("GET", f"/users/{user}")["servers"].get(server) or {}).get("ready"),
        timeout,
        f"{user}'s server {server!r}",
    )


def _assert_supplied(hub: DockerHub, session, user: str, *, before: str | None = None) -> str:
    """The running container holds the user's current tokens in ~/.qcs (0700/0600, uid 1000), pulled with the
    token the container really holds, and says so in its status; returns the access token it holds."""
    info = _state(hub, user)
    assert info["State"]["Running"] and info["Config"]["User"] == NB_UID, info["State"]
    assert info["HostConfig"]["NetworkMode"] == "host"
    answer = _pull(hub, _server_token(hub, user), user)
    assert answer.status_code == 200, f"the container's own token got {answer.status_code}: {answer.text[:300]}"
    held = wait_until(
        lambda: (token := payload(hub, user)["access_token"]) == hub.auth_state(user)["access_token"] and token,
        60,
        f"{user}'s container to write the Hub's current access token",
    )
    if before is not None:
        assert held != before and jwt_expiry(held) > jwt_expiry(before), "the start brought no fresh token"
    assert _stat_in_container(hub, user) == {
        "/home/jovyan/.qcs": f"700 {NB_UID} {NB_UID}",
        "/home/jovyan/.qcs/settings.toml": f"600 {NB_UID} {NB_UID}",
        "/home/jovyan/.qcs/secrets.toml": f"600 {NB_UID} {NB_UID}",
    }
    assert session.get(f"{hub.url}/user/{user}/lab", timeout=90).status_code == 200
    status = session.get(f"{hub.url}/user/{user}/qcs-jupyter/status", timeout=60).json()
    assert status["usable"] and status["hub"]["last_sync_error"] is None, status.get("hub")
    return held


def _stop(hub: DockerHub, user: str) -> None:
    hub.api("DELETE", f"/users/{user}/server")
    hub.wait_for_server(user, ready=False, timeout=90)


def _restart_after_min_age(hub: DockerHub, session, user: str) -> None:
    """Start the server again once the Hub will refresh on spawn (past the forced-refresh minimum age)."""
    obtained = hub.auth_state(user)["qcs"]["access_token_obtained_at"]
    time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))
    session.get(f"{hub.url}/hub/spawn/{user}", timeout=120)
    hub.wait_for_server(user, timeout=120)


def test_image_runs_the_project_as_uid_1000(engine, image):
    out = engine.docker(
        "run",
        "--rm",
        "--network",
        "host",
        image,
        "sh",
        "-c",
        "id -u; echo $HOME; python -c 'import qcs_jupyter, pyquil; print(qcs_jupyter.__version__, pyquil.__version__)';"
        " jupyter kernelspec list --json | python -c 'import json,sys; print(sorted(json.load(sys.stdin)[\"kernelspecs\"]))'",
        timeout=120,
    )
    from qcs_jupyter import __version__

    assert out.split("\n")[:4] == [NB_UID, "/home/jovyan", f"{__version__} 4.22.0", "['python3', 'qcs-pyquil']"], out
    began = time.monotonic()
    assert build_user_image(engine, name=image) == image  # built once per content hash, then reused
    assert time.monotonic() - began < 10


def test_resumed_container_gets_fresh_credentials_each_start(hub):
    """remove = False: the second and third start resume the same container with its first API token."""
    session = spawn(hub, "ada")
    first = _state(hub, "ada")
    first_token = _server_token(hub, "ada")
    held = _assert_supplied(hub, session, "ada")
    volume = next(m for m in first["Mounts"] if m["Destination"] == "/home/jovyan")
    assert volume["Type"] == "volume" and volume["Name"] == "jupyterhub-user-ada"
    for start in ("second", "third"):
        _stop(hub, "ada")
        stopped = _state(hub, "ada")  # kept, not removed
        assert not stopped["State"]["Running"] and stopped["Id"] == first["Id"]
        _restart_after_min_age(hub, session, "ada")
        resumed = _state(hub, "ada")
        assert resumed["Id"] == first["Id"], f"the {start} start made a new container"
        assert _server_token(hub, "ada") == first_token  # the scenario of the issue: the old token came back
        held = _assert_supplied(hub, session, "ada", before=held)


def test_named_server_beside_the_default_one(hub):
    session = spawn(hub, "ida")
    hub.api("POST", "/users/ida/servers/lab2")
    _wait_for_named(hub, "ida", "lab2")
    assert _state(hub, "ida", "lab2")["Id"] != _state(hub, "ida")["Id"]
    default_url = hub.api("GET", "/users/ida")["servers"][""]["url"]
    named_url = hub.api("GET", "/users/ida")["servers"]["lab2"]["url"]
    assert named_url == "/user/ida/lab2/" and default_url == "/user/ida/"
    answer = _pull(hub, _server_token(hub, "ida", "lab2"), "ida")
    assert answer.status_code == 200 and answer.json()["token"]["access_token"] == hub.auth_state("ida")["access_token"]
    assert session.get(f"{hub.url}/user/ida/lab2/lab", timeout=90).status_code == 200
    status = session.get(f"{hub.url}/user/ida/lab2/qcs-jupyter/status", timeout=60).json()
    assert status["usable"] and status["hub"]["last_sync_error"] is None, status.get("hub")
    assert status["hub"]["spawn_url"] == "/hub/spawn/ida/lab2?next=%2Fuser%2Fida%2Flab2%2Flab"
    _assert_supplied(hub, session, "ida")  # the default server is unaffected


def test_second_users_container_cannot_reach_the_first_users_credentials(hub):
    spawn(hub, "ann")
    spawn(hub, "bob")
    bob_token = _server_token(hub, "bob")
    refused = _pull(hub, bob_token, "ann")
    assert refused.status_code == 403, refused.text[:300]
    ann = hub.auth_state("ann")
    secrets = [ann["access_token"], ann["refresh_token"], payload(hub, "ann")["refresh_token"]]
    assert all(secrets), "ann's tokens are missing"
    for value in secrets:
        assert value not in refused.text
    own = _pull(hub, bob_token, "bob")
    assert own.status_code == 200 and own.json()["token"]["access_token"] == hub.auth_state("bob")["access_token"]
    # Each container mounts its own user's home only.
    mounts = {m.get("Name") for m in _state(hub, "bob")["Mounts"]}
    assert "jupyterhub-user-bob" in mounts and "jupyterhub-user-ann" not in mounts
    assert ann["access_token"] not in hub.engine.docker("exec", hub.container("bob"), "cat", ".qcs/secrets.toml")


def test_pyquil_client_in_a_container_survives_two_expiries(hub):
    """A pyQuil client held in a kernel of the container refreshes at the Hub's https issuer."""
    session = spawn(hub, "cy")
    issuer = f"{hub.url}/hub/api/qcs/issuer"
    with Kernel(hub, "cy", session, PYQUIL, timeout=120) as kernel:
        run = hold_client(hub, kernel, "cy")
    assert run["loaded"] == {
        "issuer": issuer,
        "client_id": "qcs-public",
        "api_url": hub.qcs_api.url,
        "secrets_read_only": "true",
    }
    failed = [p for p in run["probes"] if p["error"] or not p["names"]]
    assert not failed, f"API calls failed: {failed[:3]}"
    tokens = accepted_tokens(hub, "cy")
    assert len(tokens) >= 3, f"the API saw {len(tokens)} access token(s) of cy, wanted 3"
    calls = [c for c in hub.qcs_api.calls if c.subject == "cy"]
    for fp, exp in tokens[:2]:
        assert any(c.accepted and c.at > exp for c in calls), "no accepted call after an expiry"
        assert any(not c.accepted and c.token_fp == fp for c in calls), "the expired token was never refused"
    assert run["new_process"]["returncode"] == 0 and issuer in run["new_process"]["stdout"], run["new_process"]
    assert hub.log_text().count("POST /hub/api/qcs/issuer/v1/token") >= 2


def test_hub_restart_while_containers_run(hub):
    """The containers outlive a Hub restart, go on pulling, and a client held in a kernel keeps working."""
    session = spawn(hub, "dan")
    container = _state(hub, "dan")["Id"]
    with Kernel(hub, "dan", session, PYQUIL, timeout=120) as kernel:
        kernel.run(f"MARK = {RESULT_MARK!r}\nSETUP = {SETUP[PYQUIL]!r}\n" + SETUP[PYQUIL])
        kernel.call(COMMON)
        assert not kernel.call("report(probe())")["error"]
        hub.stop()
        assert _state(hub, "dan")["State"]["Running"], "the container stopped with the Hub"
        hub.start()
        assert hub.api("GET", "/users/dan")["servers"][""]["ready"]
        assert _state(hub, "dan")["Id"] == container
        seen = len(accepted_tokens(hub, "dan"))
        probes = []
        deadline = time.monotonic() + 4 * TTL + 30
        while time.monotonic() < deadline and len(accepted_tokens(hub, "dan")) < seen + 2:
            probes.append(kernel.call("report(probe())"))
            time.sleep(1.0)
    assert probes and not [p for p in probes if p["error"]], probes[:3]
    assert len(accepted_tokens(hub, "dan")) >= seen + 2, "the held client did not cross two expiries after the restart"
    answer = _pull(hub, _server_token(hub, "dan"), "dan")
    assert answer.status_code == 200, answer.text[:300]
    status = _refresh(hub, session, "dan")
    assert status["hub"]["last_sync_error"] is None and status["usable"]
    assert payload(hub, "dan")["access_token"] == hub.auth_state("dan")["access_token"]


def test_logout_then_log_in_again_without_a_restart(hub):
    session = spawn(hub, "eve")
    session.get(f"{hub.url}/user/eve/lab", timeout=90)
    held = hub.auth_state("eve")["refresh_token"]
    started = hub.api("GET", "/users/eve")["servers"][""]["started"]
    session.get(f"{hub.url}/hub/logout", headers={"Sec-Fetch-Site": "same-origin"}, timeout=60)
    wait_until(lambda: _refused_at_idp(hub, held), 30, "the refresh token revoked at the IdP")
    # The container's next pull says what to do.
    pull = _pull(hub, _server_token(hub, "eve"), "eve")
    assert pull.status_code == 401 and "log in again" in pull.json()["message"].lower(), pull.text[:300]
    session = login_with_http(hub, "eve", next_url="/user/eve/lab")
    session.get(f"{hub.url}/user/eve/lab", timeout=90)
    status = _refresh(hub, session, "eve")
    assert status["hub"]["relogin_required"] is False and status["hub"]["last_sync_error"] is None
    assert status["usable"]
    assert hub.api("GET", "/users/eve")["servers"][""]["started"] == started  # no restart
    assert payload(hub, "eve")["access_token"] == hub.auth_state("eve")["access_token"]


def test_remove_true_makes_a_new_container_with_fresh_credentials(tmp_path, engine, image):
    with docker_stack(tmp_path, engine, image, rotate=True, ttl=600, hub_https=True, remove=True) as hub:
        session = spawn(hub, "fay")
        first = _state(hub, "fay")["Id"]
        held = _assert_supplied(hub, session, "fay")
        for _ in range(2):
            _stop(hub, "fay")
            assert hub.engine.inspect("container", hub.container("fay")) is None, "the container was kept"
            _restart_after_min_age(hub, session, "fay")
            assert _state(hub, "fay")["Id"] != first
            held = _assert_supplied(hub, session, "fay", before=held)


def test_restart_server_to_refresh_from_the_panel_in_chromium(hub):
    """The panel's "Restart server to refresh" stops the container, the Hub resumes it (remove = False, its first
    API token) and the browser lands in JupyterLab again, with fresh tokens in ~/.qcs."""
    from playwright.sync_api import expect, sync_playwright

    from .browser import launch, new_page, sign_in

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = new_page(browser)
            sign_in(page, hub.url, "kim", wait_for="**/user/kim/lab**")
            container, token = _state(hub, "kim")["Id"], _server_token(hub, "kim")
            item = page.locator(".qcs-jupyter-status-item")
            expect(item).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
            before = payload(hub, "kim")["access_token"]
            item.click()
            panel = page.locator("#qcs-jupyter-panel")
            restart = panel.locator("[data-qcs-action=restart]")
            expect(restart).to_be_enabled()
            obtained = hub.auth_state("kim")["qcs"]["access_token_obtained_at"]
            time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))
            restart.click()
            page.locator(".jp-Dialog .jp-mod-warn").click()
            page.wait_for_url("**/hub/spawn**", timeout=90_000)
            page.wait_for_url("**/user/kim/lab**", timeout=120_000)
            expect(page.locator(".qcs-jupyter-status-item")).to_have_attribute("data-qcs-state", "ok", timeout=60_000)
        finally:
            browser.close()
    assert _state(hub, "kim")["Id"] == container and _server_token(hub, "kim") == token  # resumed, old token
    fresh = wait_until(
        lambda: (
            (t := payload(hub, "kim")["access_token"]) != before and t == hub.auth_state("kim")["access_token"] and t
        ),
        60,
        "fresh tokens in kim's ~/.qcs after the restart",
    )
    assert jwt_expiry(fresh) > jwt_expiry(before)
