"""QCSAuthenticator on its own: defaults, discovery, refresh timing, request parameters."""

from __future__ import annotations

import logging
import time

import pytest

from demo.localidp import LocalIdP, ensure_node_modules, free_port
from qcs_jupyter.credentials.store import QCS_ISSUER
from qcs_jupyter.hub import QCSAuthenticator


def test_qcs_defaults():
    a = QCSAuthenticator()
    assert a.issuer == QCS_ISSUER
    assert a.scope == ["openid", "offline_access", "profile", "email"]
    assert a.enable_auth_state and a.enable_pkce and a.refresh_pre_spawn
    assert a.username_claim == "preferred_username" and a.userdata_from_id_token is False
    assert a.credentials_mode == "hub"


def test_issuer_trailing_slash_removed():
    assert QCSAuthenticator(issuer="https://idp.example/oauth2/x/").issuer == "https://idp.example/oauth2/x"


def test_endpoints_from_discovery_of_a_real_issuer(tmp_path):
    ensure_node_modules()
    with LocalIdP(tmp_path, https=False, clients=[{"client_id": "c", "redirect_uris": ["http://127.0.0.1/cb"]}]) as idp:
        a = QCSAuthenticator(issuer=idp.issuer)
        assert (a.authorize_url, a.token_url, a.userdata_url) == (idp.authorize_url, idp.token_url, idp.userinfo_url)


def test_discovery_failure_falls_back_to_okta_layout(caplog):
    issuer = f"http://127.0.0.1:{free_port()}/oauth2/default"
    with caplog.at_level(logging.WARNING):
        a = QCSAuthenticator(issuer=issuer, discovery_timeout=2)
        assert a.token_url == f"{issuer}/v1/token" and a.authorize_url == f"{issuer}/v1/authorize"
    assert "could not read" in caplog.text


def test_explicit_endpoints_win():
    a = QCSAuthenticator(
        token_url="https://t.example/token", authorize_url="https://t.example/a", userdata_url="https://t.example/u"
    )
    assert a.token_url == "https://t.example/token"


@pytest.mark.parametrize(
    ("lifetime", "left", "due"),
    [
        pytest.param(3600, 3600, False, id="fresh"),
        pytest.param(3600, 299, True, id="inside-5-min-margin"),
        pytest.param(3600, -5, True, id="expired"),
        pytest.param(300, 200, False, id="short-token-margin-capped-at-half"),
        pytest.param(300, 140, True, id="short-token-past-half"),
    ],
)
def test_needs_refresh(lifetime, left, due):
    now = time.time()
    state = {
        "access_token": "x",
        "qcs": {"access_token_obtained_at": now + left - lifetime, "access_token_expires_at": now + left},
    }
    assert QCSAuthenticator().needs_refresh(state, now) is due


@pytest.mark.parametrize(
    ("secret", "sent"), [pytest.param("", False, id="public-client"), pytest.param("s", True, id="confidential-client")]
)
def test_refresh_params_send_a_secret_only_when_there_is_one(secret, sent):
    params = QCSAuthenticator(client_id="c", client_secret=secret).build_refresh_token_request_params("r")
    assert params["client_id"] == "c" and params["grant_type"] == "refresh_token"
    assert ("client_secret" in params) is sent
