"""The Hub API route a user's server calls to fetch that user's fresh QCS credentials."""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from ..handoff import CREDENTIALS_SCOPE


class QCSCredentialsHandler(APIHandler):
    """``GET|POST /hub/api/qcs/credentials/{user}``: that user's credentials, refreshed if due.

    Guarded by ``custom:qcs:credentials!user``: only tokens of the user themselves that were granted the
    scope (their servers' tokens) get through; another user gets 403/404. ``POST`` forces a refresh.
    """

    def _write_payload(self, data: dict) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    async def _handoff(self, user_name: str, force: bool) -> None:
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        result = await self.authenticator.ensure_fresh(user, force=force)
        if result.auth_state is None:
            raise web.HTTPError(404, "No QCS credentials are stored for this user: log in to JupyterHub again.")
        if result.relogin and not self.authenticator.access_token_valid(result.auth_state):
            raise web.HTTPError(401, "The QCS login has expired: log out of JupyterHub and log in again.")
        self._write_payload(self.authenticator.handoff_payload(result.auth_state, result.error))

    @needs_scope(CREDENTIALS_SCOPE)
    async def get(self, user_name: str) -> None:
        await self._handoff(user_name, force=False)

    @needs_scope(CREDENTIALS_SCOPE)
    async def post(self, user_name: str) -> None:
        await self._handoff(user_name, force=True)
