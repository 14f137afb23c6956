"""The jupyter-server extension: keeps ``~/.qcs`` and serves its status to JupyterLab."""

from __future__ import annotations

from typing import ClassVar

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from ..qcs import REFRESH_TOKEN_WARNING_DAYS
from .gates import hold_starts
from .handlers import CheckHandler, RefreshHandler, RestartHandler, StatusHandler
from .hub_client import QCSHubClient
from .keeper import CredentialKeeper


class QCSJupyterApp(ExtensionApp):
    """QCS credentials for JupyterLab: writes and refreshes ``~/.qcs`` and serves ``/qcs-jupyter/...``.

    Under JupyterHub (with QCSAuthenticator) it fetches the user's credentials from the Hub as the server
    starts listening (kernels, terminals and the status wait for that first fetch, bounded), and again ahead
    of every access-token expiry (options: ``c.QCSHubClient``). Without a Hub it shows the status of the
    user's own ``~/.qcs``.
    """

    name = "qcs_jupyter"
    load_other_extensions = True
    classes: ClassVar[list] = [QCSHubClient]

    profile = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""QCS profile to show and write. Default: $QCS_PROFILE_NAME, else the profile the Hub names,
        else `default_profile_name` in settings.toml, else 'default'.""",
    )
    warning_days = Float(
        float(REFRESH_TOKEN_WARNING_DAYS),
        config=True,
        help="""Days before the 90-day refresh-token horizon at which the status turns to 'expiring'
        and problems start warning the user.""",
    )

    def initialize_settings(self) -> None:
        self.credentials = CredentialKeeper(profile=self.profile, warning_days=self.warning_days, parent=self)
        self.credentials.start()
        hold_starts(self.serverapp, self.credentials.hub)

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/qcs-jupyter/status", StatusHandler),
                (r"/qcs-jupyter/refresh", RefreshHandler),
                (r"/qcs-jupyter/restart", RestartHandler),
                (r"/qcs-jupyter/check", CheckHandler),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        hold_starts(serverapp, self.credentials.hub)  # a terminal manager loaded after this extension, if any
        self.credentials.start_background()

    async def stop_extension(self) -> None:
        self.credentials.hub.stop()
