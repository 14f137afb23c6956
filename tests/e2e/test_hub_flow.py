"""The whole flow with real parts: IdP login, Hub, spawn, ~/.qcs, live refresh, restart, isolation."""

from __future__ import annotations

import concurrent.futures
import json
import os
import stat
import time

import pytest
import requests
import tomlkit

from qcs_jupyter.credentials import CredentialStore, read_status
from qcs_jupyter.credentials.sdkcheck import check_with_sdk
from qcs_jupyter.credentials.tokens import jwt_expiry
from qcs_jupyter.hub.authenticator import FORCED_REFRESH_MIN_AGE

from .conftest import ACCESS_TOKEN_TTL, spawn, stack


def payload(hub, user: str) -> dict:
    text = (hub.home(user) / ".qcs" / "secrets.toml").read_text()
    return tomlkit.parse(text).unwrap()["credentials"]["default"]["token_payload"]


def user_env(hub, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCS_")}
    return {**env, "HOME": str(hub.home(user)), **hub.idp.ca_env()}


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def agreeing(hub, user: str) -> tuple[dict, dict] | None:
    """The Hub's auth_state and the file's token payload, when they hold the same access token."""
    state, tokens = hub.auth_state(user), payload(hub, user)
    return (state, tokens) if state["access_token"] == tokens["access_token"] else None


def test_spawn_writes_qcs_files_the_official_client_loads(rotating_hub):
    hub = rotating_hub
    spawn(hub, "ada")
    qcs = hub.home("ada") / ".qcs"
    assert stat.S_IMODE(qcs.stat().st_mode) == 0o700
    for name in ("settings.toml", "secrets.toml"):
        assert stat.S_IMODE((qcs / name).stat().st_mode) == 0o600
    settings = tomlkit.parse((qcs / "settings.toml").read_text()).unwrap()
    # QCS clients in kernels refresh through the Hub's issuer, never at the IdP.
    assert settings["auth_servers"]["default"] == {"client_id": "qcs-public", "issuer": f"{hub.url}/hub/api/qcs/issuer"}
    # The server writes what the Hub holds. Both move on every ~12 s (20 s tokens), so read them until one reading
    # of each agrees (a refresh may land between two reads), and a few seconds is plenty for that.
    state, tokens = wait_until(lambda: agreeing(hub, "ada"), 10, "the file's access token to be the Hub's")
    # The file's refresh token is the Hub's session token; the real one stays in the Hub.
    assert tokens["refresh_token"] == hub.session_token("ada") != state["refresh_token"]
    assert tokens["refresh_token"] not in json.dumps(state)  # the Hub keeps no session token, only its session id
    result = check_with_sdk("default", env=user_env(hub, "ada"), get_bearer_token=True)
    assert result["ok"] and result["bearer_token_obtained"], result
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(hub.home("ada")))
        status = read_status(CredentialStore())
    assert status["usable"] and status["refresh_token"]["held_by"] == "jupyterhub"
    assert status["identity"]["email"] == "ada@example.org"


def test_running_server_gets_new_token_before_expiry(rotating_hub):
    hub = rotating_hub
    spawn(hub, "abe")  # a user of its own: no other test's server is involved
    first = payload(hub, "abe")["access_token"]
    first_exp = jwt_expiry(first)
    fresh = wait_until(
        lambda: (p := payload(hub, "abe")["access_token"]) != first and p,
        ACCESS_TOKEN_TTL + 20,
        "a refreshed access token",
    )
    assert jwt_expiry(fresh) > first_exp
    assert time.time() < first_exp.timestamp() + 1, "the new token should arrive before the old one expires"
    assert hub.api("GET", "/users/abe")["servers"][""]["ready"]  # no restart happened


def test_stop_and_start_gives_fresh_tokens(rotating_hub):
    hub = rotating_hub
    spawn(hub, "bea")
    before = payload(hub, "bea")["access_token"]
    hub.api("DELETE", "/users/bea/server")
    hub.wait_for_server("bea", ready=False)
    obtained = hub.auth_state("bea")["qcs"]["access_token_obtained_at"]
    time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))
    hub.api("POST", "/users/bea/server")
    hub.wait_for_server("bea")
    after = payload(hub, "bea")["access_token"]
    assert after != before and jwt_expiry(after) >= jwt_expiry(before)


def test_concurrent_requests_after_expiry_refresh_once(rotating_hub):
    hub = rotating_hub
    session = requests.Session()
    session.trust_env = False
    session.cookies = spawn_less_login(hub, "cy").cookies
    state = hub.auth_state("cy")
    wait_until(
        lambda: time.time() >= state["qcs"]["access_token_expires_at"] - 3, ACCESS_TOKEN_TTL + 5, "token near expiry"
    )
    hub.idp.reset_stats()

    def call(_):
        return session.get(f"{hub.url}/hub/api/user", timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(call, range(50)))
    assert codes == [200] * 50, codes  # nobody was sent to log in again
    # cy's own refreshes: the servers of other tests on this Hub refresh their users' tokens meanwhile.
    stats = hub.idp.account_stats("cy")
    assert stats["token_requests"].get("refresh_token") == 1, stats
    assert stats["refresh_failed"] == 0
    assert hub.auth_state("cy")["access_token"] != state["access_token"]


def spawn_less_login(hub, user):
    from devstack.localhub import login_with_http

    return login_with_http(hub, user)


def test_restart_endpoint_stops_and_spawn_url_brings_it_back(rotating_hub):
    hub = rotating_hub
    session = spawn(hub, "fay")
    lab = session.get(f"{hub.url}/user/fay/lab", timeout=60)
    assert lab.status_code == 200
    xsrf = session.cookies.get("_xsrf", path="/user/fay/")
    status = session.get(f"{hub.url}/user/fay/qcs-jupyter/status", timeout=30).json()
    assert status["hub"]["restart_available"] and status["hub"]["refresh_available"], status["hub"]
    before = payload(hub, "fay")["access_token"]
    denied = session.post(f"{hub.url}/user/fay/qcs-jupyter/restart", timeout=30)
    assert denied.status_code == 403  # XSRF-protected
    response = session.post(f"{hub.url}/user/fay/qcs-jupyter/restart", headers={"X-XSRFToken": xsrf}, timeout=30)
    assert response.status_code == 202
    spawn_url = response.json()["spawn_url"]
    assert spawn_url == "/hub/spawn/fay?next=%2Fuser%2Ffay%2Flab"
    hub.wait_for_server("fay", ready=False)
    obtained = hub.auth_state("fay")["qcs"]["access_token_obtained_at"]
    time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))
    back = session.get(f"{hub.url}{spawn_url}", timeout=90)
    hub.wait_for_server("fay")
    assert back.status_code == 200
    assert payload(hub, "fay")["access_token"] != before


def test_refresh_endpoint_pulls_new_token(rotating_hub):
    hub = rotating_hub
    session = spawn(hub, "gus")
    session.get(f"{hub.url}/user/gus/lab", timeout=60)
    xsrf = session.cookies.get("_xsrf", path="/user/gus/")
    before = payload(hub, "gus")["access_token"]
    obtained = hub.auth_state("gus")["qcs"]["access_token_obtained_at"]
    time.sleep(max(0.0, obtained + FORCED_REFRESH_MIN_AGE + 0.5 - time.time()))
    response = session.post(f"{hub.url}/user/gus/qcs-jupyter/refresh", headers={"X-XSRFToken": xsrf}, timeout=60)
    assert response.status_code == 200
    assert response.json()["hub"]["last_sync_error"] is None
    assert payload(hub, "gus")["access_token"] != before


def test_idp_down_spawn_still_succeeds_and_status_says_why(tmp_path):
    with stack(tmp_path, rotate=True) as hub:
        session = spawn_less_login(hub, "ivy")
        state = hub.auth_state("ivy")
        hub.idp.stop()
        wait_until(
            lambda: time.time() >= state["qcs"]["access_token_expires_at"] - 6,
            ACCESS_TOKEN_TTL,
            "token within the refresh margin",
        )
        session.get(f"{hub.url}/hub/spawn/ivy", timeout=90)
        hub.wait_for_server("ivy")
        session.get(f"{hub.url}/user/ivy/lab", timeout=60)  # completes the OAuth handshake with the server
        response = session.get(f"{hub.url}/user/ivy/qcs-jupyter/status", timeout=60)
        status = response.json()
        assert "hub" in status, (response.status_code, response.url, status)
        assert (
            status["hub"]["last_sync_error"]
            and "identity provider could not be reached" in status["hub"]["last_sync_error"]
        )
        assert (hub.home("ivy") / ".qcs" / "secrets.toml").exists()
        assert "could not refresh the tokens of ivy" in hub.log_text()


def test_confidential_client_refreshes_with_its_secret(tmp_path):
    """A confidential Hub client (client_secret_post): login, spawn and a forced refresh all work."""
    with stack(tmp_path, rotate=True, client_id="hub-confidential", client_secret="s3cret-for-tests") as hub:
        spawn(hub, "joe")
        first = payload(hub, "joe")["access_token"]
        assert payload(hub, "joe")["refresh_token"] != hub.auth_state("joe")["refresh_token"]  # kept in the Hub
        fresh = wait_until(
            lambda: (p := payload(hub, "joe")["access_token"]) != first and p,
            ACCESS_TOKEN_TTL + 20,
            "a refreshed access token",
        )
        assert jwt_expiry(fresh) > jwt_expiry(first)
        assert hub.idp.stats()["refresh_ok"] >= 1 and hub.idp.stats()["refresh_failed"] == 0
        assert "s3cret-for-tests" not in hub.log_text()


def test_named_server_gets_credentials_and_its_own_restart_url(rotating_hub):
    hub = rotating_hub
    session = spawn(hub, "max")
    hub.api("POST", "/users/max/servers/second")
    wait_until(
        lambda: (hub.api("GET", "/users/max")["servers"].get("second") or {}).get("ready"), 60, "the named server"
    )
    session.get(f"{hub.url}/user/max/second/lab", timeout=60)
    status = session.get(f"{hub.url}/user/max/second/qcs-jupyter/status", timeout=30).json()
    assert status["usable"] and status["hub"]["last_sync_error"] is None
    assert status["hub"]["spawn_url"] == "/hub/spawn/max/second?next=%2Fuser%2Fmax%2Fsecond%2Flab"
    assert status["hub"]["restart_available"]
