"""``qcs-jupyter doctor --online``: it says what the QCS client did (refreshed or not), asks QCS (the stand-in QCS
API), and prints the status after both. The refresh itself, against a real IdP: tests/e2e/test_doctor_online.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devstack.qcsapi import QCSAPI
from qcs_jupyter.credentials import CredentialStore, TokenSet


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qcs_jupyter.cli", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def api():
    with QCSAPI(None, processors=("Ankaa-3",)) as api:
        yield api


@pytest.mark.parametrize(
    ("answer", "code", "words"),
    [
        pytest.param(None, 0, "accepted: QCS accepted your credentials: you can see 1 quantum processor.", id="ok"),
        pytest.param(401, 1, "refused: QCS refused the access token (HTTP 401)", id="401"),
        pytest.param(403, 1, "forbidden: QCS accepted who you are but refused access (HTTP 403)", id="403"),
    ],
)
def test_online_says_what_it_did_and_prints_the_status_after(home, token_response, api, answer, code, words):
    tokens = token_response()
    CredentialStore().install(TokenSet.from_response(tokens), api_url=api.url)
    api.answer_with(answer)
    proc = doctor("--online")
    out = proc.stdout
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "used the access token already in secrets.toml (still valid): no refresh." in out
    assert "obtained a bearer token" not in out
    assert f"Check with QCS ({api.url}" in out and words in out
    before, after = out.split("Status after these steps:")
    assert "State" in before and "State" in after and "ok (usable)" in after
    assert out.index("Check with QCS") < out.index("Status after these steps:")
    for key in ("access_token", "refresh_token", "id_token"):
        assert tokens[key] not in proc.stdout + proc.stderr
    (call,) = api.calls
    assert call.query == "pageSize=100"


def test_unreachable_qcs_fails_the_doctor(home, token_response, api):
    CredentialStore().install(TokenSet.from_response(token_response()), api_url=api.url)
    api.stop()
    proc = doctor("--online")
    assert proc.returncode == 1 and "unreachable: QCS could not be reached at" in proc.stdout


def test_without_online_qcs_is_not_asked(home, token_response, api):
    CredentialStore().install(TokenSet.from_response(token_response()), api_url=api.url)
    proc = doctor()
    assert proc.returncode == 0 and "Check with QCS" not in proc.stdout and "Status after" not in proc.stdout
    assert api.calls == []
