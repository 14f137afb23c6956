"""Shared fixtures: a throwaway home with ~/.qcs, and real RS256 JWTs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

pytest_plugins = ["pytest_jupyter.jupyter_server"]

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
