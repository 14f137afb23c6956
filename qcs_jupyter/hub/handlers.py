"""The Hub API routes of qcs-jupyter.

- ``/hub/api/qcs/credentials/{user}`` and ``/hub/api/qcs/stop/{user}``: for the user's running servers only. The
  caller is recognized by the API token JupyterHub issued to that server (its hash is recorded at spawn in the
  encrypted auth_state); a browser session, a personal or admin token, a service, another user's server or a
  stopped server all get the same 403, whether the user exists or not. No scope or role is involved.
- ``/hub/api/qcs/issuer/...``: a minimal OpenID issuer for QCS clients in kernels. Their refresh grant carries
  the user's session refresh token (good only while one of the user's servers runs) and is answered with the
  Hub's fresh access token; the real refresh token never leaves the Hub.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.orm import APIToken
from tornado import web

NOT_YOURS = "Only the user's own running servers can use this route."


class _QCSAPIHandler(APIHandler):
    def write_json(self, data: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))


class _ServerOnlyHandler(_QCSAPIHandler):
    """Answers only a token JupyterHub issued to one of the named user's running servers."""

    async def calling_server(self, user_name: str) -> tuple[Any, dict[str, Any] | None, str]:
        token = self.get_auth_token()
        user = self.find_user(user_name) if token else None
        if user is None or APIToken.find(self.db, token) is None:
            raise web.HTTPError(403, NOT_YOURS)
        state = await user.get_auth_state()
        server_name = self.authenticator.calling_server(user, state, token)
        if server_name is None:
            raise web.HTTPError(403, NOT_YOURS)
        return user, state, server_name


class QCSCredentialsHandler(_ServerOnlyHandler):
    """``GET|POST /hub/api/qcs/credentials/{user}``: the user's credentials for ``~/.qcs``, refreshed if due.

    ``POST`` forces a refresh ("Refresh now"). 401 when the user has no usable QCS login (logged out, or the IdP
    refused the refresh token and the access token expired): the user must log in again.
    """

    async def _handoff(self, user_name: str, force: bool) -> None:
        started = time.monotonic()
        authenticator = self.authenticator
        try:
            user, _, server_name = await self.calling_server(user_name)
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
        payload = authenticator.handoff_payload(result)
        await authenticator.record_pull(user, server_name)
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
        user, _, server_name = await self.calling_server(user_name)
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

    The refresh token is the user's session token; the answer repeats it (pyQuil's core requires a
    ``refresh_token`` in the answer). Every refusal is ``invalid_grant`` and says nothing about the user.
    """

    def _oauth_error(self, error: str, description: str, status: int = 400) -> None:
        self.write_json({"error": error, "error_description": description}, status=status)

    async def post(self) -> None:
        authenticator = self.authenticator
        if self.get_body_argument("grant_type", "") != "refresh_token":
            authenticator.note_client_refresh("unsupported")
            self._oauth_error("unsupported_grant_type", "only the refresh_token grant is served here")
            return
        token = self.get_body_argument("refresh_token", "")
        name = authenticator.session_token_user(token) if token else None
        user = self.find_user(name) if name else None
        state = await user.get_auth_state() if user is not None else None
        if user is None or not authenticator.session_token_valid(user, state, token):
            authenticator.note_client_refresh("refused")
            self._oauth_error(
                "invalid_grant", "this refresh token is not valid (your JupyterHub server stopped or you logged out)"
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
            "refresh_token": qcs.get("session_refresh_token") or token,
        }
        scope = fresh.get("scope")
        if scope:
            answer["scope"] = " ".join(scope) if isinstance(scope, list) else str(scope)
        authenticator.note_client_refresh("ok")
        self.write_json(answer)
