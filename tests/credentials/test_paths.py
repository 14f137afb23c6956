"""QCS_SETTINGS_FILE_PATH / QCS_SECRETS_FILE_PATH resolved exactly as the QCS clients resolve them.

The rule (both clients run ``shellexpand::env`` on the variable): ``$VAR``, ``${VAR}``, ``${VAR:-default}`` are
expanded, ``$$`` is ``$``, an unset variable is an error, ``~`` is left alone. The last test asks both real clients.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qcs_jupyter.cli import main as cli_main
from qcs_jupyter.credentials import CredentialStore, QCSPaths, TokenSet, read_status
from qcs_jupyter.credentials.paths import UnresolvablePath, expand_vars
from qcs_jupyter.credentials.sdkcheck import check_with_sdk

from .clients import load_with_pyquil

ENV = {"A": "/root-a", "B": "b", "EMPTY": "", "Ré": "/unicode", "A_1": "/a-one"}


@pytest.mark.parametrize(
    ("raw", "expanded"),
    [
        pytest.param("/x/settings.toml", "/x/settings.toml", id="plain"),
        pytest.param("$A/s.toml", "/root-a/s.toml", id="dollar-var"),
        pytest.param("${A}/s.toml", "/root-a/s.toml", id="braced"),
        pytest.param("$A_1/s", "/a-one/s", id="longest-name"),
        pytest.param("${A}_1/s", "/root-a_1/s", id="braces-end-the-name"),
        pytest.param("${NOPE:-/fallback}/s", "/fallback/s", id="default-when-unset"),
        pytest.param("${EMPTY:-/fallback}/s", "/s", id="set-but-empty-takes-no-default"),
        pytest.param("$EMPTY/s", "/s", id="empty-var"),
        pytest.param("/x/$$B", "/x/$B", id="double-dollar-is-a-dollar"),
        pytest.param("/x/$-y", "/x/$-y", id="dollar-then-punctuation"),
        pytest.param("/x/$", "/x/$", id="trailing-dollar"),
        pytest.param("/x/${B", "/x/${B", id="unbalanced-brace"),
        pytest.param("$Ré/s", "/unicode/s", id="unicode-name"),
        pytest.param("~/s", "~/s", id="tilde-untouched"),
        pytest.param("/x/~/s", "/x/~/s", id="tilde-inside"),
    ],
)
def test_expand_vars_like_shellexpand(raw, expanded):
    assert expand_vars(raw, ENV) == expanded


@pytest.mark.parametrize("raw", ["$NOPE/s", "${NOPE}/s", "${}/s", "${:-x}/s", "/a/$NOPE"])
def test_unset_variable_is_an_error(raw):
    with pytest.raises(UnresolvablePath, match="which is not set"):
        expand_vars(raw, ENV)


@pytest.mark.parametrize(
    ("value", "needles"),
    [
        pytest.param("~/qcs/settings.toml", ("starts with '~'", "Write $HOME instead of ~", "$HOME/qcs"), id="tilde"),
        pytest.param("$QCS_NOT_SET/settings.toml", ("uses $QCS_NOT_SET, which is not set",), id="unset-var"),
        pytest.param("", ("is set but empty",), id="empty"),
        pytest.param("qcs/settings.toml", ("is a relative path",), id="relative"),
        pytest.param("$TILDE_DIR/settings.toml", ("starts with '~'",), id="var-expanding-to-tilde"),
    ],
)
def test_unresolvable_paths_are_refused_with_the_reason(
    home, tmp_path, monkeypatch, capsys, token_response, value, needles
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TILDE_DIR", "~/x")
    monkeypatch.setenv("QCS_SETTINGS_FILE_PATH", value)
    paths = QCSPaths.from_env()
    assert paths.problem and paths.problem_var == "QCS_SETTINGS_FILE_PATH"
    for needle in needles:
        assert needle in paths.problem + " " + (paths.action or "")
    status = read_status()
    assert status["problems"][0]["code"] == "path_unresolvable" and status["usable"] is False
    assert cli_main(["status"]) == 2
    tokens = tmp_path / "t.json"
    tokens.write_text(json.dumps(token_response()))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli_main(["install", str(tokens)]) == 2
    out = capsys.readouterr()
    assert "QCS_SETTINGS_FILE_PATH" in out.out + out.err
    # Nothing was written anywhere: no "~" or "qcs" folder in the working directory, no ~/.qcs.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (home / ".qcs").exists()


def test_dollar_home_is_written_where_the_clients_read(home, tmp_path, monkeypatch, token_response):
    """0.1 wrote into a folder literally named ``$HOME``; the clients expand it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QCS_SETTINGS_FILE_PATH", "$HOME/cfg/settings.toml")
    monkeypatch.setenv("QCS_SECRETS_FILE_PATH", "${HOME}/cfg/secrets.toml")
    CredentialStore().install(TokenSet.from_response(token_response()))
    assert (home / "cfg" / "settings.toml").is_file() and (home / "cfg" / "secrets.toml").is_file()
    assert not list(tmp_path.glob("$*")) and not list(home.glob("$*"))
    assert read_status()["usable"] is True


def test_default_paths_use_home(home):
    paths = QCSPaths.from_env()
    assert (paths.settings, paths.secrets, paths.default_dir) == (
        home / ".qcs" / "settings.toml",
        home / ".qcs" / "secrets.toml",
        True,
    )


# (settings path as set, variables, whether it names the real file): the official client and we must agree.
CLIENT_CASES = [
    ("{root}/d/settings.toml", {}, True),
    ("$ROOT/d/settings.toml", {}, True),
    ("${ROOT}/d/settings.toml", {}, True),
    ("${NOPE:-{root}}/d/settings.toml", {}, True),
    ("$EMPTY{root}/d/settings.toml", {"EMPTY": ""}, True),
    ("$HOME/d/settings.toml", {}, True),
    ("{root}/d/$$settings.toml", {}, True),  # the file is named "$settings.toml"
    ("$NOPE/d/settings.toml", {}, False),
    ("${NOPE}/d/settings.toml", {}, False),
    ("~/d/settings.toml", {}, False),
    ("", {}, False),
]


@pytest.mark.parametrize(("raw", "extra", "ok"), CLIENT_CASES, ids=[c[0] or "empty" for c in CLIENT_CASES])
def test_the_official_client_resolves_the_same_path(tmp_path, token_response, raw, extra, ok):
    root = tmp_path
    (root / "d").mkdir()
    name = "$settings.toml" if "$$" in raw else "settings.toml"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QCS_")},
        "HOME": str(root),
        "ROOT": str(root),
        **extra,
        "QCS_SETTINGS_FILE_PATH": raw.replace("{root}", str(root)),
        "QCS_SECRETS_FILE_PATH": str(root / "d" / "secrets.toml"),
    }
    paths = QCSPaths.from_env(env)
    assert (paths.problem is None) is ok, paths.problem
    if ok:
        assert paths.settings == root / "d" / name
        CredentialStore(paths).install(TokenSet.from_response(token_response()))
    else:  # give the client a file where a wrong guess would look, so only the rule decides
        (root / "d" / "settings.toml").write_text("")
        (root / "d" / "secrets.toml").write_text("")
    result = check_with_sdk("default", env=env)
    if not result["available"]:
        pytest.skip("qcs-api-client-common is not installed")
    assert result["ok"] is ok, result
    assert load_with_pyquil("default", env)["ok"] is ok  # pyQuil 4.22's core resolves it the same way
    if not ok:
        assert Path(root / "d" / "settings.toml").read_text() == ""
