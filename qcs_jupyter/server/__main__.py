"""``python -m qcs_jupyter.server --help-all``: the server extension's options with their help text."""

from .app import QCSJupyterApp

QCSJupyterApp.launch_instance()
