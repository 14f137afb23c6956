"""Server side: the jupyter-server extension that runs in every user's server."""

from .app import QCSJupyterApp

__all__ = ["QCSJupyterApp"]
