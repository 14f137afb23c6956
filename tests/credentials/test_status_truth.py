"""The status tells the truth: JupyterHub-managed credentials, the Hub link's state, and no value from the files shown."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
import tomlkit

from qcs_jupyter.cli import main as cli_main
from qcs_jupyter.credentials import AuthServer, CredentialStore, TokenSet, exit_code, read_status
from qcs_jupyter.credentials.contract import QCSHubInfo
from qcs_jupyter.credentials.sdkcheck import check_with_sdk

from .clients import load_with_pyquil

HUB_ISSUER = AuthServer("https://hub.example/hub/api/qcs/issuer", "real-client-id")
SESSION_TOKEN = "hub-session-token-0123456789"


def hub_info(**changes) -> dict:
    info = {
        "available": True,
        "last_sync": "2026-11-30T00:00:00Z",
        "last_sync_error": None,
        "refresh_available": True,
        "restart_available": True,
        "spawn_url": "/hub/spawn/ada?next=%2Fuser%2Fada%2Flab",
        "mode": "hub",
        "reason": None,
        "login_url": "/hub/oauth_login?next=%2Fuser%2Fada%2Flab",
        "relogin_required": False,
        "owner": True,
    }
    return {**info, **changes}


@pytest.fixture
def hub_files(qcs_dir, make_jwt):
    """Install credentials as the server extension does under JupyterHub (the new design)."""

    def install(exp_in: float = 3600, *, age_days: float = 10, session: str | None = SESSION_TOKEN) -> None:
        tokens = TokenSet(
            access_token=make_jwt(exp_in),
            refresh_token=session,
            id_token=make_jwt(exp_in, name="Ada", email="ada@example.org"),
            expires_in=3600,
            managed_by="jupyterhub",
            refresh_token_obtained_at=datetime.now(timezone.utc) - timedelta(days=age_days),
        )
        CredentialStore().install(tokens, auth_server=HUB_ISSUER)

    return install


def codes(status) -> list[str]:
    return [p["code"] for p in status["problems"]]


def test_hub_renewed_token_is_ok_even_minutes_before_expiry(hub_files):
    hub_files(exp_in=180)  # 3 min left: the server renews it ahead of expiry
    status = read_status(hub=hub_info())
    assert (status["state"], status["usable"], codes(status)) == ("ok", True, [])
    assert status["access_token"]["renewed_by"] == "jupyterhub"
    assert "renews automatically" in status["summary"]
    refresh = status["refresh_token"]
    assert refresh["held_by"] == "jupyterhub" and refresh["in_file"] and refresh["present"]
    # The age is the real refresh token's (recorded from the Hub), not the session token's, and not an estimate.
    assert refresh["age_days"] == pytest.approx(10, abs=0.01) and refresh["obtained_at_estimated"] is False
    assert status["auth_server"]["issuer"] == HUB_ISSUER.issuer


def test_hub_managed_without_hub_info_is_still_ok(hub_files):
    """``qcs-jupyter status`` in a terminal of the same server: no Hub link object, same verdict."""
    hub_files(exp_in=180)
    status = read_status()
    assert (status["state"], status["usable"], status["hub"]) == ("ok", True, None)


@pytest.mark.parametrize(
    ("age_days", "state", "code", "usable"),
    [
        pytest.param(84, "expiring", "refresh_token_expiring", True, id="horizon-near"),
        pytest.param(91, "expiring", "refresh_token_expired", True, id="horizon-passed-token-still-valid"),
    ],
)
def test_hub_managed_90_day_horizon(hub_files, age_days, state, code, usable):
    hub_files(exp_in=1800, age_days=age_days)
    status = read_status(hub=hub_info())
    assert (status["state"], status["usable"]) == (state, usable)
    problem = next(p for p in status["problems"] if p["code"] == code)
    assert "JupyterHub" in problem["message"] and "log in again" in problem["action"].lower()


def test_hub_managed_past_horizon_and_expired_is_error(hub_files):
    hub_files(exp_in=-60, age_days=91)
    status = read_status(hub=hub_info())
    assert (status["state"], status["usable"], exit_code(status)) == ("error", False, 1)


def test_renewal_failing_alarms(hub_files):
    hub_files(exp_in=1800)
    status = read_status(hub=hub_info(last_sync_error="JupyterHub did not answer (Connection refused)"))
    assert (status["state"], status["usable"]) == ("expiring", True)
    assert codes(status) == ["hub_renewal_failing"]
    assert "Connection refused" in status["problems"][0]["message"]


@pytest.mark.parametrize(
    ("exp_in", "state", "usable", "severity"),
    [
        pytest.param(1800, "expiring", True, "warning", id="still-valid"),
        pytest.param(-60, "error", False, "error", id="expired"),
    ],
)
def test_relogin_required(hub_files, exp_in, state, usable, severity):
    hub_files(exp_in=exp_in)
    status = read_status(hub=hub_info(relogin_required=True))
    assert (status["state"], status["usable"]) == (state, usable)
    problem = next(p for p in status["problems"] if p["code"] == "hub_relogin_required")
    assert problem["severity"] == severity and "log in again" in problem["action"].lower()


def test_hub_expired_token_with_session_token_is_usable(hub_files):
    """The server is late, but a QCS client in a kernel refreshes through the Hub's issuer with the session token."""
    hub_files(exp_in=-60)
    status = read_status(hub=hub_info())
    assert (status["state"], status["usable"]) == ("expired", True)
    assert status["problems"][0]["severity"] == "warning"


def test_hub_expired_token_without_session_token_waits_for_the_hub(hub_files):
    hub_files(exp_in=-60, session=None)
    status = read_status(hub=hub_info())
    assert (status["state"], status["usable"]) == ("expired", False)
    assert status["refresh_token"]["in_file"] is False and status["refresh_token"]["held_by"] == "jupyterhub"


def test_non_owner_sees_no_identity_paths_or_problems(hub_files):
    hub_files(exp_in=-60)
    status = read_status(hub=hub_info(owner=False, refresh_available=False, restart_available=False))
    assert status["identity"] == {"name": None, "email": None, "subject": None}
    assert status["settings_path"] is None and status["secrets_path"] is None and status["problems"] == []
    assert "owner" in status["summary"]


def test_hub_info_from_an_older_dict_takes_safe_defaults():
    info = QCSHubInfo.from_mapping({"available": True, "mode": "shared", "extra": 1})
    assert info.mode is None and info.owner is True and info.relogin_required is False


def test_auth_server_without_issuer_is_not_usable(qcs_dir, make_jwt):
    """The official client refuses such a file (checked in test_official_client), so a valid token does not help."""
    CredentialStore().install(TokenSet(access_token=make_jwt(3600), refresh_token="r"))
    path = qcs_dir / "settings.toml"
    doc = tomlkit.parse(path.read_text())
    del doc["auth_servers"]["default"]["issuer"]
    path.write_text(tomlkit.dumps(doc))
    status = read_status()
    assert (status["usable"], status["state"], exit_code(status)) == (False, "error", 1)


# --- no value from the files is shown -------------------------------------------------------------------------------
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEiLCJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJlLXNlY3JldC12YWx1ZQ"
OPAQUE = "opaque-refresh-d8f7a6s5d4f3g2h1"

SETTINGS = (
    'default_profile_name = "default"\n[profiles.default]\nauth_server_name = "default"\ncredentials_name = "default"\n'
    '[auth_servers.default]\nclient_id = "c1"\nissuer = "https://idp.example/o"\n'
)


def _payload(**fields: str) -> str:
    body = {"access_token": '"a"', "refresh_token": f'"{OPAQUE}"', **fields}
    return "[credentials.default.token_payload]\n" + "".join(f"{k} = {v}\n" for k, v in body.items())


# A token pasted into the wrong place, in each of the places a person can paste it (0.1 echoed it in 4 of 9).
MISPLACED = {
    "expires_in": (SETTINGS, _payload(expires_in=f'"{TOKEN}"'), "expires_in"),
    "updated_at": (SETTINGS, _payload(updated_at=f'"{TOKEN}"'), "updated_at"),
    "token_type": (SETTINGS, _payload(token_type=f'["{TOKEN}"]'), "token_type"),
    "issuer": (SETTINGS.replace("https://idp.example/o", TOKEN), _payload(), "issuer"),
    "client_id": (SETTINGS.replace('"c1"', f'"{TOKEN}"'), _payload(), "client_id"),
    "credentials_name": (
        SETTINGS.replace('credentials_name = "default"', f'credentials_name = "{TOKEN}"'),
        _payload(),
        "credentials",
    ),
    "auth_server_name": (
        SETTINGS.replace('auth_server_name = "default"', f'auth_server_name = "{TOKEN}"'),
        _payload(),
        "auth_servers",
    ),
    "default_profile_name": (
        SETTINGS.replace('default_profile_name = "default"', f'default_profile_name = "{TOKEN}"'),
        _payload(),
        "profiles",
    ),
    "key-of-a-table": (SETTINGS, _payload() + f'"{TOKEN}" = 1\n"{TOKEN}" = 2\n', "not valid TOML"),
    "id_token-claims": (SETTINGS, _payload(id_token=f'"{TOKEN}"'), None),
    "refresh-token-as-client-id": (SETTINGS.replace('"c1"', f'"{OPAQUE}"'), _payload(), None),
}


@pytest.mark.parametrize("where", list(MISPLACED))
def test_a_token_in_the_wrong_key_is_never_shown(qcs_dir, capsys, where):
    settings, secrets, named = MISPLACED[where]
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "settings.toml").write_text(settings)
    (qcs_dir / "secrets.toml").write_text(secrets)
    (qcs_dir / "secrets.toml").chmod(0o600)
    status = read_status()
    assert cli_main(["status"]) in (0, 1, 2)
    assert cli_main(["status", "--json"]) in (0, 1, 2)
    shown = json.dumps(status) + capsys.readouterr().out
    for secret in (TOKEN, OPAQUE, *TOKEN.split(".")):
        assert secret not in shown, f"{where}: {secret[:12]}… shown"
    if named:  # the user still learns which key is wrong and what kind of problem it is
        assert named in json.dumps(status["problems"]), status["problems"]


def test_absurd_exp_is_flagged(qcs_dir, make_jwt):
    CredentialStore().install(TokenSet(access_token=make_jwt(200 * 365 * 86400), refresh_token="r"))
    status = read_status()
    assert "access_token_implausible" in codes(status)
    assert status["usable"] is True  # the clients do not verify tokens: it still "works" for them


# --- the status says "the clients refuse the files" exactly when both real clients do -------------------------------
LOAD_CODES = {
    "path_unresolvable",
    "file_unreadable",
    "file_corrupt",
    "settings_missing",
    "secrets_missing",
    "profile_missing",
    "auth_server_missing",
    "auth_server_incomplete",
    "token_field_type",
    "expires_in_type",
    "updated_at_type",
    "updated_at_format",
}
P = '[profiles.default]\nauth_server_name = "default"\ncredentials_name = "default"\n'
LOAD_CASES = {
    "plain": (P, 'access_token = "a"'),
    "no-settings-content": ("", 'access_token = "a"'),
    "default-profile-missing": ('default_profile_name = "nope"\n' + P, 'access_token = "a"'),
    "only-other-profiles": ("[profiles.other]\n", 'access_token = "a"'),
    "auth-server-named-but-missing": (P.replace('"default"\nc', '"nope"\nc', 1), 'access_token = "a"'),
    "other-auth-servers-only": (
        P + '[auth_servers.other]\nclient_id = "c"\nissuer = "https://x"\n',
        'access_token = "a"',
    ),
    "auth-server-without-issuer": (P + '[auth_servers.default]\nclient_id = "c"\n', 'access_token = "a"'),
    "auth-server-client-id-int": (
        P + '[auth_servers.default]\nclient_id = 5\nissuer = "https://x"\n',
        'access_token = "a"',
    ),
    "issuer-not-a-url": (P + '[auth_servers.default]\nclient_id = "c"\nissuer = "x"\n', 'access_token = "a"'),
    "trailing-slash": (P + '[auth_servers.default]\nclient_id = "c"\nissuer = "https://x/"\n', 'access_token = "a"'),
    "expires-in-u32-max": (P, 'access_token = "a"\nexpires_in = 4294967295'),
    "expires-in-over-u32": (P, 'access_token = "a"\nexpires_in = 4294967296'),
    "expires-in-negative": (P, 'access_token = "a"\nexpires_in = -1'),
    "scope-int": (P, 'access_token = "a"\nscope = 5'),
    "id-token-array": (P, 'access_token = "a"\nid_token = ["x"]'),
    "no-access-token": (P, 'refresh_token = "r"'),
    "empty-access-token": (P, 'access_token = ""'),
    "nine-digits": (P, 'access_token = "a"\nupdated_at = "2026-11-30T01:09:03.523448774Z"'),
    "credentials-name-missing": (
        P.replace('credentials_name = "default"', 'credentials_name = "x"'),
        'access_token = "a"',
    ),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_status_refuses_exactly_what_both_clients_refuse(home, case):
    settings, payload = LOAD_CASES[case]
    qcs = home / ".qcs"
    qcs.mkdir(mode=0o700)
    (qcs / "settings.toml").write_text(settings)
    (qcs / "secrets.toml").write_text("[credentials.default.token_payload]\n" + payload + "\n")
    status = read_status()
    refused = {p["code"] for p in status["problems"]} & LOAD_CODES
    official = check_with_sdk(status["profile"], env=dict(os.environ))
    if not official["available"]:
        pytest.skip("qcs-api-client-common is not installed")
    pyquil = load_with_pyquil(status["profile"], os.environ)
    assert official["ok"] is pyquil["ok"], (official, pyquil)  # the two clients agree on all of these
    assert (not refused) is official["ok"], (refused, official)
