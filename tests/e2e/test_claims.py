"""Claims of the docs checked against the real parts: auth_state is encrypted in the Hub's database, and
`qcs-jupyter doctor --online` really asks the issuer (the local IdP) for a token and says what happened."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import tomlkit

from devstack.localidp import LocalIdP, free_port
from devstack.qcsapi import QCSAPI

from .conftest import spawn, stack

COMMAND = Path(sys.executable).with_name("qcs-jupyter")
CLIENT_ID = "qcs-public"
CALLBACK = "http://127.0.0.1:9/hub/oauth_callback"  # registered at the IdP; nothing needs to listen there


def token_values(data: object) -> Iterator[str]:
    """Every value under a key ending in ``token`` (access, refresh, id, session refresh), at any depth."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and str(key).endswith("token") and len(value) >= 16:
                yield value
            else:
                yield from token_values(value)
    elif isinstance(data, list):
        for item in data:
            yield from token_values(item)


def database_bytes(hub_dir: Path) -> bytes:
    """The sqlite database with its journal files, as they sit on disk."""
    files = sorted(hub_dir.glob("jupyterhub.sqlite*"))
    assert hub_dir / "jupyterhub.sqlite" in files
    return b"".join(p.read_bytes() for p in files)


def test_auth_state_is_encrypted_in_the_database(tmp_path):
    """Docs (Deploy): tokens live in encrypted auth_state; no token value is in jupyterhub.sqlite in plain text."""
    with stack(tmp_path, rotate=False, ttl=600) as hub:
        spawn(hub, "ada")
        state = hub.auth_state("ada")  # decrypted by the Hub for the test's admin service
        secrets = tomlkit.parse((hub.home("ada") / ".qcs" / "secrets.toml").read_text()).unwrap()
        payload = secrets["credentials"]["default"]["token_payload"]
        values = set(token_values(state)) | {payload["access_token"], payload["refresh_token"], payload["id_token"]}
        # The check means something only if the real tokens are among them.
        assert {state["access_token"], state["refresh_token"], hub.session_token("ada")} <= values
        assert payload["refresh_token"] == hub.session_token("ada") != state["refresh_token"]
        running = database_bytes(hub.workdir)
    at_rest = database_bytes(hub.workdir)  # after the Hub's shutdown writes
    with sqlite3.connect(f"file:{hub.workdir / 'jupyterhub.sqlite'}?mode=ro", uri=True) as db:
        (stored,) = db.execute("SELECT encrypted_auth_state FROM users WHERE name = 'ada'").fetchone()
    assert stored and len(stored) > 200, "no encrypted auth_state stored for ada"
    for value in values:
        for blob, when in ((running, "while the Hub ran"), (at_rest, "after it stopped")):
            for form in (value, json.dumps(value)[1:-1]):
                assert form.encode() not in blob, f"a token value is in jupyterhub.sqlite in plain text {when}"
    assert b"access_token" not in stored and b"refresh_token" not in stored


# --- qcs-jupyter doctor --online -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[LocalIdP]:
    with LocalIdP(
        tmp_path_factory.mktemp("idp"), https=True, clients=[{"client_id": CLIENT_ID, "redirect_uris": [CALLBACK]}]
    ) as idp:
        yield idp


def qcs_jupyter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    assert COMMAND.exists(), f"no {COMMAND.name} command beside {sys.executable}"
    return subprocess.run([str(COMMAND), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def qcs_api() -> Iterator[QCSAPI]:
    """What `doctor --online` asks after the refresh: a stand-in QCS API on loopback, never QCS's own."""
    with QCSAPI(None) as api:
        yield api


@pytest.fixture
def logged_in(idp, qcs_api, home, tmp_path, make_jwt):
    """~/.qcs holding a real login at the IdP, with its access token already expired: any bearer token the client
    hands out now must come from a refresh at the issuer. The profile's API is the stand-in's."""
    tokens = idp.login(CLIENT_ID, CALLBACK, "ada")
    tokens["access_token"] = make_jwt(-3600, aud="api://qcs")
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    env = {**os.environ, **idp.ca_env()}
    done = qcs_jupyter(
        env, "install", str(path), "--issuer", idp.issuer, "--client-id", CLIENT_ID, "--api-url", qcs_api.url
    )
    assert done.returncode == 0, done.stderr
    idp.reset_stats()
    return env, tokens, home / ".qcs" / "secrets.toml"


def file_access_token(secrets: Path) -> str:
    return tomlkit.parse(secrets.read_text()).unwrap()["credentials"]["default"]["token_payload"]["access_token"]


def assert_no_token(done: subprocess.CompletedProcess, tokens: dict) -> None:
    for key in ("access_token", "refresh_token", "id_token"):
        assert tokens[key] not in done.stdout + done.stderr, f"doctor printed the {key}"


def test_doctor_without_online_does_not_contact_the_issuer(idp, logged_in):
    env, tokens, secrets = logged_in
    done = qcs_jupyter(env, "doctor")
    assert "Official QCS client: loads profile 'default'" in done.stdout, done.stdout + done.stderr
    assert "obtained a bearer token" not in done.stdout
    assert idp.stats()["token_requests"] == {}
    assert file_access_token(secrets) == tokens["access_token"]
    assert_no_token(done, tokens)


def test_doctor_online_refreshes_at_the_issuer(idp, logged_in):
    env, tokens, secrets = logged_in
    done = qcs_jupyter(env, "doctor", "--online")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Official QCS client: loads profile 'default'" in done.stdout
    assert "the QCS client refreshed: it got a new access token from the issuer and wrote it" in done.stdout
    assert "Check with QCS" in done.stdout and "accepted" in done.stdout  # asked the stand-in, not QCS
    stats = idp.stats()
    assert (stats["refresh_ok"], stats["refresh_failed"]) == (1, 0), stats
    # The client wrote the issuer's new access token back: a JWT from the local IdP, not the expired one.
    fresh = file_access_token(secrets)
    assert fresh != tokens["access_token"]
    assert jwt.decode(fresh, options={"verify_signature": False})["iss"] == idp.issuer
    assert_no_token(done, tokens)
    assert fresh not in done.stdout + done.stderr


def test_doctor_online_reports_a_refused_refresh(idp, logged_in):
    env, tokens, secrets = logged_in
    text = secrets.read_text().replace(tokens["refresh_token"], "revoked-refresh-token-0123456789")
    secrets.write_text(text)
    done = qcs_jupyter(env, "doctor", "--online")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Official QCS client: FAILED" in done.stdout
    assert "400 Bad Request" in done.stdout and f"{idp.issuer}/v1/token" in done.stdout
    stats = idp.stats()
    assert (stats["refresh_ok"], stats["refresh_failed"]) == (0, 1), stats
    assert "revoked-refresh-token-0123456789" not in done.stdout + done.stderr
    assert_no_token(done, tokens)


def test_doctor_online_reports_an_unreachable_issuer(logged_in):
    env, tokens, secrets = logged_in
    # The same login, pointed at an issuer where nothing listens (the module's IdP keeps running for the others).
    issuer = f"https://127.0.0.1:{free_port()}/oauth2/default"
    settings = secrets.with_name("settings.toml")
    current = tomlkit.parse(settings.read_text()).unwrap()["auth_servers"]["default"]["issuer"]
    settings.write_text(settings.read_text().replace(current, issuer))
    done = qcs_jupyter(env, "doctor", "--online")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Official QCS client: FAILED" in done.stdout
    assert issuer in done.stdout  # names where it tried
    assert_no_token(done, tokens)
