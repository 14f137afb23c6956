"""`qcs-jupyter install TOKEN_JSON --api-url URL` (docs: Use, The command line): the URL lands in the profile, the official
client loads it, a later install without the option keeps it, and other profiles keep theirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from qcs_jupyter.credentials.sdkcheck import check_with_sdk
from qcs_jupyter.qcs import QCS_API_URL, QCS_GRPC_API_URL

#: The console script pip installed beside this Python: the command the docs show.
COMMAND = Path(sys.executable).with_name("qcs-jupyter")


def qcs_jupyter(*args: str) -> subprocess.CompletedProcess:
    assert COMMAND.exists(), f"no {COMMAND.name} command beside {sys.executable}"
    return subprocess.run([str(COMMAND), *args], capture_output=True, text=True, timeout=120, check=False)


def profile(home: Path, name: str) -> dict:
    return tomlkit.parse((home / ".qcs" / "settings.toml").read_text()).unwrap()["profiles"][name]


@pytest.fixture
def tokens_file(tmp_path, token_response) -> str:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(token_response()))
    return str(path)


def test_install_api_url_is_written_and_kept(home, tokens_file):
    url = "https://api.staging.example"
    done = qcs_jupyter("install", tokens_file, "--api-url", url)
    assert done.returncode == 0, done.stderr
    assert profile(home, "default")["api_url"] == url
    assert profile(home, "default")["grpc_api_url"] == QCS_GRPC_API_URL  # only the option's own key
    sdk = check_with_sdk("default", env=dict(os.environ))
    assert (sdk["available"], sdk["ok"], sdk.get("api_url")) == (True, True, url), sdk

    # Without --api-url a later install keeps the URL ("default: keep").
    done = qcs_jupyter("install", tokens_file)
    assert done.returncode == 0, done.stderr
    assert profile(home, "default")["api_url"] == url

    # Another profile gets its own URL; the first keeps its one.
    other = "https://api.other.example"
    done = qcs_jupyter("install", tokens_file, "--profile", "lab", "--api-url", other)
    assert done.returncode == 0, done.stderr
    assert (profile(home, "lab")["api_url"], profile(home, "default")["api_url"]) == (other, url)
    assert check_with_sdk("lab", env=dict(os.environ))["api_url"] == other


def test_install_without_api_url_writes_qcs_default(home, tokens_file):
    done = qcs_jupyter("install", tokens_file)
    assert done.returncode == 0, done.stderr
    assert profile(home, "default")["api_url"] == QCS_API_URL == "https://api.qcs.rigetti.com"


@pytest.mark.parametrize("bad", ["not a url", "ftp://api.example", "api.qcs.rigetti.com"])
def test_install_refuses_an_api_url_that_is_not_http(home, tokens_file, bad):
    done = qcs_jupyter("install", tokens_file, "--api-url", bad)
    assert done.returncode in (1, 2), done.stdout  # refused, with a message naming the option
    assert "api-url" in done.stderr or "api_url" in done.stderr
    assert not (home / ".qcs" / "settings.toml").exists()
