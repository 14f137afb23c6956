"""Token status: states, exact expiry, and a clear problem (with an action) for every odd file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import tomlkit

from qcs_jupyter.credentials import CredentialStore, TokenSet, exit_code, read_status
from qcs_jupyter.credentials.tokens import rfc3339

from ..helpers import read_only


def _install(tokens: dict, **kw) -> None:
    CredentialStore().install(TokenSet.from_response(tokens), **kw)


def _payload_edit(qcs_dir, **changes) -> None:
    path = qcs_dir / "secrets.toml"
    doc = tomlkit.parse(path.read_text())
    tp = doc["credentials"]["default"]["token_payload"]
    for key, value in changes.items():
        if value is None:
            del tp[key]
        else:
            tp[key] = value
    path.write_text(tomlkit.dumps(doc))


def codes(status) -> set[str]:
    return {p["code"] for p in status["problems"]}


def test_valid_credentials_report_exact_expiry(qcs_dir, make_jwt):
    access = make_jwt(1800)
    from qcs_jupyter.credentials.tokens import jwt_claims

    exp = jwt_claims(access)["exp"]
    _install(
        {"access_token": access, "refresh_token": "r", "id_token": make_jwt(1800, name="Ada", email="ada@example.org")}
    )
    status = read_status()
    assert status["access_token"]["expires_at"] == rfc3339(datetime.fromtimestamp(exp, timezone.utc))
    assert status["access_token"]["valid"] is True
    assert 1700 < status["access_token"]["expires_in_seconds"] <= 1800
    assert status["identity"] == {"name": "Ada", "email": "ada@example.org", "subject": "ada"}
    assert status["state"] == "ok" and status["usable"] and status["problems"] == []
    assert status["refresh_token"]["present"] and status["refresh_token"]["days_left"] == pytest.approx(90, abs=0.01)
    assert exit_code(status) == 0


def test_status_never_contains_token_values(qcs_dir, token_response):
    tokens = token_response()
    _install(tokens)
    text = str(read_status())
    for key in ("access_token", "refresh_token", "id_token"):
        assert tokens[key] not in text


def test_refresh_token_age_from_hub_record(qcs_dir, token_response):
    tokens = TokenSet.from_response(token_response())
    tokens.refresh_token_obtained_at = datetime.now(timezone.utc) - timedelta(days=86)
    CredentialStore().install(tokens)
    status = read_status()
    assert status["refresh_token"]["age_days"] == pytest.approx(86, abs=0.01)
    assert status["state"] == "expiring" and "refresh_token_expiring" in codes(status)
    assert exit_code(status) == 0


def test_refresh_token_past_90_days(qcs_dir, token_response):
    tokens = TokenSet.from_response(token_response(exp_in=-120, expires_in=0))
    tokens.refresh_token_obtained_at = datetime.now(timezone.utc) - timedelta(days=91)
    CredentialStore().install(tokens)
    status = read_status()
    problem = next(p for p in status["problems"] if p["code"] == "refresh_token_expired")
    assert "qcs api auth-get-user" in problem["action"] and "Restart your server" in problem["action"]
    assert status["state"] == "error" and not status["usable"] and exit_code(status) == 1


def _write(qcs_dir, settings: bytes | None, secrets: bytes | None):
    qcs_dir.mkdir(mode=0o700, exist_ok=True)
    for name, content in (("settings.toml", settings), ("secrets.toml", secrets)):
        if content is not None:
            (qcs_dir / name).write_bytes(content)


GOOD_SETTINGS = b'[profiles.default]\nauth_server_name = "default"\ncredentials_name = "default"\n'


def secrets_with(**payload) -> bytes:
    doc = tomlkit.document()
    doc.add("credentials", {"default": {"token_payload": payload}})
    return tomlkit.dumps(doc).encode()


@pytest.mark.parametrize(
    ("make", "code", "state", "exit"),
    [
        pytest.param(lambda j: (None, None), "settings_missing", "missing", 1, id="no-files"),
        pytest.param(lambda j: (GOOD_SETTINGS, None), "secrets_missing", "missing", 1, id="no-secrets"),
        pytest.param(lambda j: (GOOD_SETTINGS, b"[credentials\n"), "file_corrupt", "error", 2, id="malformed-secrets"),
        pytest.param(lambda j: (b"profiles = [\n", b""), "file_corrupt", "error", 2, id="malformed-settings"),
        pytest.param(lambda j: (GOOD_SETTINGS, b"\xff\xfe\x00bad"), "file_corrupt", "error", 2, id="non-utf8"),
        pytest.param(lambda j: (GOOD_SETTINGS, b""), "credentials_missing", "missing", 1, id="empty-secrets"),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(3600), expires_in="3600")),
            "expires_in_type",
            "error",
            1,
            id="expires_in-string",
        ),
        pytest.param(
            lambda j: (
                GOOD_SETTINGS,
                secrets_with(access_token=j(3600)).replace(
                    b"[credentials.default.token_payload]",
                    b"[credentials.default.token_payload]\nupdated_at = 2026-01-01T00:00:00Z",
                ),
            ),
            "updated_at_type",
            "error",
            1,
            id="bare-datetime",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token="not-a-jwt")),
            "access_token_unreadable",
            "error",
            1,
            id="not-a-jwt",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(None))),
            "access_token_unreadable",
            "error",
            1,
            id="jwt-without-exp",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(None), refresh_token="r")),
            "access_token_unreadable",
            "expired",
            0,
            id="no-exp-but-refresh",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(-60))),
            "access_token_expired",
            "error",
            1,
            id="expired-no-refresh",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(-60), refresh_token="r")),
            "access_token_expired",
            "expired",
            0,
            id="expired-with-refresh",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(120), refresh_token="r")),
            None,
            "ok",  # the QCS client renews it on its own
            0,
            id="expiring-soon-renewed-by-client",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(120))),
            "refresh_token_missing",
            "expiring",  # nothing renews it
            0,
            id="expiring-soon-not-renewable",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(3600), updated_at="2026-11-30T01:09:03.523448774Z")),
            None,
            "ok",  # what both QCS clients write, read on every Python (3.10's fromisoformat rejects it)
            0,
            id="updated-at-nine-digits",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(3600), updated_at="2026-11-30T01:09:03")),
            "updated_at_format",
            "error",  # no offset: the QCS clients refuse it
            1,
            id="updated-at-no-offset",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(3600), expires_in=2**32)),
            "expires_in_type",
            "error",  # a u32 in both clients
            1,
            id="expires-in-over-u32",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(3600), scope=["openid"])),
            "token_field_type",
            "error",
            1,
            id="scope-not-a-string",
        ),
        pytest.param(
            lambda j: (
                GOOD_SETTINGS + b'[auth_servers.default]\nclient_id = "x"\nissuer = "not a url"\n',
                secrets_with(access_token=j(-60), refresh_token="r"),
            ),
            "auth_server_invalid",
            "error",
            1,
            id="issuer-not-a-url",
        ),
        pytest.param(
            lambda j: (GOOD_SETTINGS, secrets_with(access_token=j(3600))),
            "refresh_token_missing",
            "ok",
            0,
            id="no-refresh-token",
        ),
        pytest.param(
            lambda j: (
                GOOD_SETTINGS + b'[auth_servers.default]\nclient_id = "x"\n',
                secrets_with(access_token=j(3600), refresh_token="r"),
            ),
            "auth_server_incomplete",
            "error",  # the official client refuses the file, however valid the token
            1,
            id="auth-server-without-issuer",
        ),
        pytest.param(
            lambda j: (
                GOOD_SETTINGS + b'[auth_servers.default]\nclient_id = "x"\nissuer = "https://i.example/"\n',
                secrets_with(access_token=j(-60), refresh_token="r"),
            ),
            "issuer_trailing_slash",
            "error",
            1,
            id="issuer-trailing-slash",
        ),
        pytest.param(
            lambda j: (
                GOOD_SETTINGS,
                b'[credentials.default.client_credentials]\nclient_id = "c"\nclient_secret = "s"\n',
            ),
            "credentials_other_kind",
            "missing",
            1,
            id="client-credentials",
        ),
    ],
)
def test_status_table(qcs_dir, make_jwt, make, code, state, exit):
    settings, secrets = make(make_jwt)
    if settings is not None or secrets is not None:
        _write(qcs_dir, settings, secrets)
    status = read_status()
    if code:
        assert code in codes(status), status["problems"]
    for p in status["problems"]:
        assert p["message"] and p["action"], p
    assert (status["state"], exit_code(status)) == (state, exit)


@pytest.mark.parametrize("which", ["settings.toml", "secrets.toml"])
def test_symlinked_file_reported_not_followed(qcs_dir, tmp_path, token_response, which):
    _install(token_response())
    target = tmp_path / "real.toml"
    (qcs_dir / which).rename(target)
    (qcs_dir / which).symlink_to(target)
    status = read_status()
    problem = next(p for p in status["problems"] if p["code"] == "file_unreadable")
    assert "symbolic link" in problem["message"]
    assert exit_code(status) == 2


def test_directory_instead_of_file(qcs_dir, token_response):
    _install(token_response())
    (qcs_dir / "secrets.toml").unlink()
    (qcs_dir / "secrets.toml").mkdir()
    status = read_status()
    assert any("is a directory" in p["message"] for p in status["problems"])
    assert exit_code(status) == 2


def test_world_readable_secrets_warned(qcs_dir, token_response):
    _install(token_response())
    (qcs_dir / "secrets.toml").chmod(0o644)
    status = read_status()
    assert "secrets_permissions" in codes(status) and "chmod 600" in status["problems"][0]["action"]


def test_read_only_dir_status_still_readable(qcs_dir, token_response):
    _install(token_response())
    with read_only(qcs_dir):
        status = read_status()
    assert status["usable"]


def test_profile_selection(qcs_dir, token_response, monkeypatch):
    CredentialStore(profile="lab").install(TokenSet.from_response(token_response()))
    status = read_status()
    assert status["profile"] == "lab"  # default_profile_name written for a fresh file
    monkeypatch.setenv("QCS_PROFILE_NAME", "other")
    assert read_status()["profile"] == "other"
    assert "credentials_missing" in codes(read_status())
