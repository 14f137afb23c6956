"""Every option an admin sets is listed with its help text where the docs say (reference/configuration.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            [sys.executable, "-m", "jupyterhub", "--help-all"],
            ["--QCSAuthenticator.client_issuer_url", "--QCSAuthenticator.refresh_backoff_initial", "IdP outage"],
            id="jupyterhub",
        ),
        pytest.param(
            [sys.executable, "-m", "qcs_jupyter.server", "--help-all"],
            ["--QCSJupyterApp.warning_days", "--QCSHubClient.sync_margin", "$JUPYTERHUB_API_URL"],
            id="server-extension",
        ),
    ],
)
def test_help_all_lists_our_options(command, expected):
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    for needle in expected:
        assert needle in text, needle
