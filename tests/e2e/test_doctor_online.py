"""``qcs-jupyter doctor --online`` with an expired access token: the official QCS client (qcs-api-client-common 0.27)
refreshes it at a real https IdP, the doctor says so, asks the stand-in QCS API with the new token (which checks it
at the IdP) and prints the status after the refresh."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from devstack.localidp import LocalIdP
from devstack.qcsapi import QCSAPI
from qcs_jupyter.credentials import AuthServer, CredentialStore, TokenSet

CLIENT, REDIRECT = "qcs-doctor", "http://127.0.0.1:9/callback"  # nothing needs to listen at the redirect


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    api_client = {"client_id": "qcs-api", "client_secret": secrets.token_urlsafe(24), "resource_server": True}
    idp = LocalIdP(
        tmp_path_factory.mktemp("idp"),
        https=True,
        clients=[{"client_id": CLIENT, "redirect_uris": [REDIRECT]}, api_client],
    )
    with idp, QCSAPI(idp, api_client["client_id"], api_client["client_secret"]) as api:
        yield idp, api


def test_doctor_online_refreshes_an_expired_token_says_so_and_checks_the_new_one(home, make_jwt, stack):
    idp, api = stack
    response = idp.login(CLIENT, REDIRECT, "ada")
    expired = make_jwt(-600)  # the client counts a token as valid until 60 s after exp
    tokens = TokenSet.from_response({**response, "access_token": expired})
    CredentialStore().install(tokens, auth_server=AuthServer(idp.issuer, CLIENT), api_url=api.url)
    proc = subprocess.run(
        [sys.executable, "-m", "qcs_jupyter.cli", "doctor", "--online"],
        env={**os.environ, **idp.ca_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    before, after = out.split("Status after these steps:")
    assert "Access token   EXPIRED" in before
    assert "the QCS client refreshed: it got a new access token from the issuer and wrote it to secrets.toml." in out
    assert "accepted: QCS accepted your credentials: you can see 2 quantum processors." in out
    assert "Access token   valid" in after and "ok (usable)" in after
    snap = CredentialStore().read()
    new = snap.token_payload["access_token"]
    assert new != expired
    (call,) = api.calls  # QCS was asked once, with the refreshed token, and accepted it
    assert call.accepted and call.subject == "ada"
    for value in (new, expired, response["refresh_token"]):
        assert value not in out + proc.stderr
