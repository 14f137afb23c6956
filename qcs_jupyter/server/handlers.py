"""REST handlers under ``{base_url}qcs-jupyter/``: the status the JupyterLab panel shows."""

from __future__ import annotations

import json

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

AUTH_RESOURCE = "qcs"


class QCSHandler(ExtensionHandlerMixin, APIHandler):
    """Base for our handlers: authenticated, authorized against the ``qcs`` resource, JSON out."""

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
