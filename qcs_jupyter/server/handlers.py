"""REST handlers under ``{base_url}qcs-jupyter/``: the status the JupyterLab panel shows, refresh, restart, and
"Check with QCS"."""

from __future__ import annotations

import asyncio
import json
import math

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from .keeper import CheckTooSoon

AUTH_RESOURCE = "qcs"
#: Let the 202 reach the browser before the Hub stops this server.
RESTART_DELAY_SECONDS = 0.5


class QCSHandler(ExtensionHandlerMixin, APIHandler):
    """Base for our handlers: authenticated, authorized against the ``qcs`` resource, JSON out.

    POSTs are XSRF-checked by jupyter-server's APIHandler (JupyterLab sends the header).
    """

    auth_resource = AUTH_RESOURCE

    @property
    def credentials(self):
        return self.extensionapp.credentials

    @property
    def is_owner(self) -> bool:
        """Whether the caller owns this server. JupyterHub lets users it is shared with (``access:servers``) in
        too, and its authorizer ignores the action; refresh, restart and the owner's identity are the owner's."""
        hub_user = getattr(self.current_user, "hub_user", None)
        if hub_user is None:  # a plain jupyter-server: whoever holds its token or password owns it
            return True
        return hub_user.get("kind", "user") == "user" and hub_user.get("name") == self.credentials.hub.user

    def require_owner(self) -> None:
        if not self.is_owner:
            raise tornado.web.HTTPError(403, "Only the owner of this server can do that.")

    def write_json(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))


class StatusHandler(QCSHandler):
    """``GET qcs-jupyter/status``: the token status (never a token value) plus what the Hub link offers."""

    # An open panel polls this; it must not keep an idle server from being culled (like /api/status).
    _track_activity = False

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await self.credentials.status(owner=self.is_owner))


class RefreshHandler(QCSHandler):
    """``POST qcs-jupyter/refresh``: pull fresh credentials from the Hub now (the Hub refreshes at the IdP)."""

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        self.require_owner()
        hub = self.credentials.hub
        if not hub.available:
            raise tornado.web.HTTPError(409, "Not running under JupyterHub: there is no Hub to refresh from.")
        await hub.pull(force=True)
        self.write_json(await self.credentials.status())


class RestartHandler(QCSHandler):
    """``POST qcs-jupyter/restart``: answer 202 with the URL that starts the server again, then stop via the Hub."""

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        self.require_owner()
        hub = self.credentials.hub
        if not hub.available or not hub.spawn_url:
            raise tornado.web.HTTPError(409, "Not running under JupyterHub: restart your server yourself.")
        self.write_json({"spawn_url": hub.spawn_url}, status=202)
        asyncio.get_running_loop().call_later(RESTART_DELAY_SECONDS, hub.stop_server)


class CheckHandler(QCSHandler):
    """``POST qcs-jupyter/check``: ask QCS whether it accepts the current access token (one page of the quantum
    processors the user can see) and say how it answered (``QCSCheckResult``). Never a token in the answer; at
    most once per few seconds (``429`` with ``Retry-After`` in between); the owner's only."""

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        self.require_owner()
        try:
            result = await self.credentials.check_with_qcs()
        except CheckTooSoon as e:
            self.set_header("Retry-After", str(math.ceil(e.retry_after)))
            self.write_json({"message": str(e), "retry_after": round(e.retry_after, 1)}, status=429)
            return
        self.write_json(result)
