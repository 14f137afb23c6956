"""Shared fixtures: a throwaway home with ~/.qcs, and real RS256 JWTs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests import netguard

pytest_plugins = ["pytest_jupyter.jupyter_server"]


# --- nothing beyond loopback -------------------------------------------------------------------------------------
# This process refuses (and records) any connection or name lookup outside loopback; so does every Python process
# the tests start (Hub, servers, kernels), through a sitecustomize on PYTHONPATH that logs to one file.
_GUARD_DIR = Path(tempfile.mkdtemp(prefix="qcs-jupyter-netguard-"))
_GUARD_LOG = _GUARD_DIR / "refused.log"
_GUARD_LOG.touch()
_GUARD_DIR.chmod(0o755)  # servers of real Unix users (tests/e2e/test_unix_users.py) read it too
_GUARD_LOG.chmod(0o666)
(_GUARD_DIR / "sitecustomize.py").write_text(netguard.sitecustomize_source(str(_GUARD_LOG)))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_GUARD_DIR), os.environ.get("PYTHONPATH")]))
netguard.install()


def _refusals() -> list[str]:
    logged = _GUARD_LOG.read_text(errors="replace").splitlines() if _GUARD_LOG.exists() else []
    return [*netguard.VIOLATIONS, *logged]


@pytest.fixture(autouse=True)
def _only_loopback():
    """Fail the test during which any process tried to reach beyond loopback."""
    before = len(_refusals())
    yield
    new = _refusals()[before:]
    if new:
        pytest.fail("reached for an address beyond loopback:\n" + "\n".join(new[:20]), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    """Refusals outside any test (module fixtures, processes that outlived their test) fail the run too."""
    refused = _refusals()
    if refused:
        print("\nREFUSED: addresses beyond loopback were tried:\n" + "\n".join(refused[:50]))
        if session.exitstatus == 0:
            session.exitstatus = 1
    shutil.rmtree(_GUARD_DIR, ignore_errors=True)


QCS_ENV = ("QCS_SETTINGS_FILE_PATH", "QCS_SECRETS_FILE_PATH", "QCS_PROFILE_NAME", "QCS_SECRETS_READ_ONLY")


@pytest.fixture(scope="session")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def make_jwt(signing_key):
    """Build an RS256 JWT like QCS issues; ``exp_in`` seconds from now (None: no exp claim)."""

    def make(exp_in: float | None = 3600, **claims) -> str:
        now = int(time.time())
        body = {"sub": "ada", "iat": now, **claims}
        if exp_in is not None:
            body["exp"] = int(now + exp_in)
        return jwt.encode(body, signing_key, algorithm="RS256")

    return make


@pytest.fixture
def token_response(make_jwt):
    """An OAuth token response as the QCS tokens page offers it."""

    def make(exp_in: float = 3600, refresh: str | None = "refresh-token-value-1", **extra) -> dict:
        data = {
            "access_token": make_jwt(exp_in),
            "id_token": make_jwt(exp_in, name="Ada Lovelace", email="ada@example.org"),
            "token_type": "Bearer",
            "scope": "openid offline_access profile email",
            "expires_in": int(exp_in),
        }
        if refresh:
            data["refresh_token"] = refresh
        data.update(extra)
        return data

    return make


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh HOME for the test, with every QCS_* variable cleared."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in QCS_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def qcs_dir(home) -> Path:
    return home / ".qcs"


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path
