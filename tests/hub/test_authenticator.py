"""QCSAuthenticator on its own: defaults, discovery, refresh timing and single-flight, the server records."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from urllib.parse import parse_qs

import jwt
import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from devstack.localidp import LocalIdP, ensure_node_modules, free_port
from qcs_jupyter.hub import QCSAuthenticator
from qcs_jupyter.hub.authenticator import DiscoveryError
from qcs_jupyter.qcs import QCS_ISSUER

ISSUER = "https://idp.example/oauth2/default"
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/v1/authorize",
    "token_endpoint": f"{ISSUER}/v1/token",
    "userinfo_endpoint": f"{ISSUER}/v1/userinfo",
    "revocation_endpoint": f"{ISSUER}/v1/revoke",
}


def access_token(ttl: float = 3600) -> str:
    return jwt.encode({"sub": "ada", "exp": int(time.time() + ttl), "aud": "api://qcs"}, "k" * 32, algorithm="HS256")


class FakeIdP:
    """Stands in for tornado's AsyncHTTPClient: answers discovery, token, userinfo and revocation requests."""

    def __init__(self, *, token: str = "ok", rotate: bool = True, delay: float = 0.0, discovery=DISCOVERY):
        self.token, self.rotate, self.delay, self.discovery = token, rotate, delay, discovery
        self.calls: list[tuple[str, dict]] = []
        self.requests: list = []
        self.serial = 0

    def count(self, path: str) -> int:
        return sum(1 for url, _ in self.calls if url.endswith(path))

    async def fetch(self, request, **_):
        form = {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}
        self.calls.append((request.url, form))
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        if request.url.endswith("/.well-known/openid-configuration"):
            return self._answer(request, 200, self.discovery)
        if request.url.endswith("/v1/userinfo"):
            return self._answer(request, 200, {"preferred_username": "ada", "email": "ada@example.org"})
        if request.url.endswith("/v1/revoke"):
            return self._answer(request, 200, {})
        if self.token == "unreachable":
            raise HTTPClientError(599, "Connection refused")
        if self.token == "timeout":
            raise HTTPClientError(599, "Timeout while connecting")
        if self.token == "rejected":
            raise HTTPClientError(400, response=self._answer(request, 400, {"error": "invalid_grant"}))
        self.serial += 1
        body = {"access_token": access_token(), "token_type": "Bearer", "expires_in": 3600}
        if self.rotate:
            body["refresh_token"] = f"refresh-{self.serial}"
        return self._answer(request, 200, body)

    @staticmethod
    def _answer(request, code: int, body: dict) -> HTTPResponse:
        from io import BytesIO

        return HTTPResponse(request, code, buffer=BytesIO(json.dumps(body).encode()))


class FakeUser:
    """A JupyterHub user as the authenticator sees it: a name, spawners and encrypted auth_state.

    With ``blobs``, it also has JupyterHub's ``encrypted_auth_state``: a new blob at every save, read (as JupyterHub
    reads it) before the decryption's hop to another thread."""

    def __init__(self, name: str = "ada", state: dict | None = None, *, blobs: bool = False):
        self.name = name
        self.spawners: dict = {}
        self.state = state
        self.saves = 0
        self.reads = 0
        if blobs:
            self.encrypted_auth_state = json.dumps([0, state]).encode()

    async def get_auth_state(self):
        self.reads += 1
        snapshot = json.loads(json.dumps(self.state)) if self.state is not None else None
        await asyncio.sleep(0)
        return snapshot

    async def save_auth_state(self, state):
        await asyncio.sleep(0)
        self.saves += 1
        self.state = json.loads(json.dumps(state))
        if hasattr(self, "encrypted_auth_state"):
            self.encrypted_auth_state = json.dumps([self.saves, state]).encode()


def stale_state(refresh_token: str = "refresh-0") -> dict:
    now = time.time()
    access = access_token(ttl=30)
    return {
        "access_token": access,
        "refresh_token": refresh_token,
        "id_token": "the-id-token",
        # oauthenticator keeps the IdP's whole answer too: every token value is in it again.
        "token_response": {"access_token": access, "refresh_token": refresh_token, "id_token": "the-id-token"},
        "qcs": {
            "access_token_obtained_at": now - 3570,
            "access_token_expires_at": now + 30,
            "refresh_token_obtained_at": now - 86400,
            "servers": {},
        },
    }


def authenticator(idp: FakeIdP, **kwargs) -> QCSAuthenticator:
    a = QCSAuthenticator(issuer=ISSUER, client_id="c", **kwargs)
    a.http_client = idp
    return a


def test_qcs_defaults():
    a = QCSAuthenticator()
    assert a.issuer == QCS_ISSUER
    assert a.scope == ["openid", "offline_access", "profile", "email"]
    assert a.enable_auth_state and a.enable_pkce and a.refresh_pre_spawn
    assert a.username_claim == "preferred_username" and a.userdata_from_id_token is False
    assert a.refresh_token_max_age_days == 90


def test_issuer_trailing_slash_removed():
    assert QCSAuthenticator(issuer="https://idp.example/oauth2/x/").issuer == "https://idp.example/oauth2/x"


def test_client_id_from_the_environment(monkeypatch):
    monkeypatch.setenv("OAUTH_CLIENT_ID", "from-env")
    assert QCSAuthenticator().client_id == "from-env"


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        pytest.param({"client_id": ""}, "client id", id="client-id"),
        pytest.param({"oauth_callback_url": ""}, "oauth_callback_url", id="callback-url"),
        pytest.param({}, "JUPYTERHUB_CRYPT_KEY", id="crypt-key"),
    ],
)
def test_configuration_problems_name_the_setting(monkeypatch, settings, missing):
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY", raising=False)
    a = QCSAuthenticator(**{"client_id": "c", "oauth_callback_url": "https://h.example/hub/oauth_callback", **settings})
    assert any(missing in p for p in a.configuration_problems())


@pytest.mark.parametrize(
    ("callback", "explicit", "issuer"),
    [
        pytest.param("https://h.example/hub/oauth_callback", "", "https://h.example/hub/api/qcs/issuer", id="derived"),
        pytest.param(
            "https://h.example/jh/hub/oauth_callback", "", "https://h.example/jh/hub/api/qcs/issuer", id="base-url"
        ),
        pytest.param(
            "https://h.example/hub/oauth_callback", "https://int.example/x/", "https://int.example/x", id="set"
        ),
        pytest.param("", "", "", id="unknown"),
    ],
)
def test_issuer_for_clients(callback, explicit, issuer):
    a = QCSAuthenticator(oauth_callback_url=callback, client_issuer_url=explicit)
    assert a.issuer_for_clients() == issuer


@pytest.mark.asyncio
async def test_endpoints_from_discovery_of_a_real_issuer(tmp_path):
    ensure_node_modules()
    with LocalIdP(tmp_path, https=False, clients=[{"client_id": "c", "redirect_uris": ["http://127.0.0.1/cb"]}]) as idp:
        a = QCSAuthenticator(issuer=idp.issuer, allow_insecure_issuer=True)
        doc = await a.discover()
        assert (a.authorize_url, a.token_url, a.userdata_url) == (idp.authorize_url, idp.token_url, idp.userinfo_url)
        assert doc["revocation_endpoint"]


@pytest.mark.asyncio
async def test_discovery_failure_is_an_error_and_is_retried(tmp_path):
    port = free_port()
    a = QCSAuthenticator(
        issuer=f"http://127.0.0.1:{port}/oauth2/default", discovery_timeout=2, allow_insecure_issuer=True
    )
    with pytest.raises(DiscoveryError, match="openid-configuration"):
        await a.discover()
    assert a.token_url == ""  # no guessed endpoints
    a._discovery_retry_at = 0  # the retry delay has passed
    a.http_client = FakeIdP(discovery={key: value.replace(ISSUER, a.issuer) for key, value in DISCOVERY.items()})
    await a.discover()
    assert a.token_url == f"{a.issuer}/v1/token"


@pytest.mark.asyncio
async def test_discovery_naming_another_issuer_is_refused():
    a = authenticator(FakeIdP(discovery={**DISCOVERY, "issuer": "https://evil.example"}))
    with pytest.raises(DiscoveryError, match="names the issuer"):
        await a.discover()
    assert a.token_url == ""


def test_explicit_endpoints_win():
    a = authenticator(FakeIdP(), token_url="https://t.example/token")
    asyncio.run(a.discover())
    assert a.token_url == "https://t.example/token" and a.authorize_url == DISCOVERY["authorization_endpoint"]


@pytest.mark.parametrize(
    ("lifetime", "left", "due"),
    [
        pytest.param(3600, 3600, False, id="fresh"),
        pytest.param(3600, 299, True, id="inside-5-min-margin"),
        pytest.param(3600, -5, True, id="expired"),
        pytest.param(300, 200, False, id="short-token-margin-capped-at-half"),
        pytest.param(300, 140, True, id="short-token-past-half"),
    ],
)
def test_needs_refresh(lifetime, left, due):
    now = time.time()
    state = {
        "access_token": "x",
        "qcs": {"access_token_obtained_at": now + left - lifetime, "access_token_expires_at": now + left},
    }
    assert QCSAuthenticator().needs_refresh(state, now) is due


@pytest.mark.parametrize(
    ("secret", "sent"), [pytest.param("", False, id="public-client"), pytest.param("s", True, id="confidential-client")]
)
def test_refresh_params_send_a_secret_only_when_there_is_one(secret, sent):
    params = QCSAuthenticator(client_id="c", client_secret=secret).build_refresh_token_request_params("r")
    assert params["client_id"] == "c" and params["grant_type"] == "refresh_token"
    assert ("client_secret" in params) is sent


BLOBS = [pytest.param(False, id="state-only"), pytest.param(True, id="encrypted-blob")]


@pytest.mark.parametrize("blobs", BLOBS)
@pytest.mark.parametrize("rotate", [pytest.param(True, id="rotation"), pytest.param(False, id="no-rotation")])
@pytest.mark.asyncio
async def test_concurrent_callers_share_one_refresh(rotate, blobs):
    idp = FakeIdP(rotate=rotate, delay=0.05)
    a, user = authenticator(idp), FakeUser(state=stale_state(), blobs=blobs)
    results = await asyncio.gather(*(a.ensure_fresh(user) for _ in range(20)))
    assert idp.count("/v1/token") == 1
    assert all(r.refreshed and not r.error for r in results)
    assert user.state["refresh_token"] == ("refresh-1" if rotate else "refresh-0")
    assert user.state["qcs"]["last_refresh_outcome"] == "ok"
    # The 90-day horizon counts from the login, not from the rotation.
    assert user.state["qcs"]["refresh_token_obtained_at"] < time.time() - 86000
    assert not (await a.ensure_fresh(user)).refreshed  # fresh now: no further call
    assert idp.count("/v1/token") == 1


@pytest.mark.parametrize("blobs", BLOBS)
@pytest.mark.asyncio
async def test_a_caller_that_read_before_a_rotation_never_sends_the_old_token(blobs):
    # One request's read of auth_state (decrypted in a thread) can end after another request's refresh rotated
    # the tokens. The flight it then starts reads the state again: the rotated-away token is never sent (an IdP
    # would answer invalid_grant, and might end the whole session as a replayed token).
    idp = FakeIdP(rotate=True, delay=0.02)
    a, user = authenticator(idp), FakeUser(state=stale_state(), blobs=blobs)
    read, gate, first_read = user.get_auth_state, asyncio.Event(), [True]

    async def slow_first_read():
        snapshot = await read()
        if first_read.pop() if first_read else False:
            await gate.wait()  # this caller gets its snapshot only after the other caller's refresh
        return snapshot

    user.get_auth_state = slow_first_read
    late = asyncio.ensure_future(a.ensure_fresh(user))
    await asyncio.sleep(0.001)
    assert (await a.ensure_fresh(user)).refreshed and idp.count("/v1/token") == 1
    gate.set()
    result = await late
    assert idp.count("/v1/token") == 1
    assert [form.get("refresh_token") for url, form in idp.calls if url.endswith("/v1/token")] == ["refresh-0"]
    assert not result.relogin and not result.error
    assert user.state["refresh_token"] == "refresh-1" and user.state["qcs"]["last_refresh_outcome"] == "ok"


@pytest.mark.asyncio
async def test_a_refresh_decrypts_once_unless_something_saved_meanwhile():
    # Each decryption is a hop to JupyterHub's crypto thread. A refresh's reads (the caller's, the flight's, the one
    # under the lock before saving) share one decryption while the stored blob is the one it came from.
    idp = FakeIdP(rotate=True, delay=0.02)
    a, user = authenticator(idp), FakeUser(state=stale_state(), blobs=True)
    assert (await a.ensure_fresh(user)).refreshed
    assert user.reads == 1 and user.saves == 1 and user.state["refresh_token"] == "refresh-1"

    # A save during the IdP call (a server's pull noting its time) makes the refresh read afresh, and keep it.
    user.state = stale_state("refresh-1")
    user.encrypted_auth_state = b"reset"
    user.reads = 0
    flight = asyncio.ensure_future(a.ensure_fresh(user))
    for _ in range(1000):  # until the refresh is at the IdP (its answer takes 20 ms)
        if idp.count("/v1/token") == 2:
            break
        await asyncio.sleep(0.001)
    assert idp.count("/v1/token") == 2
    await a.update_auth_state(user, lambda s: s["qcs"].update(noted="by a pull"))
    result = await flight
    assert result.refreshed and user.reads == 3  # the flight's read, the pull's, and the refresh's afresh
    assert user.state["qcs"]["noted"] == "by a pull" and user.state["refresh_token"] == "refresh-2"


@pytest.mark.asyncio
async def test_rejected_refresh_token_is_dropped_and_never_sent_again():
    idp = FakeIdP(token="rejected", delay=0.02)
    a, user = authenticator(idp), FakeUser(state=stale_state())
    results = await asyncio.gather(*(a.ensure_fresh(user) for _ in range(5)))
    assert idp.count("/v1/token") == 1 and all(r.relogin for r in results)
    assert "refresh_token" not in user.state and user.state["access_token"]  # usable until it expires
    assert user.state["qcs"]["last_refresh_outcome"] == "rejected"
    again = await a.ensure_fresh(user, force=True)
    assert again.relogin and "log in again" in again.error and idp.count("/v1/token") == 1
    # A new authenticator (a Hub restart) reads the same auth_state: still no call.
    assert (await authenticator(idp).ensure_fresh(user)).relogin and idp.count("/v1/token") == 1


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [pytest.param("unreachable", "unreachable", id="unreachable"), pytest.param("timeout", "timeout", id="timeout")],
)
@pytest.mark.asyncio
async def test_idp_trouble_is_shared_then_backed_off(failure, outcome):
    idp = FakeIdP(token=failure, delay=0.02)
    a, user = authenticator(idp), FakeUser(state=stale_state())
    token_before = user.state["access_token"]
    results = await asyncio.gather(*(a.ensure_fresh(user) for _ in range(10)))
    assert idp.count("/v1/token") == 1  # waiters got the in-flight failure instead of retrying
    assert all(r.error and "could not be reached" in r.error and not r.relogin for r in results)
    assert all(r.auth_state["access_token"] == token_before for r in results)  # the valid token is kept
    assert user.state["qcs"]["last_refresh_outcome"] == outcome
    for _ in range(5):  # inside the backoff window: no IdP call at all
        assert (await a.ensure_fresh(user)).error
    assert idp.count("/v1/token") == 1
    retry_at, failures, _ = a._backoff["ada"]
    assert failures == 1 and retry_at - time.monotonic() == pytest.approx(a.refresh_backoff_initial, abs=1)
    a._backoff["ada"] = (0.0, failures, "")  # the window has passed
    await a.ensure_fresh(user)
    assert idp.count("/v1/token") == 2 and a._backoff["ada"][1] == 2  # next window doubles
    idp.token = "ok"
    a._backoff["ada"] = (0.0, 2, "")
    assert (await a.ensure_fresh(user)).refreshed and "ada" not in a._backoff


@pytest.mark.asyncio
async def test_revoke_session_drops_tokens_and_revokes_at_the_idp():
    idp = FakeIdP()
    a, user = authenticator(idp), FakeUser(state=stale_state("the-refresh-token"))
    await a.revoke_session(user, "logout")
    for key in ("refresh_token", "access_token", "id_token", "token_response"):
        assert key not in user.state
    assert user.state["qcs"]["logged_out_at"] and user.state["qcs"]["session_id"] is None
    for _ in range(50):
        if idp.count("/v1/revoke"):
            break
        await asyncio.sleep(0.01)
    _url, form = next(c for c in idp.calls if c[0].endswith("/v1/revoke"))
    assert form == {"token": "the-refresh-token", "token_type_hint": "refresh_token", "client_id": "c"}
    result = await a.ensure_fresh(user)
    assert result.relogin and "logged out" in result.error


@pytest.mark.asyncio
async def test_spawns_and_stops_note_servers_and_bound_the_session():
    a = authenticator(FakeIdP())
    user = FakeUser(state=stale_state())
    user.state["qcs"]["access_token_obtained_at"] = time.time()  # no forced refresh at spawn
    default = SimpleNamespace(name="", api_token="server-token", active=True, _log_name="ada/")
    named = SimpleNamespace(name="gpu", api_token="other-token", active=True, _log_name="ada/gpu")
    user.spawners.update({"": default, "gpu": named})
    await a.pre_spawn_start(user, default)
    await a.pre_spawn_start(user, named)
    state = await user.get_auth_state()
    assert "server-token" not in json.dumps(state) and "other-token" not in json.dumps(state)
    assert set(state["qcs"]["servers"]) == {"", "gpu"}
    session_id = state["qcs"]["session_id"]
    token = a.session_token("ada", state)
    assert token and token not in json.dumps(state)  # only the session id is kept, never a token
    assert a.session_tokens.live(a.session_tokens.parse(token), state["qcs"])
    named.active = False
    await a.post_spawn_stop(user, named)  # another server still runs: the session goes on
    state = await user.get_auth_state()
    assert state["qcs"]["session_id"] == session_id and set(state["qcs"]["servers"]) == {""}
    default.active = False
    await a.post_spawn_stop(user, default)  # the last one: the session ends
    state = await user.get_auth_state()
    assert state["qcs"]["servers"] == {} and state["qcs"]["session_id"] is None
    assert not a.session_tokens.live(a.session_tokens.parse(token), state["qcs"])
    assert a.session_token("ada", state) is None


@pytest.mark.asyncio
async def test_a_stop_with_nothing_to_forget_writes_nothing():
    """A Hub starting finds recorded servers that stopped while it was down: their stop hooks, one per server at
    once, save nothing when the auth_state holds no record of that server and no session to end."""
    a = authenticator(FakeIdP())
    user = FakeUser(state=stale_state())
    default = SimpleNamespace(name="", api_token="server-token", active=False, _log_name="ada/")
    named = SimpleNamespace(name="gpu", api_token="other-token", active=True, _log_name="ada/gpu")
    user.spawners.update({"": default, "gpu": named})
    before = json.loads(json.dumps(user.state))
    await a.post_spawn_stop(user, default)  # no record, no session
    assert user.saves == 0 and user.state == before
    user.state["qcs"].update(session_id="s1", session_started_at=time.time())
    await a.post_spawn_stop(user, default)  # a session, but another server still runs: nothing to end
    assert user.saves == 0 and user.state["qcs"]["session_id"] == "s1"
    named.active = False
    await a.post_spawn_stop(user, named)  # the last server: the session ends, although no record was kept
    assert user.saves == 1 and user.state["qcs"]["session_id"] is None
    user.state["qcs"]["session_refresh_token"] = "legacy"  # what 0.2 kept: a stop still drops it
    await a.post_spawn_stop(user, named)
    assert user.saves == 2 and "session_refresh_token" not in user.state["qcs"]


@pytest.mark.asyncio
async def test_refreshes_queued_behind_a_silent_idp_end_within_refresh_timeout():
    """An IdP that takes connections and never answers: tornado's client sends 10 requests at a time and queues
    the rest, whose timeouts would start only when they leave the queue. Every refresh (20 users at once) still
    ends within refresh_timeout of being asked, keeping the tokens it has."""
    import socket

    from tornado.httpclient import AsyncHTTPClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        a = QCSAuthenticator(issuer=ISSUER, client_id="c", refresh_timeout=1.0)
        a._discovery_task.cancel()
        a._discovery = DISCOVERY
        a.token_url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/token"
        a.http_client = AsyncHTTPClient(force_instance=True)  # tornado's default: 10 connections at a time
        users = [FakeUser(name=f"u{i}", state=stale_state()) for i in range(20)]

        async def timed(user):
            started = time.monotonic()
            result = await a.ensure_fresh(user)
            return time.monotonic() - started, result

        results = await asyncio.gather(*(timed(u) for u in users))
    finally:
        listener.close()
    slowest = max(elapsed for elapsed, _ in results)
    assert slowest < 1.6, f"a refresh waited {slowest:.1f} s (refresh_timeout 1 s)"
    assert all(r.error and r.auth_state["access_token"] for _, r in results)
    assert {u.state["qcs"]["last_refresh_outcome"] for u in users} == {"timeout"}


@pytest.mark.asyncio
async def test_a_slow_idp_times_out_after_refresh_timeout():
    """A token endpoint that does not answer in time: the refresh gives up after ``refresh_timeout``, keeps the
    tokens, reports ``timeout`` and backs off (real HTTP on loopback, tornado's own client)."""
    import socket

    from tornado.httpclient import AsyncHTTPClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        a = QCSAuthenticator(issuer=ISSUER, client_id="c", refresh_timeout=0.5)
        # The discovery the authenticator starts on creation would look up the made-up issuer's host with this
        # real client: the document is given instead.
        a._discovery_task.cancel()
        a._discovery = DISCOVERY
        a.token_url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/token"
        a.http_client = AsyncHTTPClient(force_instance=True)
        held = stale_state()
        user = FakeUser(state=json.loads(json.dumps(held)))
        started = time.monotonic()
        result = await a.ensure_fresh(user)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert 0.4 <= elapsed < 5, elapsed
    assert result.error and "could not be reached" in result.error and not result.relogin
    assert user.state["qcs"]["last_refresh_outcome"] == "timeout"
    # The tokens it held are kept, unchanged (the access token is still valid for 30 s) ...
    assert (user.state["access_token"], user.state["refresh_token"]) == (held["access_token"], held["refresh_token"])
    # ... and the next attempt waits for the backoff window.
    retry_at, failures, _ = a._backoff["ada"]
    assert failures == 1 and retry_at > time.monotonic()


@pytest.mark.asyncio
async def test_idp_requests_honour_http_request_kwargs():
    """Discovery, refresh and revocation go through oauthenticator's http_request_kwargs (proxy, CA)."""
    idp = FakeIdP()
    a = authenticator(idp, http_request_kwargs={"ca_certs": "/etc/corp-ca.pem", "proxy_host": "proxy.example"})
    user = FakeUser(state=stale_state())
    await a.ensure_fresh(user)
    await a.revoke_session(user, "logout")
    for _ in range(50):
        if idp.count("/v1/revoke"):
            break
        await asyncio.sleep(0.01)
    kinds = {r.url.rsplit("/", 1)[-1] for r in idp.requests}
    assert {"openid-configuration", "token", "revoke"} <= kinds
    assert all(r.ca_certs == "/etc/corp-ca.pem" and r.proxy_host == "proxy.example" for r in idp.requests)
