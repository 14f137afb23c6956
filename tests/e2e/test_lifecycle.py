"""Session lifecycle with real parts: logout revokes at the IdP and "Log in again" brings the running server new
tokens without a restart; a Hub restart keeps servers supplied, users logged in and refreshes single-flight."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import requests

from devstack.localhub import login_with_http

from .conftest import spawn, stack
from .procs import environ_of


def _refused_at_idp(hub, refresh_token: str) -> bool:
    answer = requests.post(
        hub.idp.token_url,
        data={"grant_type": "refresh_token", "client_id": hub.client_id, "refresh_token": refresh_token},
        verify=str(hub.idp.ca_path) if hub.idp.ca_path else True,
        timeout=30,
    )
    return answer.status_code == 400 and answer.json().get("error") == "invalid_grant"


def _status(hub, session, user: str) -> dict:
    return session.get(f"{hub.url}/user/{user}/qcs-jupyter/status", timeout=30).json()


def _refresh(hub, session, user: str) -> dict:
    xsrf = session.cookies.get("_xsrf", path=f"/user/{user}/")
    response = session.post(f"{hub.url}/user/{user}/qcs-jupyter/refresh", headers={"X-XSRFToken": xsrf}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_logout_revokes_and_logging_in_again_needs_no_restart(tmp_path):
    with stack(tmp_path, rotate=True, ttl=600) as hub:
        session = spawn(hub, "ada")
        session.get(f"{hub.url}/user/ada/lab", timeout=60)
        before = hub.auth_state("ada")
        held = before["refresh_token"]
        session_token = hub.session_token("ada")
        ended = {before["access_token"], held, before["id_token"], session_token}
        server_started = hub.api("GET", "/users/ada")["servers"][""]["started"]
        # As the Hub's logout button sends it: a logout from another site would keep the QCS session.
        session.get(f"{hub.url}/hub/logout", headers={"Sec-Fetch-Site": "same-origin"}, timeout=60)
        state = hub.auth_state("ada")  # the admin REST API, with admin:auth_state
        assert state["qcs"]["logged_out_at"] and state["qcs"]["session_id"] is None
        stored = json.dumps(state)
        for value in ended:  # nothing of the ended session is left, token_response included
            assert value not in stored
        assert not {"access_token", "refresh_token", "id_token", "token_response"} & set(state)
        issuer = f"{hub.url}/hub/api/qcs/issuer/v1/token"
        dead = requests.post(issuer, data={"grant_type": "refresh_token", "refresh_token": session_token}, timeout=30)
        assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
        deadline = time.monotonic() + 20
        while not _refused_at_idp(hub, held):  # revoked in the background, right after the logout
            assert time.monotonic() < deadline, "the refresh token was not revoked at the IdP"
            time.sleep(0.5)
        # The running server learns it on its next pull, and says what to do.
        server = requests.Session()
        server.trust_env = False
        token = next(
            line.split("=", 1)[1]
            for env in environ_of(hub.proc.pid, b"jupyterhub.singleuser")
            for line in env.split("\0")
            if line.startswith("JUPYTERHUB_API_TOKEN=")
        )
        pull = server.get(
            f"{hub.url}/hub/api/qcs/credentials/ada", headers={"Authorization": f"token {token}"}, timeout=30
        )
        assert pull.status_code == 401 and "log in again" in pull.json()["message"].lower()
        # "Log in again": the Hub's login and back; the same server pulls the new tokens.
        session = login_with_http(hub, "ada", next_url="/user/ada/lab")
        session.get(f"{hub.url}/user/ada/lab", timeout=60)
        status = _refresh(hub, session, "ada")
        assert status["hub"]["relogin_required"] is False and status["hub"]["last_sync_error"] is None
        assert status["usable"]
        assert hub.api("GET", "/users/ada")["servers"][""]["started"] == server_started  # no restart
        fresh = hub.auth_state("ada")
        assert fresh["refresh_token"] != held and "" in fresh["qcs"]["servers"]


def test_hub_restart_keeps_servers_supplied_and_users_logged_in(tmp_path):
    extra = """
c.JupyterHub.cleanup_servers = False
c.JupyterHub.cleanup_proxy = False
c.ConfigurableHTTPProxy.auth_token = "proxy-token-for-this-test-only"
"""
    with stack(tmp_path, rotate=True, ttl=30, extra_config=extra) as hub:
        session = spawn(hub, "bea")
        session.get(f"{hub.url}/user/bea/lab", timeout=60)
        before = hub.auth_state("bea")
        kept = hub.leftover_pids()  # bea's server and the proxy, which the Hub leaves running when it stops
        assert len(kept) == 2, kept
        hub.stop(leave_running=True)
        assert all(_alive(pid) for pid in kept)
        time.sleep(1.0)
        hub.start()
        assert hub.api("GET", "/users/bea")["servers"][""]["ready"]  # the server survived the restart
        assert session.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 200  # still logged in
        # Wait until the token needs a refresh, then many requests at once: one IdP call. The token read now, not
        # the one before the restart: on a busy machine the restart can outlast the refresh margin, and the
        # request just above (JupyterHub checks the login) has then refreshed already.
        current = hub.auth_state("bea")
        assert current["qcs"]["session_id"] == before["qcs"]["session_id"]  # the QCS session outlived the restart
        deadline = current["qcs"]["access_token_expires_at"] - 8
        time.sleep(max(0.0, deadline - time.time()))
        hub.idp.reset_stats()
        xsrf = session.cookies.get("_xsrf", path="/user/bea/")

        def pull(_):
            return session.post(
                f"{hub.url}/user/bea/qcs-jupyter/refresh", headers={"X-XSRFToken": xsrf}, timeout=60
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(pull, range(10)))
        assert codes == [200] * 10
        stats = hub.idp.stats()
        assert stats["token_requests"].get("refresh_token") == 1 and stats["refresh_failed"] == 0, stats
        after = hub.auth_state("bea")
        assert after["access_token"] != current["access_token"]
        secrets_file = (hub.home("bea") / ".qcs" / "secrets.toml").read_text()
        assert after["access_token"] in secrets_file  # the running server wrote what the restarted Hub refreshed
    # The stack's exit stops what the Hub left running: bea's server and the proxy outlive neither Hub nor test.
    assert not [pid for pid in kept if _alive(pid)], kept


def _alive(pid: int) -> bool:
    """Running (not ended, not a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_invalid_grant_while_running_asks_to_log_in_again_once(tmp_path):
    with stack(tmp_path, rotate=True, ttl=600) as hub:
        session = spawn(hub, "cy")
        session.get(f"{hub.url}/user/cy/lab", timeout=60)
        held = hub.auth_state("cy")["refresh_token"]
        revoked = requests.post(  # the grant ends at the IdP (an admin there, or the 90 days)
            f"{hub.idp.issuer}/v1/revoke",
            data={"token": held, "token_type_hint": "refresh_token", "client_id": hub.client_id},
            verify=str(hub.idp.ca_path) if hub.idp.ca_path else True,
            timeout=30,
        )
        assert revoked.status_code == 200 and _refused_at_idp(hub, held)
        time.sleep(5.5)  # past the forced-refresh minimum age
        hub.idp.reset_stats()
        status = _refresh(hub, session, "cy")  # "Refresh now": the Hub tries, the IdP says invalid_grant
        assert status["hub"]["relogin_required"] is True and status["hub"]["login_url"].startswith("/hub/")
        assert "log in again" in (status["hub"]["last_sync_error"] or "").lower()
        assert status["usable"]  # the access token still works until it expires
        assert hub.idp.stats()["token_requests"].get("refresh_token") == 1
        for _ in range(3):  # the refused token is never sent again
            _refresh(hub, session, "cy")
        assert hub.idp.stats()["token_requests"].get("refresh_token") == 1
        assert "refresh_token" not in hub.auth_state("cy")


def test_after_a_revoke_the_user_is_sent_to_log_in_and_an_admin_can_still_start_their_server(tmp_path):
    """Once refresh_user says "log in again" (an admin revoked the session), JupyterHub sends that user's browser to
    log in, and an admin's browser request acting on them (starting their server) goes ahead, as JupyterHub means
    them to. Neither fails inside the Hub: JupyterHub 6.1 reads a flag of the request that it sets only when the
    request came with a token, so a browser's (cookie) request raised there and was logged as a crash."""
    with stack(tmp_path, rotate=False, ttl=600, extra_config='c.Authenticator.admin_users = {"opal"}\n') as hub:
        mia = login_with_http(hub, "mia")
        opal = login_with_http(hub, "opal")
        hub.api("POST", "/qcs/users/mia/revoke", {"reason": "test"})
        time.sleep(1.5)  # past auth_refresh_age (1 s): the next request of each asks refresh_user
        home = mia.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 302 and "/hub/login" in home.headers["Location"], (home.status_code, home.headers)
        xsrf = next(c.value for c in opal.cookies if c.name == "_xsrf")
        started = opal.post(f"{hub.url}/hub/api/users/mia/server", headers={"X-XSRFToken": xsrf}, timeout=90)
        assert started.status_code in (201, 202), (started.status_code, started.text)
        hub.wait_for_server("mia")
        log = hub.log_text()
        assert "Failed to get current user" not in log
        assert "User mia has stale auth info. Login is required to refresh." in log
        assert "Request is made by opal, cannot refresh on cross-user requests." in log
