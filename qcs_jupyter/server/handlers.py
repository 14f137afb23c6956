"""REST handlers under ``{base_url}qcs-jupyter/``: the status the JupyterLab panel shows, refresh, restart."""

from __future__ import annotations

import asyncio
import json

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

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

    def write_json(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))


class StatusHandler(QCSHandler):
    """``GET qcs-jupyter/status``: the token status (never a token value) plus what the Hub link offers."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await self.credentials.status())


class RefreshHandler(QCSHandler):
    """``POST qcs-jupyter/refresh``: pull fresh credentials from the Hub now (the Hub refreshes at the IdP)."""

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
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
        hub = self.credentials.hub
        if not hub.can_stop:
            raise tornado.web.HTTPError(409, hub.info()["reason"] or "Restart is not available here.")
        self.write_json({"spawn_url": hub.spawn_url}, status=202)
        asyncio.get_running_loop().call_later(RESTART_DELAY_SECONDS, hub.stop_server)
