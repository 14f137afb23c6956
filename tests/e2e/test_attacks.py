"""Only a user's own running servers obtain that user's QCS tokens: every other caller is refused, and no answer
carries a token value. Real IdP, Hub, proxy and servers; tokens are taken where an attacker would find them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from qcs_jupyter.server.handlers import RESTART_DELAY_SECONDS

from .conftest import spawn, stack
from .kernels import Kernel
from .procs import environ_of, server_pid

ALICE_SERVER_NAMED = "lab2"


def _server_token(hub, user: str, server: str = "") -> str:
    """The API token JupyterHub gave a running server (what its kernels see as JUPYTERHUB_API_TOKEN)."""
    for env in environ_of(hub.proc.pid, b"jupyterhub.singleuser"):
        values = dict(line.split("=", 1) for line in env.split("\0") if "=" in line)
        if values.get("JUPYTERHUB_USER") == user and values.get("JUPYTERHUB_SERVER_NAME", "") == server:
            return values["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no running server {user}/{server}")


def _call(hub, method: str, path: str, *, token: str | None = None, session=None, headers=None):
    client = session or requests.Session()
    client.trust_env = False
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"token {token}"
    return client.request(method, f"{hub.url}/hub/api{path}", headers=all_headers, timeout=60)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    extra = f"""
c.JupyterHub.load_roles[0]["scopes"] += ["shares"]
c.QCSAuthenticator.admin_users = {{"root-admin"}}
c.JupyterHub.load_roles.append({{"name": "ops", "scopes": ["admin:servers", "admin:users"], "services": ["ops"]}})
c.JupyterHub.services.append({{"name": "ops", "api_token": "ops-service-token-{"x" * 16}"}})
"""
    with stack(tmp_path_factory.mktemp("attacks"), rotate=True, ttl=600, extra_config=extra) as hub:
        hub.alice = spawn(hub, "alice")
        hub.bob = spawn(hub, "bob")
        yield hub


@pytest.fixture(autouse=True)
def servers_running(hub):
    """alice's and bob's default servers run at the start of every test (a test that stops one, or the owner's
    restart, leaves it to this fixture to start it again), whatever the order of the tests."""
    for user in ("alice", "bob"):
        if not (hub.api("GET", f"/users/{user}")["servers"].get("") or {}).get("ready"):
            hub.api("POST", f"/users/{user}/server")
            hub.wait_for_server(user)


def _stop_seen(hub, user: str, pid: int, started: str) -> str | None:
    """Why ``user``'s default server (``pid``, started at ``started``) is no longer the same running server, or
    None. A stop shows at once as the Hub's pending "stop" (set when the request arrives), then as no server."""
    server = hub.api("GET", f"/users/{user}")["servers"].get("")
    if server is None:
        return "stopped"
    if server.get("pending"):
        return f"pending {server['pending']}"
    if server.get("started") != started:
        return "started again"
    if not Path(f"/proc/{pid}").exists():
        return "process gone"
    return None


def _secrets(hub, *users: str) -> set[str]:
    out = set()
    for user in users:
        state = hub.auth_state(user) or {}
        out |= {state.get(k) for k in ("access_token", "refresh_token", "id_token") if state.get(k)}
        out.add(hub.session_token(user) if (hub.home(user) / ".qcs" / "secrets.toml").exists() else None)
    return {s for s in out if s}


def _assert_refused(response, hub, what: str) -> None:
    assert response.status_code == 403, f"{what}: {response.status_code} {response.text[:200]}"
    for value in _secrets(hub, "alice", "bob"):
        assert value not in response.text, f"{what}: a token value is in the answer"


def test_own_server_token_is_answered(hub):
    """Positive control: the token JupyterHub issued to alice's server gets alice's credentials."""
    response = _call(hub, "GET", "/qcs/credentials/alice", token=_server_token(hub, "alice"))
    assert response.status_code == 200, response.text
    assert response.json()["token"]["access_token"] == hub.auth_state("alice")["access_token"]
    assert "refresh_token" not in hub.auth_state("alice")["qcs"]  # the record holds hashes, not tokens
    assert response.json()["token"]["refresh_token"] != hub.auth_state("alice")["refresh_token"]


def test_browser_session_with_the_hubs_xsrf_token_is_refused(hub):
    session = hub.alice
    page = session.get(f"{hub.url}/hub/home", timeout=60)
    xsrf = session.cookies.get("_xsrf", path="/hub/") or re.search(r'_xsrf["\']?\s*[:=]\s*["\']([^"\']+)', page.text)
    xsrf = xsrf if isinstance(xsrf, str) else xsrf.group(1)
    assert xsrf, "the Hub gave the session no XSRF token"
    # The same session and XSRF token can do what a browser session may (control).
    assert _call(hub, "GET", "/user", session=session, headers={"X-XSRFToken": xsrf}).status_code == 200
    for method in ("GET", "POST"):
        response = _call(hub, method, "/qcs/credentials/alice", session=session, headers={"X-XSRFToken": xsrf})
        _assert_refused(response, hub, f"browser session {method}")
    _assert_refused(
        _call(hub, "POST", "/qcs/stop/alice", session=session, headers={"X-XSRFToken": xsrf}), hub, "browser stop"
    )


def test_personal_admin_and_service_tokens_are_refused(hub):
    personal = hub.api("POST", "/users/alice/tokens", {"note": "personal, default scopes"})["token"]
    assert _call(hub, "GET", "/users/alice", token=personal).status_code == 200  # control: a working token
    assert hub.api("GET", "/users/root-admin")["admin"] is True
    admin = hub.api("POST", "/users/root-admin/tokens", {"note": "admin"})["token"]
    ops = "ops-service-token-" + "x" * 16
    assert _call(hub, "GET", "/users/alice", token=ops).status_code == 200  # control: admin:users works
    for what, token in (
        ("personal token", personal),
        ("admin user", admin),
        ("service with admin:servers", ops),
        ("test service", hub.admin_token),
    ):
        for method in ("GET", "POST"):
            _assert_refused(_call(hub, method, "/qcs/credentials/alice", token=token), hub, f"{what} {method}")
        _assert_refused(_call(hub, "POST", "/qcs/stop/alice", token=token), hub, f"{what} stop")
    assert hub.api("GET", "/users/alice")["servers"][""]["ready"]


def test_other_users_server_token_and_name_variants_are_refused(hub):
    bob = _server_token(hub, "bob")
    assert _call(hub, "GET", "/qcs/credentials/bob", token=bob).status_code == 200  # control
    unknown = _call(hub, "GET", "/qcs/credentials/nobody-here", token=bob)
    _assert_refused(unknown, hub, "a user that does not exist")
    for name in ("alice", "ALICE", "%61lice", "alice%2F", "alice%00", "..%2Falice"):
        response = _call(hub, "GET", f"/qcs/credentials/{name}", token=bob)
        if response.status_code == 404:  # the router did not match at all: nothing answered
            assert "access_token" not in response.text
            continue
        _assert_refused(response, hub, f"bob's server token for {name!r}")
        assert response.json().get("message") == unknown.json().get("message")  # same answer as for nobody
    _assert_refused(_call(hub, "POST", "/qcs/stop/alice", token=bob), hub, "bob stopping alice")
    assert hub.api("GET", "/users/alice")["servers"][""]["ready"]


def test_shared_server_user_gets_no_identity_and_no_actions(hub):
    hub.api("POST", "/shares/alice/", {"user": "bob"})
    bob = hub.bob
    lab = bob.get(f"{hub.url}/user/alice/lab", timeout=60)
    if "/oauth2/authorize" in lab.url:  # the Hub asks bob to confirm access to alice's server
        fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', lab.text)
        lab = bob.post(lab.url, data=fields, timeout=60)
    assert lab.status_code == 200 and lab.url.startswith(f"{hub.url}/user/alice/"), (lab.status_code, lab.url)
    status = bob.get(f"{hub.url}/user/alice/qcs-jupyter/status", timeout=30).json()
    assert status["hub"]["owner"] is False and not status["hub"]["restart_available"]
    assert "alice" not in str(status.get("identity")) and status["hub"]["spawn_url"] is None
    assert "alice@example.org" not in str(status)
    xsrf = bob.cookies.get("_xsrf", path="/user/alice/")
    pid = server_pid(hub.proc.pid, "alice")
    started = hub.api("GET", "/users/alice")["servers"][""]["started"]
    assert pid and _stop_seen(hub, "alice", pid, started) is None
    for action in ("refresh", "restart"):
        response = bob.post(f"{hub.url}/user/alice/qcs-jupyter/{action}", headers={"X-XSRFToken": xsrf}, timeout=30)
        assert response.status_code == 403, (action, response.status_code)
    # A restart asks the Hub to stop the server RESTART_DELAY_SECONDS after answering. Once the server has answered
    # a later request past that delay, such a stop would have been sent; it shows at the Hub as soon as it
    # arrives. Watch well beyond that: the same server, same process, nothing pending.
    time.sleep(RESTART_DELAY_SECONDS)
    assert bob.get(f"{hub.url}/user/alice/qcs-jupyter/status", timeout=30).status_code == 200
    watch_until = time.monotonic() + 5
    while time.monotonic() < watch_until:
        assert _stop_seen(hub, "alice", pid, started) is None, _stop_seen(hub, "alice", pid, started)
        time.sleep(0.25)
    hub.alice.get(f"{hub.url}/user/alice/lab", timeout=60)
    own = hub.alice.get(f"{hub.url}/user/alice/qcs-jupyter/status", timeout=30).json()
    assert own["hub"]["owner"] is True and own["identity"]["email"] == "alice@example.org"
    # Control: the same watch sees the owner's own restart (the next test gets a running server again).
    owner_xsrf = hub.alice.cookies.get("_xsrf", path="/user/alice/")
    restart = hub.alice.post(
        f"{hub.url}/user/alice/qcs-jupyter/restart", headers={"X-XSRFToken": owner_xsrf}, timeout=30
    )
    assert restart.status_code == 202, restart.text
    deadline = time.monotonic() + 60
    while _stop_seen(hub, "alice", pid, started) is None:
        assert time.monotonic() < deadline, (
            "the owner's restart never stopped the server: the watch above proves nothing"
        )
        time.sleep(0.25)
    hub.wait_for_server("alice", ready=False)


def test_stopped_servers_token_and_session_token_die(hub):
    hub.api("POST", f"/users/alice/servers/{ALICE_SERVER_NAMED}")
    deadline = time.monotonic() + 60
    while not (hub.api("GET", "/users/alice")["servers"].get(ALICE_SERVER_NAMED) or {}).get("ready"):
        assert time.monotonic() < deadline, "the named server did not start"
        time.sleep(0.25)
    named = _server_token(hub, "alice", ALICE_SERVER_NAMED)
    assert _call(hub, "GET", "/qcs/credentials/alice", token=named).status_code == 200  # named servers pull too
    session = hub.session_token("alice")
    form = {"grant_type": "refresh_token", "client_id": "x", "refresh_token": session}
    issuer = f"{hub.url}/hub/api/qcs/issuer"
    assert requests.post(f"{issuer}/v1/token", data=form, timeout=30).json()["access_token"]
    hub.api("DELETE", f"/users/alice/servers/{ALICE_SERVER_NAMED}")
    hub.api("DELETE", "/users/alice/server")
    hub.wait_for_server("alice", ready=False)
    deadline = time.monotonic() + 30
    while hub.api("GET", "/users/alice")["servers"]:
        assert time.monotonic() < deadline
        time.sleep(0.25)
    _assert_refused(_call(hub, "GET", "/qcs/credentials/alice", token=named), hub, "a stopped server's token")
    refused = requests.post(f"{issuer}/v1/token", data=form, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    for garbage in ("", "qcsj1.YWxpY2U.guess", "qcsj1.bm9ib2R5.x", "not-a-token", session[:-1] + "x"):
        answer = requests.post(f"{issuer}/v1/token", data={**form, "refresh_token": garbage}, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_code_in_another_users_kernel_cannot_pull(hub):
    """What bob's notebook can do with the token its kernel inherits: its own credentials, never alice's."""
    code = """
import json, os, urllib.error, urllib.request
def pull(name):
    request = urllib.request.Request(
        os.environ["JUPYTERHUB_API_URL"] + "/qcs/credentials/" + name,
        headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
print("@@result " + json.dumps({name: pull(name) for name in ("bob", "alice", "ALICE", "%61lice")}))
"""
    with Kernel(hub, "bob", hub.bob, "python3") as kernel:
        answers = kernel.call(code)
    assert answers["bob"][0] == 200  # control: the kernel's token is the server's, and it works for bob
    for name in ("alice", "ALICE", "%61lice"):
        status, body = answers[name]
        assert status == 403, (name, status)
        for value in _secrets(hub, "alice"):
            assert value not in body
