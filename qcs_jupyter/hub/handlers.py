"""The Hub API routes of qcs-jupyter.

- ``/hub/api/qcs/credentials/{user}`` and ``/hub/api/qcs/stop/{user}``: for the user's running servers only. The
  caller is recognized by the API token JupyterHub holds for that server (``binding``); a browser session, a
  personal or admin token, a service, another user's server or a stopped server all get the same 403, whether
  the user exists or not. No scope or role is involved.
- ``/hub/api/qcs/issuer/...``: a minimal OpenID issuer for QCS clients in kernels. Their refresh grant carries
  the user's session refresh token (``session``: signed, rotating, bounded in time, dead when the session ends)
  and is answered with the Hub's fresh access token; the real refresh token never leaves the Hub.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from . import binding

NOT_YOURS = "Only the user's own running servers can use this route."


class _QCSAPIHandler(APIHandler):
    def write_json(self, data: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))


class _ServerOnlyHandler(_QCSAPIHandler):
    """Answers only a token JupyterHub issued to one of the named user's running servers."""

    def calling_server(self, user_name: str) -> tuple[Any, str]:
        token = self.get_auth_token()
        user = self.find_user(user_name) if token else None
        server_name = binding.calling_server(self.db, user, token) if user is not None else None
        if server_name is None:
            raise web.HTTPError(403, NOT_YOURS)
        return user, server_name


class QCSCredentialsHandler(_ServerOnlyHandler):
    """``GET|POST /hub/api/qcs/credentials/{user}``: the user's credentials for ``~/.qcs``, refreshed if due.

    ``POST`` forces a refresh ("Refresh now"). 401 when the user has no usable QCS login (logged out, or the IdP
    refused the refresh token and the access token expired): the user must log in again.
    """

    async def _handoff(self, user_name: str, force: bool) -> None:
        started = time.monotonic()
        authenticator = self.authenticator
        try:
            user, server_name = self.calling_server(user_name)
        except web.HTTPError:
            authenticator.note_handoff("refused", started)  # not one of the user's running servers
            raise
        result = await authenticator.ensure_fresh(user, force=force)
        if result.auth_state is None or not result.auth_state.get("access_token"):
            authenticator.note_handoff("relogin", started)
            raise web.HTTPError(401, f"No QCS login: {result.error or 'log in again'}.")
        if result.relogin and not authenticator.access_token_valid(result.auth_state):
            authenticator.note_handoff("relogin", started)
            raise web.HTTPError(401, f"The QCS login has expired: {result.error or 'log in again'}.")
        noted = await authenticator.note_pull(user, server_name, result.auth_state)
        result.auth_state = noted or result.auth_state
        payload = authenticator.handoff_payload(user.name, result)
        authenticator.note_handoff("ok", started)
        self.write_json(payload)

    async def get(self, user_name: str) -> None:
        await self._handoff(user_name, force=False)

    async def post(self, user_name: str) -> None:
        await self._handoff(user_name, force=True)


class QCSStopHandler(_ServerOnlyHandler):
    """``POST /hub/api/qcs/stop/{user}``: stop the calling server ("Restart server to refresh").

    A server can only stop itself this way, so server tokens need no ``delete:servers`` scope.
    """

    async def post(self, user_name: str) -> None:
        user, server_name = self.calling_server(user_name)
        spawner = user.spawners[server_name]
        if spawner.pending:
            raise web.HTTPError(409, f"The server is busy ({spawner.pending}); try again in a moment.")
        await self.stop_single_user(user, server_name)
        self.write_json({"stopping": server_name}, status=202)


class _IssuerHandler(_QCSAPIHandler):
    """No cookie or Hub token is involved: the credential is the refresh token in the form body."""

    def check_xsrf_cookie(self) -> None:
        return None


class QCSIssuerDiscoveryHandler(_IssuerHandler):
    """``GET {issuer}/.well-known/openid-configuration``: what qcs-sdk-python reads before it refreshes."""

    async def get(self) -> None:
        authenticator = self.authenticator
        issuer = authenticator.issuer_for_clients()
        try:
            upstream = await authenticator.discover()
        except Exception:
            upstream = {}
        self.write_json(
            {
                "issuer": issuer,
                "token_endpoint": f"{issuer}/v1/token",
                # Not served here: QCS clients only refresh. The real issuer's endpoints keep the document valid.
                "authorization_endpoint": upstream.get("authorization_endpoint")
                or f"{authenticator.issuer}/v1/authorize",
                "jwks_uri": upstream.get("jwks_uri") or f"{authenticator.issuer}/v1/keys",
                "grant_types_supported": ["refresh_token"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"],
            }
        )


class QCSIssuerTokenHandler(_IssuerHandler):
    """``POST {issuer}/v1/token`` with ``grant_type=refresh_token``: the Hub's fresh access token.

    The refresh token is the user's session token; the answer carries the session's newest one (pyQuil's core
    requires a ``refresh_token`` in the answer). Every refusal is ``400 invalid_grant`` and says nothing about the
    user: a malformed or forged token is refused by its format and signature before any lookup, so unknown users
    and wrong tokens cost the same. A client with too many failures in a minute gets ``429`` with
    ``Retry-After`` for further failures; a valid session token is always answered.
    """

    def _oauth_error(self, error: str, description: str, status: int = 400) -> None:
        self.write_json({"error": error, "error_description": description}, status=status)

    def _form_value(self, name: str) -> str | None:
        """One form field as text, or None when absent, repeated or not valid UTF-8 (never an exception)."""
        values = self.request.body_arguments.get(name) or []
        if len(values) != 1:
            return None
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _refuse(self, outcome: str, description: str, error: str = "invalid_grant") -> None:
        authenticator = self.authenticator
        client = self.request.remote_ip or "unknown"
        wait = authenticator.issuer_limiter.retry_after(client)
        authenticator.issuer_limiter.failed(client)
        authenticator.note_client_refresh(outcome)
        if wait > 0:
            self.set_header("Retry-After", str(max(1, round(wait))))
            self._oauth_error("slow_down", "too many failed refresh attempts; try again later", status=429)
            return
        self._oauth_error(error, description)

    async def post(self) -> None:
        authenticator = self.authenticator
        if self._form_value("grant_type") != "refresh_token":
            self._refuse("unsupported", "only the refresh_token grant is served here", "unsupported_grant_type")
            return
        tokens = authenticator.session_tokens
        claim = tokens.parse(self._form_value("refresh_token"))
        user = self.find_user(claim.user) if claim is not None else None
        state = await user.get_auth_state() if user is not None else None
        if (
            user is None
            or not tokens.live(claim, (state or {}).get("qcs"))
            or not any(s.active for s in user.spawners.values())
        ):
            self._refuse(
                "refused",
                "this refresh token is not valid (it expired, your JupyterHub server stopped, or you logged out)",
            )
            return
        result = await authenticator.ensure_fresh(user)
        fresh = result.auth_state or {}
        if not fresh.get("access_token") or not authenticator.access_token_valid(fresh):
            authenticator.note_client_refresh("relogin")
            self._oauth_error("invalid_grant", f"the QCS login has expired: {result.error or 'log in again'}")
            return
        qcs = fresh.get("qcs") or {}
        answer: dict[str, Any] = {
            "access_token": fresh["access_token"],
            "token_type": "Bearer",
            "expires_in": max(0, int((qcs.get("access_token_expires_at") or time.time()) - time.time())),
            "refresh_token": authenticator.session_token(user.name, fresh) or self._form_value("refresh_token"),
        }
        scope = fresh.get("scope")
        if scope:
            answer["scope"] = " ".join(scope) if isinstance(scope, list) else str(scope)
        authenticator.note_client_refresh("ok")
        self.write_json(answer)
