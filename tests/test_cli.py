"""The qcs-jupyter command: status exit codes, install from file or stdin, doctor."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from qcs_jupyter.cli import main


def run(*argv: str, stdin: str | None = None, capsys=None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_install_then_status_json(home, tmp_path, token_response, capsys, monkeypatch):
    tokens = token_response()
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    code, out, _ = run("install", str(path), "--issuer", "https://idp.example/o", "--client-id", "c1", capsys=capsys)
    assert code == 0 and "Installed credentials for profile 'default'" in out
    code, out, _ = run("status", "--json", capsys=capsys)
    status = json.loads(out)
    assert code == 0 and status["usable"] and status["auth_server"]["issuer"] == "https://idp.example/o"
    assert tokens["access_token"] not in out and tokens["refresh_token"] not in out


def test_install_from_stdin_and_profile(home, token_response, capsys, monkeypatch):
    code, out, _ = run(
        "install", "-", "--profile", "lab", stdin=json.dumps(token_response()), capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0 and "'lab'" in out
    code, out, _ = run("status", "--profile", "lab", capsys=capsys)
    assert code == 0 and "ok (usable)" in out and "Ada Lovelace <ada@example.org>" in out


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        pytest.param("{not json", "not valid JSON", id="garbage"),
        pytest.param("[1, 2]", "expected a JSON object", id="array"),
        pytest.param('{"refresh_token": "r"}', "no access_token", id="no-access-token"),
        pytest.param('{"access_token": "a", "expires_in": "soon"}', "expires_in must be", id="bad-expires-in"),
        pytest.param('{"access_token": 5}', "no access_token", id="access-token-number"),
        pytest.param(
            '{"access_token": "a", "refresh_token": ["x"]}', "refresh_token must be a string", id="refresh-token-list"
        ),
    ],
)
def test_install_rejects_bad_json_and_writes_nothing(home, capsys, monkeypatch, payload, needle):
    code, _, err = run("install", "-", stdin=payload, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and needle in err
    assert not (home / ".qcs").exists()


def test_install_missing_file(home, capsys):
    code, _, err = run("install", str(home / "nope.json"), capsys=capsys)
    assert code == 2 and "cannot read" in err


def test_install_issuer_without_client_id(home, tmp_path, token_response, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(token_response()))
    code, _, err = run("install", str(path), "--issuer", "https://x", capsys=capsys)
    assert code == 1 and "go together" in err


def test_install_into_corrupt_file_reports_backup(home, tmp_path, token_response, capsys):
    (home / ".qcs").mkdir(mode=0o700)
    (home / ".qcs" / "settings.toml").write_text("[[[ broken")
    path = tmp_path / "t.json"
    path.write_text(json.dumps(token_response()))
    code, _, err = run("install", str(path), capsys=capsys)
    assert code == 0 and "settings.toml.corrupt-" in err
    backups = list((home / ".qcs").glob("settings.toml.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text() == "[[[ broken"


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        pytest.param(lambda q: None, 1, id="missing"),
        pytest.param(
            lambda q: (q / "settings.toml").write_text("x = [") or (q / "secrets.toml").write_text(""), 2, id="corrupt"
        ),
    ],
)
def test_status_exit_codes(home, capsys, setup, code):
    q = home / ".qcs"
    q.mkdir()
    setup(q)
    got, out, _ = run("status", capsys=capsys)
    assert got == code and ("ERROR" in out)


def test_doctor_runs_official_client(home, tmp_path, token_response):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(token_response()))
    assert main(["install", str(path)]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "qcs_jupyter.cli", "doctor"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Official QCS client: loads profile 'default'" in proc.stdout


def test_doctor_reports_client_failure(home):
    (home / ".qcs").mkdir()
    (home / ".qcs" / "settings.toml").write_text("[profiles.default]\ncredentials_name = 'default'\n")
    (home / ".qcs" / "secrets.toml").write_text(
        "[credentials.default.token_payload]\naccess_token = 'x'\nexpires_in = 'bad'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "qcs_jupyter.cli", "doctor"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1
    assert "Official QCS client: FAILED" in proc.stdout and "expires_in" in proc.stdout
