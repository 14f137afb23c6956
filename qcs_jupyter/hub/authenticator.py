"""``QCSAuthenticator``: log in with Rigetti QCS (Okta, OpenID Connect) and keep the tokens fresh."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from oauthenticator.generic import GenericOAuthenticator
from tornado.httpclient import HTTPClientError, HTTPRequest
from traitlets import Bool, Enum, Float, Integer, Unicode, default, validate

from ..credentials import AuthServer
from ..credentials.store import QCS_API_URL, QCS_CLIENT_ID, QCS_GRPC_API_URL, QCS_ISSUER
from ..credentials.tokens import fingerprint, jwt_expiry
from ..handoff import CREDENTIALS_SCOPE, MODE_HUB, MODE_SHARED, build_payload

#: A forced refresh leaves alone access tokens younger than this (seconds).
FORCED_REFRESH_MIN_AGE = 5.0
_ENDPOINT_KEYS = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userdata_url": "userinfo_endpoint",
}
_OKTA_PATHS = {"authorize_url": "/v1/authorize", "token_url": "/v1/token", "userdata_url": "/v1/userinfo"}


@dataclass
class Freshness:
    """Outcome of making a user's tokens fresh.

    ``relogin``: the IdP refused the refresh token (the user must log in again).
    ``error``: the IdP could not be reached; ``auth_state`` holds the tokens we already had.
    """

    auth_state: dict[str, Any] | None
    refreshed: bool = False
    relogin: bool = False
    error: str | None = None


class RefreshRejected(Exception):
    """The IdP answered the refresh with ``invalid_grant`` (or another definitive 4xx)."""


class QCSAuthenticator(GenericOAuthenticator):
    """Log in to JupyterHub with Rigetti QCS and hand every server fresh QCS credentials.

    Defaults match QCS's OpenID Connect issuer; endpoints come from the issuer's discovery document.
    Tokens live in the encrypted ``auth_state`` (set ``JUPYTERHUB_CRYPT_KEY``) and are refreshed ahead of
    expiry, once per user at a time. Use ``qcs_jupyter.hub.configure_hub(c)`` to add the scopes and roles
    the credential handoff needs.
    """

    login_service = Unicode("Rigetti QCS", config=True, help="Name shown on the login button.")

    issuer = Unicode(
        QCS_ISSUER,
        config=True,
        help="""OpenID Connect issuer of QCS (Okta). Its discovery document
        ({issuer}/.well-known/openid-configuration) supplies authorize_url, token_url and userdata_url unless
        they are set. The same issuer is written into each user's ~/.qcs/settings.toml. No trailing slash.""",
    )

    @validate("issuer")
    def _validate_issuer(self, proposal: Any) -> str:
        return str(proposal["value"]).rstrip("/")

    discovery_timeout = Float(10.0, config=True, help="Seconds to wait for the issuer's discovery document at startup.")

    credentials_mode = Enum(
        [MODE_HUB, MODE_SHARED],
        MODE_HUB,
        config=True,
        help="""Who refreshes the QCS tokens.
        'hub' (default, safe with refresh-token rotation and with confidential clients): the Hub keeps the
        refresh token; users' files get the access token only, and each server pulls a fresh one from the Hub
        before it expires.
        'shared': the files also get the refresh token, so the QCS SDK can refresh by itself. Only for a public
        client at an IdP that does NOT rotate refresh tokens (with rotation, two refreshers log each other out).""",
    )

    refresh_margin = Integer(
        300,
        config=True,
        help="""Refresh the access token when it has fewer than this many seconds left (capped at half of
        the token's lifetime, so short-lived tokens are not refreshed on every request).""",
    )

    refresh_timeout = Float(
        10.0, config=True, help="Seconds to wait for the IdP's token endpoint before keeping the current tokens."
    )

    qcs_profile = Unicode(
        "default",
        config=True,
        help="Profile name written into users' ~/.qcs files (profile, auth server and credentials share it).",
    )
    qcs_api_url = Unicode(QCS_API_URL, config=True, help="QCS API URL written into users' settings.toml.")
    qcs_grpc_api_url = Unicode(
        QCS_GRPC_API_URL, config=True, help="QCS gRPC API URL written into users' settings.toml."
    )

    @default("client_id")
    def _client_id_default(self) -> str:
        return os.environ.get("OAUTH_CLIENT_ID") or os.environ.get("QCS_CLIENT_ID") or QCS_CLIENT_ID

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "offline_access", "profile", "email"]

    @default("username_claim")
    def _username_claim_default(self) -> str:
        # QCS (Okta) sets preferred_username to the login e-mail: stable, unique and what users type.
        return "preferred_username"

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self) -> bool:
        return True

    @default("userdata_from_id_token")
    def _userdata_from_id_token_default(self) -> bool:
        # An expired id_token makes oauthenticator fail with HTTP 500; userinfo works with every refresh.
        return False

    verify_discovery_tls = Bool(True, config=True, help="Verify TLS when fetching the discovery document.")

    # --- endpoints from discovery --------------------------------------------------------------------
    _discovery: dict[str, Any] | None = None

    def _discovered(self, trait: str) -> str:
        if self._discovery is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                with urllib.request.urlopen(url, timeout=self.discovery_timeout) as response:  # noqa: S310 - https issuer
                    doc = json.loads(response.read().decode("utf-8"))
                if doc.get("issuer", "").rstrip("/") != self.issuer:
                    self.log.warning(
                        "QCS: discovery document at %s names issuer %r, not %r", url, doc.get("issuer"), self.issuer
                    )
                self._discovery = doc
            except (OSError, ValueError) as e:
                self.log.warning("QCS: could not read %s (%s); using Okta's endpoint layout under the issuer", url, e)
                self._discovery = {}
        return self._discovery.get(_ENDPOINT_KEYS[trait]) or f"{self.issuer}{_OKTA_PATHS[trait]}"

    @default("authorize_url")
    def _authorize_url_default(self) -> str:
        return self._discovered("authorize_url")

    @default("token_url")
    def _token_url_default(self) -> str:
        return self._discovered("token_url")

    @default("userdata_url")
    def _userdata_url_default(self) -> str:
        return self._discovered("userdata_url")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._rejected: dict[str, str] = {}  # user -> fingerprint of a refresh token the IdP refused
        self.refresh_requests = 0  # IdP refresh calls made (for operators and tests)
        if self.enable_auth_state and not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
            self.log.error(
                "QCSAuthenticator keeps QCS tokens in encrypted auth_state, which needs JUPYTERHUB_CRYPT_KEY. "
                "Set it for the Hub, e.g. export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32)"
            )

    # --- startup checks ----------------------------------------------------------------------------
    def check_allow_config(self) -> None:
        super().check_allow_config()
        for problem in self.configuration_problems():
            self.log.warning("QCS: %s", problem)

    def configuration_problems(self) -> list[str]:
        """What is missing from the Hub's configuration for the credential handoff, in plain words."""
        problems = []
        if not self.client_id:
            problems.append("no client_id: set c.QCSAuthenticator.client_id (or OAUTH_CLIENT_ID).")
        if not self.oauth_callback_url:
            problems.append(
                "oauth_callback_url is not set; the callback URL is guessed from each request. Set it to https://<hub>/hub/oauth_callback."
            )
        app = self.parent
        custom = getattr(app, "custom_scopes", {}) or {}
        if app is not None and CREDENTIALS_SCOPE not in custom:
            problems.append(
                f"the scope {CREDENTIALS_SCOPE} is not defined, so servers cannot fetch credentials. Add `from qcs_jupyter.hub import configure_hub; configure_hub(c)` to jupyterhub_config.py."
            )
        return problems

    # --- auth_state with absolute times --------------------------------------------------------------
    async def build_auth_state_dict(self, token_info: dict[str, Any], user_info: dict[str, Any]) -> dict[str, Any]:
        state = super().build_auth_state_dict(token_info, user_info)
        if asyncio.iscoroutine(state):
            state = await state
        now = time.time()
        state["qcs"] = {
            "access_token_obtained_at": now,
            "access_token_expires_at": _expires_at(token_info, now),
            "refresh_token_obtained_at": now if token_info.get("refresh_token") else None,
        }
        return state

    def build_access_tokens_request_params(self, handler: Any, data: Any = None) -> dict[str, Any]:
        return _drop_empty_secret(super().build_access_tokens_request_params(handler, data))

    def build_refresh_token_request_params(self, refresh_token: str) -> dict[str, Any]:
        return _drop_empty_secret(super().build_refresh_token_request_params(refresh_token))

    # --- refresh -------------------------------------------------------------------------------------
    def needs_refresh(self, auth_state: dict[str, Any], now: float | None = None) -> bool:
        now = time.time() if now is None else now
        qcs = auth_state.get("qcs") or {}
        expires = qcs.get("access_token_expires_at") or _expires_at(
            {"access_token": auth_state.get("access_token")}, None
        )
        if not expires:
            return True
        obtained = qcs.get("access_token_obtained_at")
        margin = self.refresh_margin
        if obtained:
            margin = min(margin, max(0.0, (expires - obtained) / 2))
        return expires - now <= margin

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> bool:
        """Refresh ahead of expiry, once per user at a time; False only when the IdP refused the refresh token."""
        if not self.enable_auth_state:
            return True
        if self.refresh_user_hook is not None:
            return await super().refresh_user(user, handler, **kwargs)
        result = await self.ensure_fresh(user)
        if result.auth_state is None:
            return False
        return not result.relogin

    def _due(self, state: dict[str, Any], force: bool) -> bool:
        if not force:
            return self.needs_refresh(state)
        # A forced refresh (server start, "Refresh now") skips tokens obtained moments ago, e.g. by
        # refresh_pre_spawn, so one start costs at most one IdP call.
        obtained = (state.get("qcs") or {}).get("access_token_obtained_at") or 0
        return time.time() - obtained >= FORCED_REFRESH_MIN_AGE

    async def ensure_fresh(self, user: Any, *, force: bool = False) -> Freshness:
        """Make the user's access token fresh; concurrent callers share one IdP call. Never raises for IdP trouble.

        ``force`` refreshes even when the token is not yet due (unless it is only seconds old).
        """
        state = await user.get_auth_state()
        if not state or not state.get("access_token"):
            return Freshness(None, relogin=True, error="no QCS tokens are stored for this user; log in again")
        if not self._due(state, force):
            return Freshness(state)
        seen = state.get("access_token")
        lock = self._refresh_locks.setdefault(user.name, asyncio.Lock())
        async with lock:
            state = await user.get_auth_state() or state
            if state.get("access_token") != seen:
                return Freshness(state, refreshed=True)  # another request refreshed while we waited
            if not self._due(state, force):
                return Freshness(state)
            refresh_token = state.get("refresh_token")
            if not refresh_token:
                return Freshness(
                    state,
                    relogin=not _still_valid(state),
                    error="no refresh token; log in again when the access token expires",
                )
            if self._rejected.get(user.name) == fingerprint(refresh_token):
                return Freshness(state, relogin=True, error="the QCS login has expired; log in again")
            try:
                token_info = await self._request_refresh(refresh_token)
            except RefreshRejected as e:
                self._rejected[user.name] = fingerprint(refresh_token)
                self.log.warning(
                    "QCS: the IdP refused the refresh token of %s (%s); they must log in again", user.name, e
                )
                return Freshness(state, relogin=True, error=f"the QCS login has expired ({e}); log in again")
            except Exception as e:
                message = _describe(e)
                self.log.warning(
                    "QCS: could not refresh the tokens of %s: %s; keeping the current ones", user.name, message
                )
                return Freshness(state, error=f"the identity provider could not be reached ({message})")
            new_state = await self._refreshed_state(state, token_info)
            await user.save_auth_state(new_state)
            self.log.info("QCS: refreshed the access token of %s", user.name)
            return Freshness(new_state, refreshed=True)

    async def _request_refresh(self, refresh_token: str) -> dict[str, Any]:
        self.refresh_requests += 1
        params = self.build_refresh_token_request_params(refresh_token)
        request = HTTPRequest(
            self.token_url,
            method="POST",
            headers=self.build_token_info_request_headers(),
            body=urlencode(params).encode("utf-8"),
            validate_cert=self.validate_server_cert,
            request_timeout=self.refresh_timeout,
            connect_timeout=self.refresh_timeout,
        )
        try:
            response = await self.http_client.fetch(request)
        except HTTPClientError as e:
            body = _json_or_empty(e.response.body if e.response is not None else b"")
            error = body.get("error") or f"HTTP {e.code}"
            if e.code in (400, 401) and error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise RefreshRejected(f"{error}: {body.get('error_description', '')}".rstrip(": ")) from None
            raise
        token_info = _json_or_empty(response.body)
        if not isinstance(token_info.get("access_token"), str):
            raise ValueError("the token endpoint answered without an access_token")
        return token_info

    async def _refreshed_state(self, state: dict[str, Any], token_info: dict[str, Any]) -> dict[str, Any]:
        if not token_info.get("refresh_token"):
            token_info["refresh_token"] = state.get("refresh_token")  # no rotation: keep the one we have
        user_info = state.get(self.user_auth_state_key)
        try:
            user_info = await self.token_to_user(token_info)
        except Exception as e:  # userinfo is nice to have on refresh; the tokens are what matter
            self.log.warning("QCS: userinfo after refresh failed (%s); keeping the previous user info", _describe(e))
        new_state = await self.build_auth_state_dict(token_info, user_info)
        previous = state.get("qcs") or {}
        # The 90-day horizon counts from the login (the grant), not from the last rotation.
        new_state["qcs"]["refresh_token_obtained_at"] = (
            previous.get("refresh_token_obtained_at") or new_state["qcs"]["refresh_token_obtained_at"]
        )
        return new_state

    # --- spawning and handoff --------------------------------------------------------------------------
    async def pre_spawn_start(self, user: Any, spawner: Any) -> None:
        """Every server start gets freshly refreshed credentials; IdP trouble never fails a spawn."""
        inherited = super().pre_spawn_start(user, spawner)
        if inspect.isawaitable(inherited):
            await inherited
        result = await self.ensure_fresh(user, force=True)
        if result.error:
            self.log.warning("QCS: starting %s with the tokens we have: %s", spawner._log_name, result.error)
        scopes = spawner.server_token_scopes
        if not callable(scopes) and scopes and not any(s.startswith(CREDENTIALS_SCOPE) for s in scopes):
            self.log.warning(
                "QCS: %s's server token lacks %s!user, so it cannot fetch QCS credentials; use configure_hub(c).",
                spawner._log_name,
                CREDENTIALS_SCOPE,
            )

    @staticmethod
    def access_token_valid(auth_state: dict[str, Any]) -> bool:
        return _still_valid(auth_state)

    def auth_server(self) -> AuthServer:
        return AuthServer(self.issuer, self.client_id)

    def handoff_payload(self, auth_state: dict[str, Any], refresh_error: str | None = None) -> dict[str, Any]:
        return build_payload(
            auth_state,
            mode=self.credentials_mode,
            auth_server=self.auth_server(),
            api_url=self.qcs_api_url,
            grpc_api_url=self.qcs_grpc_api_url,
            profile=self.qcs_profile,
            refresh_error=refresh_error,
        )

    def get_handlers(self, app: Any) -> list[tuple]:
        from .handlers import QCSCredentialsHandler

        return [*super().get_handlers(app), (r"/api/qcs/credentials/([^/]+)", QCSCredentialsHandler)]


def _expires_at(token_info: dict[str, Any], now: float | None) -> float | None:
    access = token_info.get("access_token")
    exp = jwt_expiry(access) if isinstance(access, str) else None
    if exp is not None:
        return exp.timestamp()
    expires_in = token_info.get("expires_in")
    if now is not None and isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        return now + float(expires_in)
    return None


def _still_valid(state: dict[str, Any]) -> bool:
    expires = (state.get("qcs") or {}).get("access_token_expires_at")
    return bool(expires and expires > time.time())


def _drop_empty_secret(params: dict[str, Any]) -> dict[str, Any]:
    # A public client has no secret; sending client_secret="" makes some IdPs reject the request.
    if not params.get("client_secret"):
        params.pop("client_secret", None)
    return params


def _json_or_empty(body: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(e: BaseException) -> str:
    """A short description of a network error, never a response body (it could echo a token)."""
    if isinstance(e, HTTPClientError):
        return f"HTTP {e.code}" if e.code != 599 else f"no answer ({e.message})"
    return f"{type(e).__name__}: {e}"[:200]
