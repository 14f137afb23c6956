"""One status contract: the Python types, the committed JSON Schema and the TypeScript types cannot drift.

``python -m qcs_jupyter.credentials.schemagen`` regenerates both files; these tests fail until it is run after a
change to ``contract.py``. Real statuses (every problem code, the CLI's JSON, the server's Hub part) are checked
against the committed schema.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from qcs_jupyter.cli import main as cli_main
from qcs_jupyter.credentials import AuthServer, CredentialStore, TokenSet, read_status, schemagen
from qcs_jupyter.credentials.contract import QCSHubInfo, QCSProblemCode, QCSState
from qcs_jupyter.credentials.status import evaluate
from qcs_jupyter.server.hub_client import QCSHubClient

ROOT = Path(__file__).resolve().parents[2]
TOKENS_TS = ROOT / "labextension" / "src" / "tokens.ts"


def committed_schema() -> dict:
    return json.loads(schemagen.SCHEMA_PATH.read_text(encoding="utf-8"))


def test_committed_schema_is_generated_from_the_python_types():
    assert schemagen.SCHEMA_PATH.read_text(encoding="utf-8") == schemagen.schema_text(), (
        "contract.py changed: run `python -m qcs_jupyter.credentials.schemagen`"
    )


def test_committed_typescript_is_generated_from_the_committed_schema():
    ts = ROOT / schemagen.TS_RELATIVE
    assert ts.read_text(encoding="utf-8") == schemagen.typescript_text(committed_schema()), (
        "status.schema.json changed: run `python -m qcs_jupyter.credentials.schemagen`"
    )


def test_check_command_reports_drift(tmp_path, monkeypatch, capsys):
    assert schemagen.main(["--check"]) == 0
    stale = tmp_path / "status.schema.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(schemagen, "SCHEMA_PATH", stale)
    assert schemagen.main(["--check"]) == 1 and "out of date" in capsys.readouterr().out
    assert stale.read_text() == "{}\n"  # --check never writes


def test_tokens_ts_uses_the_generated_types_and_declares_none_itself():
    text = TOKENS_TS.read_text(encoding="utf-8")
    assert "export * from './contract';" in text
    for name in committed_schema()["$defs"]:
        assert not re.search(rf"\b(interface|type)\s+I?{name}\b", text), f"tokens.ts re-declares {name}"


def test_schema_is_strict_and_complete():
    schema = committed_schema()
    Draft202012Validator.check_schema(schema)
    for name, definition in schema["$defs"].items():
        if definition["type"] == "object":
            assert definition["additionalProperties"] is False
            assert definition["required"] == list(definition["properties"]), name
        for prop in definition.get("properties", {}).values():
            assert prop["description"], name
    codes = [v["const"] for v in schema["$defs"]["QCSProblemCode"]["oneOf"]]
    assert codes == [c.value for c in QCSProblemCode]


# --- real statuses against the committed schema ------------------------------------------------------------------
SETTINGS = '[profiles.default]\nauth_server_name = "default"\ncredentials_name = "default"\n'


def _files(qcs: Path, settings: str | None, secrets: str | None, mode: int = 0o600) -> None:
    qcs.mkdir(mode=0o700, exist_ok=True)
    for name, text in (("settings.toml", settings), ("secrets.toml", secrets)):
        if text == "DIR":
            (qcs / name).mkdir()
        elif text is not None:
            (qcs / name).write_text(text)
            (qcs / name).chmod(mode if name == "secrets.toml" else 0o600)


def _reset(qcs: Path) -> None:
    for p in qcs.glob("*") if qcs.exists() else []:
        p.rmdir() if p.is_dir() else p.unlink()


def _payload(*lines: str) -> str:
    return "[credentials.default.token_payload]\n" + "\n".join(lines) + "\n"


def _scenarios(make_jwt) -> dict[str, tuple]:
    """name -> (settings, secrets, secrets mode, hub info or None); together they raise every problem code."""
    valid, expired = make_jwt(3600), make_jwt(-60)
    return {
        "missing": (None, None, 0o600, None),
        "corrupt": ("x = [", "", 0o600, None),
        "world-readable": (SETTINGS, _payload(f'access_token = "{valid}"', 'refresh_token = "r"'), 0o644, None),
        "no-profile": ("[profiles.other]\nx = 1\n", _payload(f'access_token = "{valid}"'), 0o600, None),
        "no-auth-server": (
            SETTINGS.replace('"default"\nc', '"nope"\nc', 1),
            _payload(f'access_token = "{valid}"'),
            0o600,
            None,
        ),
        "incomplete": (
            SETTINGS + '[auth_servers.default]\nclient_id = "c"\n',
            _payload(f'access_token = "{valid}"'),
            0o600,
            None,
        ),
        "invalid": (
            SETTINGS + '[auth_servers.default]\nclient_id = "c"\nissuer = "x"\n',
            _payload(f'access_token = "{valid}"'),
            0o600,
            None,
        ),
        "slash": (
            SETTINGS + '[auth_servers.default]\nclient_id = "c"\nissuer = "https://i.example/"\n',
            _payload(f'access_token = "{valid}"'),
            0o600,
            None,
        ),
        "no-payload": (SETTINGS, "", 0o600, None),
        "other-kind": (SETTINGS, '[credentials.default.client_credentials]\nclient_id = "c"\n', 0o600, None),
        "types": (
            SETTINGS,
            _payload("access_token = 5", 'expires_in = "1"', "updated_at = 2026-01-01T00:00:00Z"),
            0o600,
            None,
        ),
        "format": (SETTINGS, _payload(f'access_token = "{valid}"', 'updated_at = "soon"'), 0o600, None),
        "no-access": (SETTINGS, _payload('refresh_token = "r"'), 0o600, None),
        "not-jwt": (SETTINGS, _payload('access_token = "opaque"', 'refresh_token = "r"'), 0o600, None),
        "expired": (SETTINGS, _payload(f'access_token = "{expired}"', 'refresh_token = "r"'), 0o600, None),
        "absurd": (SETTINGS, _payload(f'access_token = "{make_jwt(10**9)}"'), 0o600, None),
        "old": (
            SETTINGS,
            _payload(f'access_token = "{valid}"', 'refresh_token = "r"', 'updated_at = "2020-01-01T00:00:00Z"'),
            0o600,
            None,
        ),
        "hub-failing": (
            None,
            None,
            0o600,
            {"available": True, "mode": "hub", "last_sync_error": "JupyterHub did not answer"},
        ),
        "hub-relogin": (None, None, 0o600, {"available": True, "mode": "hub", "relogin_required": True}),
        "directory": (SETTINGS, "DIR", 0o600, None),
    }


def test_every_status_matches_the_schema_and_every_code_occurs(home, make_jwt):
    validator = Draft202012Validator(committed_schema())
    seen: set[str] = set()
    states: set[str] = set()
    for name, (settings, secrets, mode, hub) in _scenarios(make_jwt).items():
        _reset(home / ".qcs")
        if settings is not None or secrets is not None:
            _files(home / ".qcs", settings, secrets, mode)
        for status in (read_status(), read_status(hub=hub or {"available": False})):
            errors = [e.message for e in validator.iter_errors(status)]
            assert errors == [], (name, errors)
            seen |= {p["code"] for p in status["problems"]}
            states.add(status["state"])
    _reset(home / ".qcs")
    # Hub-managed files, near and past the real refresh token's 90 days; a path the clients cannot resolve.
    tokens = TokenSet(access_token=make_jwt(3600), refresh_token="session", managed_by="jupyterhub")
    tokens.refresh_token_obtained_at = datetime.now(timezone.utc) - timedelta(days=85)
    CredentialStore().install(tokens, auth_server=AuthServer("https://hub.example/hub/api/qcs/issuer", "c"))
    for status in (read_status(), read_status(now=datetime.now(timezone.utc) + timedelta(days=6))):
        assert list(validator.iter_errors(status)) == []
        seen |= {p["code"] for p in status["problems"]}
        states.add(status["state"])
    assert seen >= {"refresh_token_expiring", "refresh_token_expired"}
    missing = {c.value for c in QCSProblemCode} - seen - {"path_unresolvable"}
    assert missing == set(), f"no scenario raises {sorted(missing)}"
    assert states == {s.value for s in QCSState}


def test_unresolvable_path_status_matches_the_schema(home, monkeypatch):
    monkeypatch.setenv("QCS_SECRETS_FILE_PATH", "~/s.toml")
    status = read_status()
    assert list(Draft202012Validator(committed_schema()).iter_errors(status)) == []
    assert [p["code"] for p in status["problems"]] == ["path_unresolvable"]


def test_cli_json_matches_the_schema(home, token_response, tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(token_response()))
    assert cli_main(["install", str(path)]) == 0
    capsys.readouterr()
    assert cli_main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert list(Draft202012Validator(committed_schema()).iter_errors(status)) == []
    assert status["hub"] is None


@pytest.mark.parametrize("available", [True, False], ids=["under-hub", "no-hub"])
@pytest.mark.parametrize("owner", [True, False], ids=["owner", "non-owner"])
def test_the_servers_hub_part_is_exactly_the_contracts(home, available, owner):
    """The server extension's ``info()`` fills ``QCSHubInfo`` key for key (the lead's code conforms to this type)."""
    client = QCSHubClient(
        **({"api_url": "http://127.0.0.1:1/hub/api", "api_token": "t", "user": "ada"} if available else {})
    )
    if not available:
        client.api_url = client.api_token = client.user = ""
    info = client.info(owner=owner)
    assert set(info) == set(QCSHubInfo.__dataclass_fields__)
    status = read_status(hub=info)
    assert list(Draft202012Validator(committed_schema()).iter_errors(status)) == []
    assert status["hub"] == info


def test_to_json_is_plain_json(home):
    data = evaluate(CredentialStore().read()).to_json()
    assert json.loads(json.dumps(data)) == data
    assert type(data["state"]) is str  # not an Enum member, whose str() differs across Python versions
