"""``QCSAuthenticator``: log in with Rigetti QCS (Okta, OpenID Connect) and keep the tokens fresh.

Setting ``c.JupyterHub.authenticator_class = "qcs"`` is the whole Hub configuration: the authenticator adds its
own routes under the Hub API and recognizes each user's running servers by the token JupyterHub issued to them,
so no roles, scopes or spawner settings are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlparse, urlunparse

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler, OAuthLogoutHandler
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest
from traitlets import Bool, Float, Integer, Unicode, default, validate

from ..credentials import AuthServer
from ..credentials.tokens import jwt_expiry
from ..handoff import ISSUER_ROUTE, build_payload
from ..qcs import (
    QCS_API_URL,
    QCS_CLIENT_ID,
    QCS_GRPC_API_URL,
    QCS_ISSUER,
    REFRESH_TOKEN_LIFETIME_DAYS,
    REFRESH_TOKEN_WARNING_DAYS,
)
from . import metrics, session
from .limits import FailureLimiter

#: A forced refresh leaves alone access tokens younger than this (seconds).
FORCED_REFRESH_MIN_AGE = 5.0
#: A server's last pull is saved in auth_state at most this often (seconds).
PULL_NOTE_INTERVAL = 300.0
_ENDPOINT_KEYS = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userdata_url": "userinfo_endpoint",
}

#: The keys of auth_state that hold token values (oauthenticator's, the IdP's whole answer included).
TOKEN_KEYS = ("access_token", "refresh_token", "id_token", "token_response")

# Outcomes of an IdP refresh (also metric labels).
#: What a change given to ``QCSAuthenticator.update_auth_state`` returns when it changed nothing (no write).
UNCHANGED = object()
OUTCOME_OK = "ok"
OUTCOME_REJECTED = "rejected"
OUTCOME_UNREACHABLE = "unreachable"
OUTCOME_TIMEOUT = "timeout"


@dataclass
class Freshness:
    """Outcome of making a user's tokens fresh.

    ``relogin``: the user must log in again (the IdP refused the refresh token, or they logged out) once the
    access token in ``auth_state`` expires. ``error``: why the tokens could not be refreshed, in plain words.
    """

    auth_state: dict[str, Any] | None
    refreshed: bool = False
    relogin: bool = False
    error: str | None = None


@dataclass
class AuthStateRead:
    """One decrypted read of a user's auth_state, with the encrypted blob it came from (JupyterHub's
    ``encrypted_auth_state``): while the stored blob is still that one, nothing has saved since (every save encrypts
    anew), and the read stands. Lives for one refresh, never kept."""

    encrypted: bytes | None
    state: dict[str, Any] | None


class RefreshRejected(Exception):
    """The IdP answered the refresh with ``invalid_grant`` (or another definitive 4xx)."""


class DiscoveryError(Exception):
    """The issuer's discovery document could not be read or names another issuer."""


class QCSLoginHandler(OAuthLoginHandler):
    """The OAuth login redirect, once the issuer's endpoints are known (discovery never blocks the event loop)."""

    async def get(self) -> None:
        try:
            await self.authenticator.discover()
        except DiscoveryError as e:
            raise web.HTTPError(
                503, f"The QCS sign-in service cannot be reached right now ({e}). Try again soon."
            ) from None
        super().get()


class QCSLogoutHandler(OAuthLogoutHandler):
    """Logging out of the Hub ends the QCS session, when the user meant it: the refresh token is revoked at the IdP
    and dropped.

    JupyterHub's logout is a GET without an XSRF token, and the Hub's cookie rides along on a top-level navigation
    from any site, so another site can log a user out. Such a logout ends the Hub session as JupyterHub does, but
    leaves the QCS session (refresh token, running servers, held clients) alone: only a logout from the Hub's own
    pages, the user's own server, or a typed URL revokes. The browser says where a request came from in
    ``Sec-Fetch-Site`` (over https and on loopback); without it, the ``Referer`` must name one of those origins.
    """

    #: ``Sec-Fetch-Site`` values that show the user meant it: the Hub's own page (its logout button, or
    #: JupyterLab served through the Hub's proxy) or a URL typed, bookmarked or pasted.
    INTENDED_FETCH_SITES = frozenset({"same-origin", "none"})

    @staticmethod
    def logout_intended(fetch_site: str | None, referer: str | None, own_hosts: set[str]) -> bool:
        """Whether a logout request came from the Hub's own pages, the user's own server or the address bar.

        ``own_hosts``: the ``host[:port]`` of the Hub and of the user's own servers (their subdomain, if any).
        ``same-site`` (another subdomain, e.g. another user's server) and an absent ``Sec-Fetch-Site`` (plain
        http, old browsers, scripts) count only with a ``Referer`` from one of those hosts."""
        site = (fetch_site or "").strip().lower()
        if site in QCSLogoutHandler.INTENDED_FETCH_SITES:
            return True
        if site not in ("", "same-site"):
            return False  # cross-site, or a value this code does not know
        netloc = QCSLogoutHandler._netloc(referer)
        return bool(netloc) and netloc in {h.lower() for h in own_hosts if h}

    @staticmethod
    def _netloc(url: str | None) -> str:
        try:
            return urlparse(url or "").netloc.lower()
        except ValueError:
            return ""

    def _own_hosts(self, user: Any) -> set[str]:
        # The Hub as the browser addressed it, the Hub's subdomain host, and the user's own servers' host (their
        # subdomain, or the Hub's public URL).
        hosts = {self.request.host}
        for url in (self.settings.get("subdomain_host"), getattr(user, "host", "")):
            hosts.add(self._netloc(url))
        return hosts

    async def handle_logout(self) -> None:
        await super().handle_logout()
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            return
        headers = self.request.headers
        fetch_site, referer = headers.get("Sec-Fetch-Site"), headers.get("Referer")
        if not self.logout_intended(fetch_site, referer, self._own_hosts(user)):
            self.log.warning(
                "QCS: %s was logged out of the Hub by a request that did not come from the Hub's own pages"
                " (Sec-Fetch-Site: %s, Referer: %s); the QCS session is kept. Log out from the Hub's page to end it.",
                user.name,
                fetch_site or "-",
                self._netloc(referer) or "-",
            )
            return
        await self.authenticator.revoke_session(user, "logout")
        metrics.logout("user")


class QCSAuthenticator(GenericOAuthenticator):
    """Log in to JupyterHub with Rigetti QCS and hand every server of the user fresh QCS credentials.

    Defaults match QCS's OpenID Connect issuer; endpoints come from the issuer's discovery document. Tokens live
    in the encrypted ``auth_state`` (set ``JUPYTERHUB_CRYPT_KEY``); the Hub is the only party that refreshes
    them, ahead of expiry and once per user at a time. Each running server of the user pulls them over the Hub
    API with its own server token, and QCS clients in kernels refresh through an issuer the Hub serves.
    """

    login_service = Unicode("Rigetti QCS", config=True, help="Name shown on the login button.")
    login_handler = QCSLoginHandler
    logout_handler = QCSLogoutHandler

    issuer = Unicode(
        QCS_ISSUER,
        config=True,
        help="""OpenID Connect issuer of QCS (Okta). Its discovery document
        ({issuer}/.well-known/openid-configuration) supplies authorize_url, token_url, userdata_url and the
        revocation endpoint unless they are set; a document naming another issuer is refused. No trailing slash.""",
    )

    @validate("issuer")
    def _validate_issuer(self, proposal: Any) -> str:
        return str(proposal["value"]).rstrip("/")

    allow_insecure_issuer = Bool(
        False,
        config=True,
        help="""Accept an http:// issuer (and http endpoints on its origin). Tokens and the client secret then cross
        the network in the clear: only for a local test identity provider. Default: refused, with a log line.""",
    )

    revocation_url = Unicode(
        "",
        config=True,
        help="""The IdP's token revocation endpoint (RFC 7009), where logout and "Revoke QCS session" revoke the
        refresh token. Default: the discovery document's revocation_endpoint, if it is https on the issuer's
        origin. Set it (like authorize_url, token_url, userdata_url) to use an endpoint elsewhere.""",
    )

    discovery_timeout = Float(10.0, config=True, help="Seconds to wait for the issuer's discovery document.")

    client_issuer_url = Unicode(
        "",
        config=True,
        help="""The issuer URL written into users' settings.toml: where QCS clients in kernels (pyQuil,
        qcs-sdk-python) refresh their access token. The Hub serves it ({hub}/hub/api/qcs/issuer), answering a
        refresh with the Hub's fresh access token; the refresh token the files carry is good only there and only
        while one of the user's servers runs. It must be reachable from kernels, and https for qcs-sdk-python
        0.22 and later (pyQuil 4 also accepts http). Default: derived from oauth_callback_url (same scheme and
        host, the Hub's prefix).""",
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

    refresh_backoff_initial = Float(
        30.0,
        config=True,
        help="""After a refresh failed (IdP unreachable, slow or erroring), wait this many seconds before the next
        attempt for that user, doubling with each failure up to refresh_backoff_max. Meanwhile the still-valid
        access token keeps being handed out, so an IdP outage is not amplified by servers and browsers.""",
    )
    refresh_backoff_max = Float(300.0, config=True, help="Longest wait between failed refresh attempts (seconds).")

    refresh_token_max_age_days = Float(
        float(REFRESH_TOKEN_LIFETIME_DAYS),
        config=True,
        help="Lifetime of a QCS refresh token in days, counted from the login (QCS: 90).",
    )
    refresh_token_warning_days = Float(
        float(REFRESH_TOKEN_WARNING_DAYS),
        config=True,
        help="Warn (status, admin page, metrics) when the refresh token is within this many days of its lifetime.",
    )

    freeze_startup_objects = Bool(
        True,
        config=True,
        help="""Once the Hub serves, move every object its startup made out of the generations of Python's cyclic
        garbage collector (gc.freeze()), before the token-health gauges are rebuilt. With thousands of users, each full
        collection otherwise walks the whole startup heap (a few hundred ms on a 10,000-user Hub, the event loop
        stalled meanwhile); frozen objects are still freed when unreferenced, only a reference cycle among them is
        never collected. False: leave the collector alone.""",
    )

    session_token_lifetime = Float(
        20 * 3600.0,
        config=True,
        help="""Seconds a session refresh token (the refresh token in users' secrets.toml, good only at the Hub's
        issuer) works after it was minted, even while servers run: a copy of secrets.toml stops working within
        this time. QCS clients that keep the rotated token of each refresh answer keep working as long as one of
        the user's servers runs; those that keep their first token work for at least this minus
        session_token_rotation. Default: 20 hours.""",
    )
    session_token_rotation = Float(
        3600.0,
        config=True,
        help="""Seconds between two session refresh tokens: servers write the newest into secrets.toml on each pull,
        and the Hub's issuer answers every refresh with it. Must be shorter than session_token_lifetime.
        Default: 1 hour.""",
    )

    @validate("session_token_rotation")
    def _validate_rotation(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0 < value < self.session_token_lifetime:
            raise ValueError("session_token_rotation must be positive and shorter than session_token_lifetime")
        return value

    issuer_failures_per_minute = Integer(
        30,
        config=True,
        help="""Failed refresh attempts (bad, expired or ended session tokens) one client address may make per minute
        at the Hub's issuer before further failures are answered 429 with Retry-After. Valid session tokens are
        always answered.""",
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

    @default("reconcile_auth_state_hook")
    def _reconcile_default(self) -> Callable:
        return _keep_server_records

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._discovery: dict[str, Any] | None = None
        self._discovery_task: asyncio.Task | None = None
        self._discovery_retry_at = 0.0
        self._discovery_error: str | None = None
        self._flights: dict[str, asyncio.Future] = {}
        self._state_locks: dict[str, asyncio.Lock] = {}
        self._backoff: dict[str, tuple[float, int, str]] = {}  # user -> (next attempt at, failures, error)
        self._background: set[asyncio.Task] = set()
        self._session_tokens: session.SessionTokens | None = None
        self._issuer_limiter: FailureLimiter | None = None
        self.refresh_requests = 0  # IdP refresh calls made (for operators and tests)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        # Start discovery with the Hub, so the first login does not wait for it.
        self._discovery_task = asyncio.ensure_future(self._discover_quietly())

    # --- startup checks ----------------------------------------------------------------------------
    def check_allow_config(self) -> None:
        super().check_allow_config()
        for problem in self.configuration_problems():
            self.log.error("QCS: %s", problem)
        url = self.issuer_for_clients()
        if url and not url.startswith("https://"):
            self.log.warning(
                "QCS: QCS clients in kernels refresh through %s; qcs-sdk-python refuses an http issuer (pyQuil "
                "accepts it). Serve the Hub over https or set c.QCSAuthenticator.client_issuer_url.",
                url,
            )

    def configuration_problems(self) -> list[str]:
        """What is missing from the Hub's configuration, one plain sentence each naming the setting."""
        problems = []
        if self.issuer.startswith("http://") and not self.allow_insecure_issuer:
            problems.append(
                f"the issuer {self.issuer} is http: tokens would cross the network in the clear. Use the https "
                "issuer, or set c.QCSAuthenticator.allow_insecure_issuer = True for a local test IdP."
            )
        if not self.client_id:
            problems.append("no client id: set c.QCSAuthenticator.client_id (or the OAUTH_CLIENT_ID variable).")
        if not self.oauth_callback_url:
            problems.append(
                "c.QCSAuthenticator.oauth_callback_url is not set (https://<your hub>/hub/oauth_callback); "
                "it is needed to log in and for QCS clients in kernels to refresh through the Hub."
            )
        if self.enable_auth_state and not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
            problems.append(
                "JUPYTERHUB_CRYPT_KEY is not set: QCS tokens are kept in encrypted auth_state. Set it in the Hub's "
                "environment, e.g. export JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32)"
            )
        return problems

    # --- discovery -----------------------------------------------------------------------------------
    async def discover(self) -> dict[str, Any]:
        """The issuer's discovery document; fills endpoints the admin did not set. Retried after a failure."""
        if self._discovery is not None:
            return self._discovery
        if self._discovery_task is None or self._discovery_task.done():
            if time.monotonic() < self._discovery_retry_at:
                raise DiscoveryError(self._discovery_error or "discovery failed")
            self._discovery_task = asyncio.ensure_future(self._fetch_discovery())
        await asyncio.shield(self._discovery_task)
        if self._discovery is None:
            raise DiscoveryError(self._discovery_error or "discovery failed")
        return self._discovery

    async def _discover_quietly(self) -> None:
        with contextlib.suppress(DiscoveryError):  # logged inside; the next login or refresh retries
            await self._fetch_discovery()

    async def _fetch_discovery(self) -> None:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            if not self._origin_allowed(self.issuer):
                raise DiscoveryError(
                    f"the issuer {self.issuer} is not https (set c.QCSAuthenticator.allow_insecure_issuer = True "
                    "only for a local test IdP)"
                )
            response = await self.http_client.fetch(
                self._request(url, method="GET", headers={"Accept": "application/json"}, timeout=self.discovery_timeout)
            )
            doc = _json_or_empty(response.body)
            if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
                raise DiscoveryError(f"{url} names the issuer {doc.get('issuer')!r}, not {self.issuer!r}")
            for trait, key in _ENDPOINT_KEYS.items():
                endpoint = doc.get(key)
                if not getattr(self, trait) and isinstance(endpoint, str) and not self._on_issuer_origin(endpoint):
                    raise DiscoveryError(
                        f"{url} names {key} {endpoint!r}, which is not https on the issuer's origin; set "
                        f"c.QCSAuthenticator.{trait} if that endpoint is really the IdP's"
                    )
        except Exception as e:
            self._discovery_error = str(e) if isinstance(e, DiscoveryError) else f"{url}: {_describe(e)}"
            self._discovery_retry_at = time.monotonic() + 10.0
            self.log.error(
                "QCS: cannot use the issuer's discovery document: %s; retrying on demand", self._discovery_error
            )
            raise DiscoveryError(self._discovery_error) from None
        for trait, key in _ENDPOINT_KEYS.items():
            if not getattr(self, trait) and isinstance(doc.get(key), str):
                setattr(self, trait, doc[key])
        self._discovery = doc
        self._discovery_error = None

    def _origin_allowed(self, url: str) -> bool:
        scheme = urlparse(url).scheme
        return scheme == "https" or (scheme == "http" and self.allow_insecure_issuer)

    def _on_issuer_origin(self, url: str) -> bool:
        """Whether ``url`` is https (or an allowed http) on the issuer's own scheme, host and port."""
        try:
            endpoint, issuer = urlparse(url), urlparse(self.issuer)
            same = (endpoint.scheme, endpoint.netloc.lower()) == (issuer.scheme, issuer.netloc.lower())
        except ValueError:
            return False
        return same and self._origin_allowed(url)

    def _request(self, url: str, *, timeout: float, **kwargs: Any) -> HTTPRequest:
        """A request to the IdP honouring oauthenticator's http_request_kwargs (proxy, CA) and TLS settings.

        Redirects are never followed: a 307/308 would re-send the refresh token and client secret elsewhere."""
        options = {**self.http_request_kwargs, **kwargs, "follow_redirects": False}
        options.setdefault("validate_cert", self.validate_server_cert)
        options.setdefault("request_timeout", timeout)
        options.setdefault("connect_timeout", timeout)
        return HTTPRequest(url, **options)

    async def httpfetch(self, url: str, *args: Any, **kwargs: Any) -> Any:
        """oauthenticator's requests (the login's code exchange, userinfo) never follow redirects either."""
        kwargs["follow_redirects"] = False
        return await super().httpfetch(url, *args, **kwargs)

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> dict[str, Any]:
        await self.discover()
        return await super().get_token_info(handler, params)

    async def token_to_user(self, token_info: dict[str, Any]) -> dict[str, Any]:
        await self.discover()
        return await super().token_to_user(token_info)

    # --- auth_state with absolute times --------------------------------------------------------------
    async def build_auth_state_dict(self, token_info: dict[str, Any], user_info: dict[str, Any]) -> dict[str, Any]:
        state = super().build_auth_state_dict(token_info, user_info)
        if inspect.isawaitable(state):
            state = await state
        now = time.time()
        state["qcs"] = {
            "access_token_obtained_at": now,
            "access_token_expires_at": _expires_at(token_info, now),
            "refresh_token_obtained_at": now if token_info.get("refresh_token") else None,
            "last_refresh_at": None,
            "last_refresh_outcome": None,
            "servers": {},
            "session_refresh_token": None,
            "logged_out_at": None,
        }
        return state

    def build_access_tokens_request_params(self, handler: Any, data: Any = None) -> dict[str, Any]:
        return _drop_empty_secret(super().build_access_tokens_request_params(handler, data))

    def build_refresh_token_request_params(self, refresh_token: str) -> dict[str, Any]:
        return _drop_empty_secret(super().build_refresh_token_request_params(refresh_token))

    # --- auth_state updates, one per user at a time ---------------------------------------------------------
    async def read_auth_state(self, user: Any, earlier: AuthStateRead | None = None) -> AuthStateRead:
        """The user's auth_state, decrypted; ``earlier`` (a read of this same refresh) is reused, without another
        decryption, when the stored blob is still the one it came from."""
        encrypted = getattr(user, "encrypted_auth_state", None)
        if earlier is not None and isinstance(encrypted, bytes) and encrypted == earlier.encrypted:
            return earlier
        return AuthStateRead(encrypted if isinstance(encrypted, bytes) else None, await user.get_auth_state())

    async def update_auth_state(
        self,
        user: Any,
        change: Callable[[dict[str, Any]], Awaitable[Any] | Any],
        *,
        earlier: AuthStateRead | None = None,
    ) -> dict[str, Any] | None:
        """Read, change and save a user's auth_state under that user's lock (no lost updates between the
        refresher, spawns, stops, pulls and logouts). ``change`` edits the dict in place; when it returns
        ``UNCHANGED`` it changed nothing, and nothing is encrypted or saved. ``earlier``: the caller's read, used
        (and changed in place) if nothing saved since it."""
        lock = self.state_lock(user.name)
        async with lock:
            state = (await self.read_auth_state(user, earlier)).state
            if state is None:
                return None
            state.setdefault("qcs", {})
            outcome = change(state)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome is UNCHANGED:
                return state
            await user.save_auth_state(state)
            self._observe_health(user.name, state)
            return state

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
        """Refresh ahead of expiry, once per user at a time.

        This does not return oauthenticator's auth model: the refreshed auth_state is saved inside the user's
        lock (a returned model would be saved by JupyterHub outside it, racing concurrent refreshes). False only
        when the user must log in again: the login is over and the access token has expired.
        """
        if handler is not None and not hasattr(handler, "_token_authenticated"):
            # JupyterHub 6.1's refresh_auth reads this flag when we say "log in again", but sets it only on requests
            # that came with a token: a browser's request raised AttributeError there (logged as "Failed to get
            # current user"; a 500 for an admin starting the user's server). False is what it means (JupyterHub's
            # other reads of it default to False).
            handler._token_authenticated = False
        if not self.enable_auth_state:
            return True
        if self.refresh_user_hook is not None:
            return await super().refresh_user(user, handler, **kwargs)
        result = await self.ensure_fresh(user)
        if result.auth_state is None:
            return False
        return not (result.relogin and not self.access_token_valid(result.auth_state))

    def _due(self, state: dict[str, Any], force: bool) -> bool:
        if not force:
            return self.needs_refresh(state)
        # A forced refresh (server start, "Refresh now") skips tokens obtained moments ago, e.g. by
        # refresh_pre_spawn, so one start costs at most one IdP call.
        obtained = (state.get("qcs") or {}).get("access_token_obtained_at") or 0
        return time.time() - obtained >= FORCED_REFRESH_MIN_AGE

    async def ensure_fresh(self, user: Any, *, force: bool = False) -> Freshness:
        """Make the user's access token fresh; concurrent callers share one IdP call and its outcome, failures
        included. Never raises for IdP trouble. ``force`` refreshes even when the token is not yet due (unless it
        is only seconds old)."""
        read = await self.read_auth_state(user)
        state = read.state
        if not state or not state.get("access_token"):
            return Freshness(state or None, relogin=True, error=_relogin_reason(state))
        if not self._due(state, force):
            return Freshness(state, relogin=not state.get("refresh_token"), error=_refused_reason(state))
        flight = self._flights.get(user.name)
        if flight is None:
            flight = asyncio.ensure_future(self._refresh(user, force, read))
            self._flights[user.name] = flight
            flight.add_done_callback(lambda f, name=user.name: self._flights.pop(name, None))
        return await asyncio.shield(flight)

    async def _refresh(self, user: Any, force: bool, earlier: AuthStateRead | None = None) -> Freshness:
        # Each decryption is a hop to JupyterHub's crypto thread: a refresh reads once, unless something saved
        # meanwhile (then afresh, as a refresh that finished in between must be seen).
        read = await self.read_auth_state(user, earlier)
        state = read.state
        if not state or not state.get("access_token"):
            return Freshness(state or None, relogin=True, error=_relogin_reason(state))
        if not self._due(state, force):
            return Freshness(state)
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            return Freshness(state, relogin=True, error=_refused_reason(state) or "no refresh token; log in again")
        retry_at, failures, last_error = self._backoff.get(user.name, (0.0, 0, ""))
        if time.monotonic() < retry_at:
            return Freshness(state, error=last_error)
        started = time.monotonic()
        try:
            token_info = await self._request_refresh(refresh_token)
        except RefreshRejected as e:
            self.log.warning("QCS: the IdP refused the refresh token of %s (%s); they must log in again", user.name, e)
            self._note_refresh(OUTCOME_REJECTED, started)
            reason = f"the QCS login has expired ({e}); log in again"

            def forget(s: dict[str, Any]) -> None:
                # The refused token is dead: drop it, so nobody (not even after a Hub restart) sends it again.
                if s.get("refresh_token") == refresh_token:
                    s.pop("refresh_token", None)
                s["qcs"].update(
                    last_refresh_at=time.time(), last_refresh_outcome=OUTCOME_REJECTED, relogin_reason=reason
                )

            state = await self.update_auth_state(user, forget, earlier=read) or state
            self._backoff.pop(user.name, None)
            return Freshness(state, relogin=True, error=reason)
        except Exception as e:
            outcome = OUTCOME_TIMEOUT if _is_timeout(e) else OUTCOME_UNREACHABLE
            self._note_refresh(outcome, started)
            message = f"the identity provider could not be reached ({_describe(e)})"
            wait = min(self.refresh_backoff_max, self.refresh_backoff_initial * 2**failures)
            self._backoff[user.name] = (time.monotonic() + wait, failures + 1, message)
            self.log.warning(
                "QCS: could not refresh the tokens of %s: %s; keeping the current ones, next try in %.0f s",
                user.name,
                message,
                wait,
            )

            def note(s: dict[str, Any]) -> None:
                s["qcs"].update(last_refresh_at=time.time(), last_refresh_outcome=outcome)

            state = await self.update_auth_state(user, note, earlier=read) or state
            return Freshness(state, error=message)
        self._backoff.pop(user.name, None)
        self._note_refresh(OUTCOME_OK, started)
        user_info = await self._user_info_after_refresh(token_info)
        ended = False

        async def apply(s: dict[str, Any]) -> None:
            nonlocal ended
            # Only the session this refresh was made for takes its result: a logout, a revoke or a new login
            # while the IdP was answering changed the refresh token, and must not be undone.
            if s.get("refresh_token") != refresh_token:
                ended = True
                return
            await self._apply_refresh(s, token_info, user_info)

        new_state = await self.update_auth_state(user, apply, earlier=read)
        if ended:
            rotated = token_info.get("refresh_token")
            if isinstance(rotated, str) and rotated and rotated != refresh_token:
                self._revoke_in_background(rotated, user.name)
            self.log.info("QCS: discarded a refresh for %s that finished after their session ended", user.name)
            state = new_state or {}
            return Freshness(new_state, relogin=not state.get("refresh_token"), error=_refused_reason(state))
        self.log.info("QCS: refreshed the access token of %s", user.name)
        return Freshness(new_state, refreshed=True)

    # Hooks for metrics: each says what finished, how, and (where timed) since when (``time.monotonic()``).
    def _note_refresh(self, outcome: str, started: float) -> None:
        """One IdP refresh finished."""
        metrics.idp_refresh(outcome, time.monotonic() - started)

    def note_handoff(self, outcome: str, started: float) -> None:
        """One credential pull by a user's server was answered."""
        metrics.handoff(outcome, time.monotonic() - started)

    def note_client_refresh(self, outcome: str) -> None:
        """One refresh by a QCS client in a kernel (through the Hub's issuer) was answered."""
        metrics.held_client_refresh(outcome)

    def _observe_health(self, user_name: str, state: dict[str, Any] | None) -> None:
        metrics.observe_auth_state(
            user_name,
            state,
            max_age_days=self.refresh_token_max_age_days,
            warning_days=self.refresh_token_warning_days,
        )

    async def run_post_auth_hook(self, handler: Any, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_model = await super().run_post_auth_hook(handler, auth_model)
        if auth_model and (auth_model.get("auth_state") or {}).get("access_token"):
            metrics.login()  # the user passed the allow checks: a QCS login that stores tokens
            self._observe_health(auth_model["name"], auth_model["auth_state"])
        return auth_model

    def add_user(self, user: Any) -> Any:
        """Every user of the Hub (found at startup or created) is listed on the admin page and counted."""
        metrics.know_user(user.name)
        return super().add_user(user)

    async def delete_user(self, user: Any) -> None:
        """A deleted user's QCS session ends with them: the refresh token is revoked at the IdP."""
        inherited = super().delete_user(user)
        if inspect.isawaitable(inherited):
            await inherited
        state = await user.get_auth_state() if self.enable_auth_state else None
        refresh_token = (state or {}).get("refresh_token")
        if isinstance(refresh_token, str) and refresh_token:
            self._revoke_in_background(refresh_token, user.name)
        self._backoff.pop(user.name, None)
        self._state_locks.pop(user.name, None)
        metrics.forget_user(user.name)

    async def _request_refresh(self, refresh_token: str) -> dict[str, Any]:
        await self.discover()
        self.refresh_requests += 1
        params = self.build_refresh_token_request_params(refresh_token)
        request = self._request(
            self.token_url,
            method="POST",
            headers=self.build_token_info_request_headers(),
            body=urlencode(params).encode("utf-8"),
            timeout=self.refresh_timeout,
        )
        try:
            # The whole call is bounded, waiting in the HTTP client's queue included: with an IdP that holds
            # connections open, requests queue behind the ones it holds, and tornado's timeouts start again there.
            response = await asyncio.wait_for(self.http_client.fetch(request), self.refresh_timeout)
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

    async def _user_info_after_refresh(self, token_info: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self.token_to_user(token_info)
        except Exception as e:  # userinfo is nice to have on refresh; the tokens are what matter
            self.log.warning("QCS: userinfo after refresh failed (%s); keeping the previous user info", _describe(e))
            return None

    async def _apply_refresh(
        self, state: dict[str, Any], token_info: dict[str, Any], user_info: dict[str, Any] | None
    ) -> None:
        """Put a refresh's tokens into ``state`` (in place), keeping everything else of ours."""
        if not token_info.get("refresh_token"):
            token_info["refresh_token"] = state.get("refresh_token")  # no rotation: keep the one we have
        built = await self.build_auth_state_dict(token_info, user_info or state.get(self.user_auth_state_key))
        previous = state.get("qcs") or {}
        qcs = {**previous, **{k: built["qcs"][k] for k in ("access_token_obtained_at", "access_token_expires_at")}}
        # The 90-day horizon counts from the login (the grant), not from the last rotation.
        qcs["refresh_token_obtained_at"] = (
            previous.get("refresh_token_obtained_at") or built["qcs"]["refresh_token_obtained_at"]
        )
        qcs.update(last_refresh_at=time.time(), last_refresh_outcome=OUTCOME_OK, relogin_reason=None)
        state.update({k: v for k, v in built.items() if k != "qcs"})
        state["qcs"] = qcs

    # --- logout and revocation -------------------------------------------------------------------------
    async def revoke_session(self, user: Any, reason: str) -> None:
        """End the user's QCS session: drop every token from auth_state at once (the IdP's answer kept in
        ``token_response`` too), end the session tokens of QCS clients in kernels, then revoke the refresh token at
        the IdP (RFC 7009) in the background, best effort. Running servers get "logged out" on their next pull."""
        dropped: dict[str, Any] = {}

        def drop(s: dict[str, Any]) -> None:
            for key in TOKEN_KEYS:
                if key in s:
                    dropped[key] = s.pop(key)
            session.end(s["qcs"])
            s["qcs"].update(
                logged_out_at=time.time(),
                relogin_reason=(
                    "you logged out; log in again"
                    if reason == "logout"
                    else f"your QCS session was ended ({reason}); log in again"
                ),
            )

        await self.update_auth_state(user, drop)
        self._backoff.pop(user.name, None)
        if isinstance(dropped.get("refresh_token"), str):
            self._revoke_in_background(dropped["refresh_token"], user.name)
        self.log.info("QCS: ended the QCS session of %s (%s)", user.name, reason)

    def _revoke_in_background(self, refresh_token: str, user_name: str) -> None:
        task = asyncio.ensure_future(self._revoke(refresh_token, user_name))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _revoke(self, refresh_token: str, user_name: str) -> bool:
        try:
            doc = await self.discover()
            endpoint = self.revocation_url or doc.get("revocation_endpoint")
            if isinstance(endpoint, str) and not self.revocation_url and not self._on_issuer_origin(endpoint):
                self.log.warning(
                    "QCS: the issuer's revocation endpoint %s is not https on its origin; not revoking %s's refresh"
                    " token there (set c.QCSAuthenticator.revocation_url if it is really the IdP's)",
                    endpoint,
                    user_name,
                )
                return False
            if not isinstance(endpoint, str):
                self.log.info(
                    "QCS: the issuer has no revocation endpoint; %s's refresh token was only dropped", user_name
                )
                return False
            params = _drop_empty_secret(
                {
                    "token": refresh_token,
                    "token_type_hint": "refresh_token",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                }
            )
            await self.http_client.fetch(
                self._request(
                    endpoint,
                    method="POST",
                    headers=self.build_token_info_request_headers(),
                    body=urlencode(params).encode("utf-8"),
                    timeout=self.refresh_timeout,
                )
            )
            return True
        except Exception as e:
            self.log.warning("QCS: could not revoke the refresh token of %s at the IdP: %s", user_name, _describe(e))
            return False

    # --- servers and the session ---------------------------------------------------------------------------
    async def pre_spawn_start(self, user: Any, spawner: Any) -> None:
        """Every server start gets freshly refreshed credentials, begins the session if none is running, and is
        noted for the admin page. IdP trouble never fails a spawn.

        Which servers may pull is not recorded here: JupyterHub itself knows the token each server holds (see
        ``binding``), also when a spawner resumes with a token of its own."""
        inherited = super().pre_spawn_start(user, spawner)
        if inspect.isawaitable(inherited):
            await inherited
        result = await self.ensure_fresh(user, force=True)
        if result.error:
            self.log.warning("QCS: starting %s with the tokens we have: %s", spawner._log_name, result.error)

        def note(state: dict[str, Any]) -> None:
            qcs = state["qcs"]
            servers = {k: v for k, v in (qcs.get("servers") or {}).items() if k in user.spawners and k != spawner.name}
            servers[spawner.name] = {"started_at": time.time(), "last_pull_at": None}
            qcs["servers"] = servers
            if state.get("access_token"):
                session.ensure(qcs)

        if await self.update_auth_state(user, note) is None:
            self.log.warning("QCS: %s has no QCS tokens stored; their server starts without credentials", user.name)

    async def post_spawn_stop(self, user: Any, spawner: Any) -> None:
        """With the user's last server stopped, the session ends: no session token works any more."""
        inherited = super().post_spawn_stop(user, spawner)
        if inspect.isawaitable(inherited):
            await inherited
        others = [s for name, s in user.spawners.items() if name != spawner.name and s.active]

        def forget(state: dict[str, Any]) -> object:
            qcs = state["qcs"]
            servers = qcs.get("servers") or {}
            no_session = not qcs.get("session_id") and "session_refresh_token" not in qcs
            if spawner.name not in servers and (others or no_session):
                return UNCHANGED  # nothing of this server or of a session to forget: no write
            servers.pop(spawner.name, None)
            if not others:
                session.end(qcs)
            return None

        await self.update_auth_state(user, forget)

    async def note_pull(self, user: Any, server_name: str, state: dict[str, Any]) -> dict[str, Any] | None:
        """A server of the user pulled (``state``: the auth_state it is answered from): note when, and make sure
        the session runs (a new login after a logout begins a new one). Returns the auth_state to answer from.

        The time is saved at most every ``PULL_NOTE_INTERVAL`` seconds per server (the admin page's "last pull"
        is that precise): a pull that needs no new session writes nothing, so many servers pulling at once cost
        the Hub's database no write each."""
        qcs = state.get("qcs") or {}
        record = (qcs.get("servers") or {}).get(server_name)
        last = record.get("last_pull_at") if isinstance(record, dict) else None
        session_due = bool(state.get("access_token")) and not qcs.get("session_id")
        if not session_due and isinstance(last, (int, float)) and 0 <= time.time() - last < PULL_NOTE_INTERVAL:
            return state

        def note(state: dict[str, Any]) -> None:
            qcs = state["qcs"]
            record = (qcs.get("servers") or {}).get(server_name)
            if isinstance(record, dict):
                record["last_pull_at"] = time.time()
            if state.get("access_token"):
                session.ensure(qcs)

        return await self.update_auth_state(user, note)

    @property
    def session_tokens(self) -> session.SessionTokens:
        """Mints and checks the session refresh tokens, signed with a key derived from JUPYTERHUB_CRYPT_KEY."""
        if self._session_tokens is None:
            from jupyterhub.crypto import CryptKeeper

            key = session.derive_key(list(CryptKeeper.instance().keys))
            if key is None:
                self.log.warning(
                    "QCS: no JUPYTERHUB_CRYPT_KEY; session tokens of QCS clients in kernels end at a Hub restart"
                )
                key = secrets.token_bytes(32)
            self._session_tokens = session.SessionTokens(
                key, lifetime=self.session_token_lifetime, rotation=self.session_token_rotation
            )
        return self._session_tokens

    def session_token(self, user_name: str, state: dict[str, Any] | None) -> str | None:
        """The current session refresh token of the user, or None when no session runs."""
        session_id = ((state or {}).get("qcs") or {}).get("session_id")
        return self.session_tokens.mint(user_name, session_id) if isinstance(session_id, str) and session_id else None

    @property
    def issuer_limiter(self) -> FailureLimiter:
        """Failed attempts per client at the Hub's issuer."""
        if self._issuer_limiter is None:
            self._issuer_limiter = FailureLimiter(self.issuer_failures_per_minute, window=60.0)
        return self._issuer_limiter

    def state_lock(self, user_name: str) -> asyncio.Lock:
        """The lock every change of the user's auth_state holds."""
        return self._state_locks.setdefault(user_name, asyncio.Lock())

    def hub_user(self, name: str) -> Any:
        """JupyterHub's user object by name, or None (outside a running Hub)."""
        users = getattr(self.parent, "users", None)
        try:
            return users[name] if users is not None else None
        except KeyError:
            return None

    def release_after_save(self, lock: asyncio.Lock, user: Any, state: dict[str, Any]) -> None:
        """Release ``lock`` once JupyterHub has saved ``state`` as the user's auth_state (bounded: 10 s)."""

        async def wait_and_release() -> None:
            try:
                for _ in range(200):
                    await asyncio.sleep(0.05)
                    if user is None or await user.get_auth_state() == state:
                        return
                self.log.warning("QCS: the new login's auth_state of %s was not saved within 10 s", user.name)
            finally:
                lock.release()

        task = asyncio.ensure_future(wait_and_release())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- what servers and clients receive --------------------------------------------------------------
    @staticmethod
    def access_token_valid(auth_state: dict[str, Any]) -> bool:
        return _still_valid(auth_state)

    def issuer_for_clients(self) -> str:
        """The issuer URL written into users' settings.toml (the Hub's), or '' when it cannot be derived."""
        if self.client_issuer_url:
            return self.client_issuer_url.rstrip("/")
        if not self.oauth_callback_url:
            return ""
        parsed = urlparse(self.oauth_callback_url)
        hub_prefix = getattr(self.parent, "hub_prefix", None) or (parsed.path.rsplit("/", 1)[0] + "/")
        path = hub_prefix.rstrip("/") + "/api" + ISSUER_ROUTE
        return urlunparse((parsed.scheme, parsed.netloc, path, "", "", ""))

    def auth_server(self) -> AuthServer:
        return AuthServer(self.issuer_for_clients() or self.issuer, self.client_id)

    def handoff_payload(self, user_name: str, freshness: Freshness) -> dict[str, Any]:
        assert freshness.auth_state is not None
        return build_payload(
            freshness.auth_state,
            session_token=self.session_token(user_name, freshness.auth_state),
            auth_server=self.auth_server(),
            api_url=self.qcs_api_url,
            grpc_api_url=self.qcs_grpc_api_url,
            profile=self.qcs_profile,
            refresh_error=freshness.error,
            relogin_required=freshness.relogin,
        )

    def get_handlers(self, app: Any) -> list[tuple]:
        from .admin import admin_handlers
        from .handlers import (
            QCSCredentialsHandler,
            QCSIssuerDiscoveryHandler,
            QCSIssuerTokenHandler,
            QCSStopHandler,
        )

        return [
            *super().get_handlers(app),
            *admin_handlers(self),
            (r"/api/qcs/credentials/([^/]+)", QCSCredentialsHandler),
            (r"/api/qcs/stop/([^/]+)", QCSStopHandler),
            (r"/api/qcs/issuer/\.well-known/openid-configuration", QCSIssuerDiscoveryHandler),
            (r"/api/qcs/issuer/v1/token", QCSIssuerTokenHandler),
        ]


async def _keep_server_records(authenticator: Any, auth_model: dict[str, Any], existing: dict[str, Any] | None) -> Any:
    """A new login keeps what belongs to the user's running servers: their notes and the running session, so
    servers and QCS clients in kernels go on with the new tokens. An ended session stays ended.

    Runs under the user's lock, reading the stored state afresh (a spawn or stop that finished meanwhile counts),
    and holds the lock until JupyterHub has saved what it returns."""
    state = auth_model.get("auth_state")
    if not isinstance(state, dict) or not isinstance(state.get("qcs"), dict):
        return state
    lock = authenticator.state_lock(auth_model["name"])
    await lock.acquire()
    try:
        user = authenticator.hub_user(auth_model["name"])
        if user is not None:
            existing = await user.get_auth_state()
        previous = (existing or {}).get("qcs") or {}
        running = previous.get("session_id") or None
        state["qcs"]["servers"] = previous.get("servers") or {}
        state["qcs"]["session_id"] = running
        state["qcs"]["session_started_at"] = previous.get("session_started_at") if running else None
    except BaseException:
        lock.release()
        raise
    authenticator.release_after_save(lock, user, state)
    return state


def _relogin_reason(state: dict[str, Any] | None) -> str:
    return ((state or {}).get("qcs") or {}).get("relogin_reason") or "no QCS tokens are stored for you; log in again"


def _refused_reason(state: dict[str, Any]) -> str | None:
    if state.get("refresh_token"):
        return None
    return (state.get("qcs") or {}).get(
        "relogin_reason"
    ) or "no refresh token; log in again when the access token expires"


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
    return bool(state.get("access_token") and expires and expires > time.time())


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


def _is_timeout(e: BaseException) -> bool:
    return isinstance(e, (asyncio.TimeoutError, TimeoutError)) or (
        isinstance(e, HTTPClientError) and e.code == 599 and "timeout" in str(e.message).lower()
    )


def _describe(e: BaseException) -> str:
    """A short description of a network error, never a response body (it could echo a token)."""
    if isinstance(e, HTTPClientError):
        return f"HTTP {e.code}" if e.code != 599 else f"no answer ({e.message})"
    return f"{type(e).__name__}: {e}"[:200]
