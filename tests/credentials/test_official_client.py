"""The official QCS client (qcs-api-client-common) loads exactly what we write."""

from __future__ import annotations

import os

import pytest

from qcs_jupyter.credentials import AuthServer, CredentialStore, TokenSet
from qcs_jupyter.credentials.sdkcheck import check_with_sdk

from .test_store import USER_SECRETS, USER_SETTINGS


@pytest.mark.parametrize(
    ("profile", "auth_server", "user_files"),
    [
        pytest.param("default", None, False, id="fresh-default"),
        pytest.param(
            "lab", AuthServer("https://idp.example/oauth2/abc/", "client-1"), False, id="named-profile-custom-issuer"
        ),
        pytest.param("default", None, True, id="merged-into-user-files"),
    ],
)
def test_official_client_loads_what_we_write(qcs_dir, token_response, profile, auth_server, user_files):
    if user_files:
        qcs_dir.mkdir(mode=0o700)
        (qcs_dir / "settings.toml").write_text(USER_SETTINGS)
        (qcs_dir / "secrets.toml").write_text(USER_SECRETS)
    CredentialStore(profile=profile).install(TokenSet.from_response(token_response()), auth_server=auth_server)
    result = check_with_sdk(profile, env=dict(os.environ))
    assert result == {
        "available": True,
        "ok": True,
        "api_url": "https://api.qcs.rigetti.com",
        "grpc_api_url": "https://grpc.qcs.rigetti.com",
    }
    if user_files:  # the user's own profile still loads too
        assert check_with_sdk("prod", env=dict(os.environ))["api_url"] == "https://api.example"


def test_official_client_gets_valid_access_token_from_file(qcs_dir, token_response):
    """A valid JWT in the file is handed out by the client as is (no network needed)."""
    CredentialStore().install(TokenSet.from_response(token_response()))
    result = check_with_sdk("default", env=dict(os.environ), get_bearer_token=True)
    assert result["ok"], result
    assert result["bearer_token_obtained"] is True


def test_official_client_rejects_what_we_flag(qcs_dir, make_jwt):
    """The problems our status calls errors are the ones the official client really rejects."""
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "settings.toml").write_text(
        '[profiles.default]\nauth_server_name = "default"\ncredentials_name = "default"\n'
    )
    (qcs_dir / "secrets.toml").write_text(
        f'[credentials.default.token_payload]\naccess_token = "{make_jwt(3600)}"\nexpires_in = "3600"\n'
    )
    assert_rejected_field(check_with_sdk("default", env=dict(os.environ)), "token_payload.expires_in")
    (qcs_dir / "secrets.toml").write_text(
        f'[credentials.default.token_payload]\naccess_token = "{make_jwt(3600)}"\nupdated_at = 2026-01-01T00:00:00Z\n'
    )
    assert_rejected_field(check_with_sdk("default", env=dict(os.environ)), "token_payload.updated_at")


def assert_rejected_field(result: dict, field: str) -> None:
    """The client ran, loaded the file and refused it for ``field`` (not: was missing, or its process crashed)."""
    assert result["available"] is True, result
    assert result["ok"] is False, result
    assert result["error"].startswith("LoadError: "), result
    assert f'key "default.credentials.default.{field}"' in result["error"], result
