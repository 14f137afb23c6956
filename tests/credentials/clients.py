"""Load the files with pyQuil 4.22's credential core (qcs-sdk-python 0.21, core 0.12.8) in its own venv.

``scripts/setup.sh`` builds ``.venv-clients/pyquil``; where it is missing the callers skip. The official client
0.27 is checked with ``qcs_jupyter.credentials.sdkcheck`` in the test environment itself.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

PYQUIL_PYTHON = Path(__file__).resolve().parents[2] / ".venv-clients" / "pyquil" / "bin" / "python"

# QCSClient.load(profile) raises when the files do not load (without a profile it silently uses defaults).
_CHILD = r"""
import json, os, sys
try:
    from qcs_sdk.client import QCSClient
    QCSClient.load(sys.argv[1])
    out = {"ok": True}
except BaseException as e:
    out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
sys.stdout.write(json.dumps(out) + "\n"); sys.stdout.flush(); os._exit(0)
"""


def load_with_pyquil(profile: str, env: Mapping[str, str]) -> dict:
    if not PYQUIL_PYTHON.exists():
        pytest.skip("pyQuil's client venv is missing (scripts/setup.sh builds .venv-clients/pyquil)")
    proc = subprocess.run(
        [str(PYQUIL_PYTHON), "-c", _CHILD, profile], env=dict(env), capture_output=True, text=True, timeout=120
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stderr[-2000:]
    return json.loads(lines[-1])
