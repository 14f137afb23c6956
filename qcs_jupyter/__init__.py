"""qcs-jupyter: Rigetti QCS credentials for every JupyterHub user, and their health in JupyterLab."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path


def _version() -> str:
    # The one version source is labextension/package.json; the build copies it into the metadata.
    try:
        return metadata.version("qcs-jupyter")
    except metadata.PackageNotFoundError:
        pass
    # A source tree that was never installed: read package.json itself.
    here = Path(__file__).resolve().parent
    for package_json in (here / "labextension" / "package.json", here.parent / "labextension" / "package.json"):
        try:
            return str(json.loads(package_json.read_text(encoding="utf-8"))["version"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "0+unknown"


def __getattr__(name: str) -> str:
    # Computed on first use: importing the package (the server extension, the CLI) reads no metadata.
    if name == "__version__":
        value = _version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict]:
    from .server import QCSJupyterApp

    return [{"module": "qcs_jupyter", "app": QCSJupyterApp}]


def _jupyter_labextension_paths() -> list[dict]:
    return [{"src": "labextension", "dest": "qcs-jupyter"}]
