"""One version source: labextension/package.json, read by hatch-nodejs-version into the package metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

import qcs_jupyter
from qcs_jupyter.cli import main

PACKAGE_JSON = Path(__file__).resolve().parents[1] / "labextension" / "package.json"


def test_python_version_is_the_npm_version():
    npm = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["version"]
    assert Version(qcs_jupyter.__version__) == Version(npm)


def test_uninstalled_tree_reads_package_json():
    # As in a source checkout that was never installed: no metadata, so package.json itself.
    code = (
        "from importlib import metadata\n"
        "def missing(name): raise metadata.PackageNotFoundError(name)\n"
        "metadata.version = missing\n"
        "import qcs_jupyter; print(qcs_jupyter.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["version"]


def test_cli_prints_it(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.split()[-1] == qcs_jupyter.__version__
