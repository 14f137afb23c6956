"""The jupyter-server extension: keeps ``~/.qcs`` and serves its status to JupyterLab."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from .credentials import ServerCredentials
from .handlers import RefreshHandler, RestartHandler, StatusHandler


class QCSJupyterApp(ExtensionApp):
    """QCS credentials for JupyterLab: writes and refreshes ``~/.qcs`` and serves ``/qcs-jupyter/...``.

    Under JupyterHub (with QCSAuthenticator) it fetches the user's credentials from the Hub before the
    server starts listening, and again ahead of every access-token expiry. Without a Hub it shows the
    status of the user's own ``~/.qcs``.
    """

    name = "qcs_jupyter"
    load_other_extensions = True

    profile = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""QCS profile to show and write. Default: $QCS_PROFILE_NAME, else the profile the Hub names,
        else `default_profile_name` in settings.toml, else 'default'.""",
    )
    warning_days = Float(
        7.0,
        config=True,
        help="""Days before the 90-day refresh-token horizon at which the status turns to 'expiring'
        and problems start warning the user.""",
    )
    sync_margin = Float(
        120.0,
        config=True,
        help="""Fetch fresh credentials from the Hub this many seconds before the access token expires
        (capped at a third of the token's lifetime).""",
    )
    sync_min_interval = Float(5.0, config=True, help="Never fetch from the Hub more often than this (seconds).")
    sync_max_interval = Float(1800.0, config=True, help="Fetch from the Hub at least this often (seconds).")
    hub_timeout = Float(10.0, config=True, help="Seconds to wait for each JupyterHub API call.")

    def initialize_settings(self) -> None:
        self.credentials = ServerCredentials(
            profile=self.profile,
            warning_days=self.warning_days,
            log=self.log,
            hub_options={
                "margin": self.sync_margin,
                "min_interval": self.sync_min_interval,
                "max_interval": self.sync_max_interval,
                "timeout": self.hub_timeout,
            },
        )
        self.credentials.start()

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/qcs-jupyter/status", StatusHandler),
                (r"/qcs-jupyter/refresh", RefreshHandler),
                (r"/qcs-jupyter/restart", RestartHandler),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        self.credentials.start_background()

    async def stop_extension(self) -> None:
        self.credentials.hub.stop()
