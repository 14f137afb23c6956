"""The jupyter-server extension: keeps ``~/.qcs`` and serves its status to JupyterLab."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from .credentials import ServerCredentials
from .handlers import StatusHandler


class QCSJupyterApp(ExtensionApp):
    """QCS credentials for JupyterLab: writes and refreshes ``~/.qcs`` and serves ``/qcs-jupyter/status``."""

    name = "qcs_jupyter"
    load_other_extensions = True

    profile = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""QCS profile to show and write. Default: $QCS_PROFILE_NAME, else `default_profile_name`
        in settings.toml, else 'default'.""",
    )
    warning_days = Float(
        7.0,
        config=True,
        help="""Days before the 90-day refresh-token horizon at which the status turns to 'expiring'
        and problems start warning the user.""",
    )

    def initialize_settings(self) -> None:
        self.credentials = ServerCredentials(profile=self.profile, warning_days=self.warning_days)

    def initialize_handlers(self) -> None:
        self.handlers.extend([(r"/qcs-jupyter/status", StatusHandler)])
