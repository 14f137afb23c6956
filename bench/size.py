"""P5: size of the shipped labextension (every file under ``qcs_jupyter/labextension``), beside the installed
labextension of ``jupyter-resource-usage`` (a small, popular status-bar extension) for scale.

The reference wheel is downloaded once by ``scripts/setup.sh`` (``devstack/artifacts.py``), never while the bench
runs; without it the reference is left out and the figure still stands.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Any

from devstack import artifacts

from .common import REPO, Figure, Goal, Options

LABEXTENSION = REPO / "qcs_jupyter" / "labextension"
GOAL_KB = 60
KB = 1000  # the goal says KB: 1000 bytes (SI), not KiB
GOAL = Goal("<=", GOAL_KB)
REFERENCE = artifacts.REFERENCE


def tree_size(root: Path) -> dict[str, Any]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no files under {root.relative_to(REPO)}: build the labextension first")
    js = [p for p in files if p.suffix == ".js"]
    return {
        "bytes": sum(p.stat().st_size for p in files),
        "files": len(files),
        "js_bytes": sum(p.stat().st_size for p in js),
        "js_gzip_bytes": sum(len(gzip.compress(p.read_bytes(), 9)) for p in js),
        "largest": {
            str(p.relative_to(root)): p.stat().st_size for p in sorted(files, key=lambda p: -p.stat().st_size)[:5]
        },
    }


def reference_size() -> dict[str, Any]:
    """Bytes of the files the reference wheel installs under share/jupyter/labextensions/."""
    wheel_path = artifacts.reference_wheel()
    if wheel_path is None:
        return {"error": f"no {REFERENCE} wheel: run bash scripts/setup.sh (it downloads it once)"}
    with zipfile.ZipFile(wheel_path) as wheel:
        members = [i for i in wheel.infolist() if "/share/jupyter/labextensions/" in i.filename and not i.is_dir()]
        js = [i for i in members if i.filename.endswith(".js")]
        return {
            "wheel": wheel_path.name,
            "bytes": sum(i.file_size for i in members),
            "files": len(members),
            "js_bytes": sum(i.file_size for i in js),
            "js_gzip_bytes": sum(len(gzip.compress(wheel.read(i), 9)) for i in js),
        }


def run(opts: Options) -> Figure:
    ours = tree_size(LABEXTENSION)
    reference = reference_size()
    return Figure(
        id="P5",
        name="shipped labextension size (all files)",
        value=round(ours["bytes"] / KB, 1),
        unit="KB",
        goal=GOAL,
        details={
            "qcs_jupyter": ours,
            REFERENCE: reference,
            "ratio_to_reference": round(ours["bytes"] / reference["bytes"], 3) if reference.get("bytes") else None,
            "note": f"KB = {KB} bytes: the goal is {GOAL_KB * KB} bytes",
        },
    )
