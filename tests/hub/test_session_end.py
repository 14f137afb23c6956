"""What ends a QCS session stays ended: a refresh in flight cannot undo a logout, a revoke or a new login; the
Hub's requests to the IdP never follow redirects and stay on the issuer's https origin; a deleted user's refresh
token is revoked; a new login's auth_state is merged under the user's lock. A real token endpoint on loopback
(tornado) where timing matters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import pytest
import pytest_asyncio
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from qcs_jupyter.hub import QCSAuthenticator
from qcs_jupyter.hub.authenticator import DiscoveryError, _keep_server_records

from .test_authenticator import DISCOVERY, FakeIdP, FakeUser, access_token, authenticator, stale_state


class SlowIdP:
    """An IdP on 127.0.0.1 whose token endpoint holds each answer open until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.token_calls: list[dict[str, str]] = []
        self.revoked: list[str] = []
        self.elsewhere = 0
        self.redirect = False
        self.port = 0

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2/default"

    def app(self) -> web.Application:
        idp = self

        class Handler(web.RequestHandler):
            def check_xsrf_cookie(self) -> None:
                return None

            def form(self) -> dict[str, str]:
                return {k: v[0] for k, v in parse_qs(self.request.body.decode()).items()}

        class Discovery(Handler):
            def get(self) -> None:
                self.write(
                    {
                        "issuer": idp.issuer,
                        "authorization_endpoint": f"{idp.issuer}/v1/authorize",
                        "token_endpoint": f"{idp.issuer}/v1/token",
                        "userinfo_endpoint": f"{idp.issuer}/v1/userinfo",
                        "revocation_endpoint": f"{idp.issuer}/v1/revoke",
                    }
                )

        class Token(Handler):
            async def post(self) -> None:
                idp.token_calls.append(self.form())
                if idp.redirect:
                    self.redirect(f"http://127.0.0.1:{idp.port}/elsewhere", status=307)
                    return
                await asyncio.wait_for(idp.release.wait(), 20)
                n = len(idp.token_calls)
                self.write({"access_token": access_token(), "token_type": "Bearer", "refresh_token": f"rotated-{n}"})

        class UserInfo(Handler):
            def get(self) -> None:
                self.write({"preferred_username": "ada"})

        class Revoke(Handler):
            def post(self) -> None:
                idp.revoked.append(self.form()["token"])

        class Elsewhere(Handler):
            def post(self) -> None:
                idp.elsewhere += 1

        return web.Application(
            [
                (r"/oauth2/default/\.well-known/openid-configuration", Discovery),
                (r"/oauth2/default/v1/token", Token),
                (r"/oauth2/default/v1/userinfo", UserInfo),
                (r"/oauth2/default/v1/revoke", Revoke),
                (r"/elsewhere", Elsewhere),
            ]
        )


@pytest_asyncio.fixture
async def slow_idp() -> AsyncIterator[SlowIdP]:
    idp = SlowIdP()
    sockets = bind_sockets(0, "127.0.0.1")
    idp.port = sockets[0].getsockname()[1]
    server = HTTPServer(idp.app())
    server.add_sockets(sockets)
    try:
        yield idp
    finally:
        idp.release.set()
        server.stop()
        await server.close_all_connections()


async def until(condition, what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def real(idp: SlowIdP) -> QCSAuthenticator:
    return QCSAuthenticator(issuer=idp.issuer, client_id="c", allow_insecure_issuer=True, refresh_timeout=20)


TOKEN_KEYS = ("access_token", "refresh_token", "id_token", "token_response")


@pytest.mark.asyncio
async def test_a_refresh_answered_after_logout_is_discarded_and_its_token_revoked(slow_idp):
    a, user = real(slow_idp), FakeUser(state=stale_state("refresh-0"))
    in_flight = asyncio.ensure_future(a.ensure_fresh(user, force=True))
    await until(lambda: slow_idp.token_calls, "the refresh to reach the IdP")
    await a.revoke_session(user, "logout")
    slow_idp.release.set()
    result = await in_flight
    assert not result.refreshed and result.relogin
    for key in TOKEN_KEYS:
        assert key not in user.state, f"{key} came back after the logout"
    assert user.state["qcs"]["logged_out_at"] and user.state["qcs"]["session_id"] is None
    await until(lambda: {"refresh-0", "rotated-1"} <= set(slow_idp.revoked), "both refresh tokens to be revoked")
    assert await a.refresh_user(user) is False
    assert len(slow_idp.token_calls) == 1  # nobody refreshed again with a token of the ended session


@pytest.mark.asyncio
async def test_a_refresh_answered_after_a_new_login_keeps_the_new_logins_tokens(slow_idp):
    a, user = real(slow_idp), FakeUser(state=stale_state("refresh-0"))
    in_flight = asyncio.ensure_future(a.ensure_fresh(user, force=True))
    await until(lambda: slow_idp.token_calls, "the refresh to reach the IdP")
    new_login = stale_state("new-login-refresh")
    new_login["access_token"] = "new-login-access"
    user.state = json.loads(json.dumps(new_login))  # what JupyterHub saves at the new login
    slow_idp.release.set()
    await in_flight
    assert user.state["refresh_token"] == "new-login-refresh"
    assert user.state["access_token"] == "new-login-access"
    await until(lambda: "rotated-1" in slow_idp.revoked, "the old grant's rotated token to be revoked")
    assert "new-login-refresh" not in slow_idp.revoked


@pytest.mark.asyncio
async def test_an_admin_revoke_during_a_refresh_stays_revoked(slow_idp):
    a, user = real(slow_idp), FakeUser(state=stale_state("refresh-0"))
    user.state["qcs"]["session_id"] = "S" * 22
    in_flight = asyncio.ensure_future(a.refresh_user(user))
    await until(lambda: slow_idp.token_calls, "the refresh to reach the IdP")
    await a.revoke_session(user, "revoked by an admin")
    slow_idp.release.set()
    assert await in_flight is False
    assert not any(key in user.state for key in TOKEN_KEYS) and user.state["qcs"]["session_id"] is None


@pytest.mark.asyncio
async def test_redirects_from_the_idp_are_never_followed(slow_idp):
    a, user = real(slow_idp), FakeUser(state=stale_state("refresh-0"))
    slow_idp.redirect = True
    result = await a.ensure_fresh(user, force=True)
    assert result.error and "HTTP 307" in result.error and not result.refreshed
    assert slow_idp.elsewhere == 0  # the refresh token was not re-sent to the redirect's target
    assert user.state["refresh_token"] == "refresh-0"


@pytest.mark.asyncio
async def test_an_http_issuer_needs_allow_insecure_issuer(slow_idp):
    a = QCSAuthenticator(issuer=slow_idp.issuer, client_id="c")
    assert any("allow_insecure_issuer" in p for p in a.configuration_problems())
    with pytest.raises(DiscoveryError, match="not https"):
        await a.discover()
    assert a.token_url == ""
    assert not real(slow_idp).configuration_problems() or all(
        "allow_insecure_issuer" not in p for p in real(slow_idp).configuration_problems()
    )
    assert (await real(slow_idp).discover())["token_endpoint"].startswith(slow_idp.issuer)


@pytest.mark.parametrize(
    ("endpoint", "value"),
    [
        pytest.param("token_endpoint", "https://elsewhere.example/token", id="token-other-host"),
        pytest.param("token_endpoint", "http://idp.example/oauth2/default/v1/token", id="token-http"),
        pytest.param("authorization_endpoint", "https://idp.example:8443/authorize", id="authorize-other-port"),
        pytest.param("userinfo_endpoint", "https://evil.example/userinfo", id="userinfo-other-host"),
    ],
)
@pytest.mark.asyncio
async def test_discovered_endpoints_must_be_https_on_the_issuers_origin(endpoint, value):
    a = authenticator(FakeIdP(discovery={**DISCOVERY, endpoint: value}))
    with pytest.raises(DiscoveryError, match=endpoint):
        await a.discover()
    assert a.token_url == ""
    trait = {"token_endpoint": "token_url", "authorization_endpoint": "authorize_url"}.get(endpoint, "userdata_url")
    listed = authenticator(FakeIdP(discovery={**DISCOVERY, endpoint: value}), **{trait: value})
    await listed.discover()  # an endpoint the admin lists is used as listed
    assert getattr(listed, trait) == value


@pytest.mark.asyncio
async def test_a_revocation_endpoint_elsewhere_is_not_sent_the_refresh_token():
    idp = FakeIdP(discovery={**DISCOVERY, "revocation_endpoint": "https://evil.example/v1/revoke"})
    a, user = authenticator(idp), FakeUser(state=stale_state("the-refresh-token"))
    assert await a._revoke("the-refresh-token", "ada") is False
    assert idp.count("/v1/revoke") == 0
    listed = authenticator(idp, revocation_url="https://evil.example/v1/revoke")
    assert await listed._revoke("the-refresh-token", user.name) is True
    assert idp.count("/v1/revoke") == 1


@pytest.mark.asyncio
async def test_deleting_a_user_revokes_their_refresh_token():
    idp = FakeIdP()
    a, user = authenticator(idp), FakeUser(state=stale_state("the-refresh-token"))
    await a.delete_user(user)
    for _ in range(100):
        if idp.count("/v1/revoke"):
            break
        await asyncio.sleep(0.01)
    revoked = [form["token"] for url, form in idp.calls if url.endswith("/v1/revoke")]
    assert revoked == ["the-refresh-token"]


@pytest.mark.asyncio
async def test_a_new_logins_merge_waits_for_the_lock_and_holds_it_until_saved():
    a = authenticator(FakeIdP())
    user = FakeUser(state=stale_state())
    a.hub_user = {"ada": user}.get  # JupyterHub's users, as the Hub app holds them
    spawn_may_finish = asyncio.Event()

    async def slow_spawn_note(state):  # a spawn noting its server, still holding the lock
        await spawn_may_finish.wait()
        state["qcs"]["servers"] = {"": {"started_at": 1.0, "last_pull_at": None}}
        state["qcs"]["session_id"] = "S" * 22

    spawn = asyncio.ensure_future(a.update_auth_state(user, slow_spawn_note))
    await asyncio.sleep(0.05)
    login = {"name": "ada", "auth_state": stale_state("new-login-refresh")}
    stale_existing = await user.get_auth_state()  # what JupyterHub read before calling the hook
    merge = asyncio.ensure_future(_keep_server_records(a, login, stale_existing))
    await asyncio.sleep(0.05)
    assert not merge.done()  # it waits for the spawn
    spawn_may_finish.set()
    await spawn
    merged = await merge
    assert merged["qcs"]["servers"] == {"": {"started_at": 1.0, "last_pull_at": None}}  # the spawn's note is kept
    assert merged["qcs"]["session_id"] == "S" * 22 and merged["refresh_token"] == "new-login-refresh"

    async def pull_note(state):
        state["qcs"]["servers"][""]["last_pull_at"] = 2.0

    pull = asyncio.ensure_future(a.update_auth_state(user, pull_note))
    await asyncio.sleep(0.1)
    assert not pull.done()  # the lock is held until JupyterHub has saved the merged state
    await user.save_auth_state(merged)  # JupyterHub saves what the hook returned
    await asyncio.wait_for(pull, 5)
    assert user.state["refresh_token"] == "new-login-refresh"
    assert user.state["qcs"]["servers"][""]["last_pull_at"] == 2.0  # nothing lost either way


@pytest.mark.asyncio
async def test_a_new_login_after_logout_does_not_revive_the_ended_session():
    a = authenticator(FakeIdP())
    user = FakeUser(state=stale_state())
    user.state["qcs"]["session_id"] = None
    login = {"name": "ada", "auth_state": stale_state("new-login-refresh")}
    merged = await _keep_server_records(a, login, await user.get_auth_state())
    assert merged["qcs"]["session_id"] is None
    await asyncio.wait_for(a.state_lock("ada").acquire(), 5)  # released: outside a Hub there is no save to wait for
