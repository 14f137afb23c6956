"""qcs-jupyter: Rigetti QCS credentials for every JupyterHub user, and their health in JupyterLab."""

from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict]:
    from .server import QCSJupyterApp

    return [{"module": "qcs_jupyter", "app": QCSJupyterApp}]


def _jupyter_labextension_paths() -> list[dict]:
    return [{"src": "labextension", "dest": "qcs-jupyter"}]
