"""The bad-input catalogue: every odd input a user can meet, what they see, and that no content is lost.

``CATALOGUE`` is the single list: each entry names the input (its id, also the row of the table in
docs/reference/catalogue.md), the layer, what the user sees, what happens to their files, and the words
(``needles``) the user-facing text must contain. ``SCENARIOS`` holds one function per id that builds the input,
runs the user-facing path (the CLI where there is one), asserts the exit code and that every pre-existing file is
unchanged (or kept in a ``*.corrupt-*`` backup), and returns the text shown.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import tomlkit

from qcs_jupyter.cli import main as cli_main
from qcs_jupyter.credentials import CredentialStore, TokenSet
from qcs_jupyter.credentials.tokens import rfc3339
from qcs_jupyter.handoff import parse_payload
from qcs_jupyter.server.hub_client import QCSHubClient
from tests.helpers import read_only

TABLE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "catalogue.md"
TABLE_HEADING = "# Reliability: the bad-input catalogue"


class Entry(NamedTuple):
    id: str
    layer: str
    sees: str  # what the user sees (the table's second column)
    files: str  # what happens to their files (the table's third column)
    needles: tuple[str, ...]  # words the user-facing text must contain
    bug: str | None = None  # a known bug: the scenario is a strict xfail with this reason


KEPT = "unchanged"
BACKUP = "kept as `NAME.corrupt-<time>`, then replaced"
REFUSED = "refused; unchanged"

# fmt: off
CATALOGUE: list[Entry] = [
    # --- the files -------------------------------------------------------------------------------------------
    Entry("settings-not-toml", "files", "`status` exits 2: settings.toml is not valid TOML (line, column) → fix the syntax; `install` notes where the old content was kept", BACKUP, ("settings.toml is not valid TOML", "Fix the syntax", "settings.toml.corrupt-")),
    Entry("secrets-not-toml", "files", "`status` exits 2: secrets.toml is not valid TOML → fix the syntax; `install` notes the backup", BACKUP, ("secrets.toml is not valid TOML", "Fix the syntax", "secrets.toml.corrupt-")),
    Entry("settings-not-utf8", "files", "`status` exits 2: not valid UTF-8 (byte, offset) → TOML files must be UTF-8; `install` notes the backup", BACKUP, ("is not valid UTF-8 (byte 0xff at offset 0)", "must be UTF-8", "settings.toml.corrupt-")),
    Entry("secrets-not-utf8", "files", "as above, for secrets.toml", BACKUP, ("is not valid UTF-8", "must be UTF-8", "secrets.toml.corrupt-")),
    Entry("secrets-is-directory", "files", "`status`/`install` exit 2: secrets.toml is a directory → move it aside", REFUSED, ("secrets.toml is a directory", "Move it aside")),
    Entry("settings-is-directory", "files", "`status`/`install` exit 2: settings.toml is a directory → move it aside", REFUSED, ("settings.toml is a directory", "Move it aside")),
    Entry("secrets-symlink", "files", "`status`/`install` exit 2: is a symbolic link; refusing to follow it → replace the link or set QCS_SECRETS_FILE_PATH", "refused; link and its target unchanged", ("secrets.toml is a symbolic link", "refusing to follow", "QCS_SECRETS_FILE_PATH")),
    Entry("settings-symlink", "files", "as above, for settings.toml", "refused; link and its target unchanged", ("settings.toml is a symbolic link", "Replace the link")),
    Entry("qcs-dir-symlink", "files", "`install` exits 2: ~/.qcs is a symbolic link → replace it with the real directory", "refused; nothing written through the link", ("/.qcs is a symbolic link", "Replace the link")),
    Entry("dangling-symlink", "files", "`status`/`install` exit 2: is a symbolic link (even with no target)", "refused; no target file created", ("secrets.toml is a symbolic link", "refusing to follow")),
    Entry("qcs-dir-other-owner", "files", "`status`/`install` exit 2: ~/.qcs is owned by uid N with mode M, not by you: that user could swap or read the QCS files in it → keep them in a directory only you own and can write to", REFUSED, ("/.qcs is owned by uid 12345 with mode 0700", "that user could swap or read", "only you own and can write to")),
    Entry("secrets-dir-other-owner", "files", "`status`/`install` exit 2: QCS_SECRETS_FILE_PATH's directory (e.g. a /tmp/qcs another user made first) is owned by uid N → use a directory of your own", REFUSED, ("/qcs is owned by uid 12345", "only you own and can write to", "QCS_SECRETS_FILE_PATH")),
    Entry("settings-dir-other-owner", "files", "as above, for QCS_SETTINGS_FILE_PATH (settings.toml names the issuer that gets the refresh token)", REFUSED, ("/qcs is owned by uid 12345", "only you own and can write to")),
    Entry("secrets-dir-group-writable", "files", "`status`/`install` exit 2: the directory can be written by its group (mode 0770) → chmod go-w DIR (a group with just the user in it is fine)", REFUSED, ("can be written by its group gid 12345 (mode 0770)", "chmod go-w")),
    Entry("secrets-dir-world-writable-sticky", "files", "`status`/`install` exit 2: the directory holding the files can be written by any user (mode 1777): a sticky bit does not make it the user's own", REFUSED, ("can be written by any user (mode 1777)", "chmod go-w")),
    Entry("secrets-dir-under-world-writable", "files", "`status`/`install` exit 2: a directory above can be written by any user (mode 0777, no sticky bit): others could swap the user's directory → chmod go-w (or +t) it, or keep the files elsewhere", REFUSED, ("(above the QCS files) can be written by any user (mode 0777, no sticky bit)", "chmod +t")),
    Entry("secrets-dir-under-sticky-tmp", "files", "`install` writes: the user's own directory inside a sticky world-writable one (like /tmp) is fine", "written into the user's 0700 directory", ("Installed credentials",)),
    Entry("secrets-fifo", "files", "`status`/`install` exit 2 at once (no hang): is not a regular file → move it aside", REFUSED, ("secrets.toml is not a regular file", "Move it aside")),
    Entry("qcs-read-only", "files", "`install` exits 2: cannot be written: Permission denied (or read-only); the existing file was left unchanged → make it writable", KEPT, ("cannot be written", "the existing file was left unchanged", "writable")),
    Entry("disk-full", "files", "`install` exits 2: No space left on device; the existing file was left unchanged → free some disk space", "unchanged; no temp file left", ("No space left on device", "the existing file was left unchanged", "Free some disk space")),
    Entry("expires-in-string", "files", "`status` exits 1: expires_in is a string, not an integer; the QCS client rejects the file → get new credentials (the value is never shown)", KEPT, ("expires_in in secrets.toml is a string, not an integer", "qcs-jupyter install")),
    Entry("expires-in-bool", "files", "`status` exits 1: expires_in is a boolean, not an integer", KEPT, ("expires_in in secrets.toml is a boolean, not an integer",)),
    Entry("expires-in-float", "files", "`status` exits 1: expires_in is a float, not an integer", KEPT, ("expires_in in secrets.toml is a float, not an integer",)),
    Entry("expires-in-over-u32", "files", "`status` exits 1: expires_in is an integer outside 0 to 4294967295 (the clients read a u32)", KEPT, ("an integer outside 0 to 4294967295",)),
    Entry("updated-at-bare-datetime", "files", "`status` exits 1: updated_at is a bare TOML date-time → quote it", KEPT, ("bare TOML date-time", "Quote it")),
    Entry("updated-at-not-rfc3339", "files", "`status` exits 1: updated_at is not an RFC 3339 time the QCS client can read (the value is never shown)", KEPT, ("updated_at in secrets.toml is not an RFC 3339 time",)),
    Entry("updated-at-nine-digits", "files", "`status` exits 0 on every Python: the nine fractional digits both QCS clients write are read (3.10's `fromisoformat` cannot)", KEPT, ("ok (usable)",)),
    Entry("token-pasted-into-wrong-key", "files", "`status` names the key and the kind of problem (expires_in is a string), never the token", KEPT, ("expires_in in secrets.toml is a string",)),
    Entry("settings-path-tilde", "files", "`status`/`install` exit 2: QCS_SETTINGS_FILE_PATH starts with '~', which the QCS clients do not expand → write $HOME instead", "nothing written (no `~` folder)", ("QCS_SETTINGS_FILE_PATH starts with '~'", "Write $HOME instead of ~")),
    Entry("secrets-path-unset-variable", "files", "`status`/`install` exit 2: QCS_SECRETS_FILE_PATH uses $VAR, which is not set, so the QCS clients refuse the path", "nothing written", ("QCS_SECRETS_FILE_PATH uses $QCS_NOT_SET, which is not set",)),
    Entry("secrets-path-relative", "files", "`status`/`install` exit 2: a relative path names a different file in each kernel's folder → use an absolute path", "nothing written", ("is a relative path", "absolute path")),
    Entry("settings-path-home-variable", "files", "`install` writes where the clients read: `$HOME/...` and `${HOME}/...` are expanded", "written under the home directory, no folder named `$HOME`", ("Installed credentials",)),
    Entry("profile-not-in-settings", "files", "`status` exits 1: settings.toml has no [profiles.NAME]; the QCS client refuses to load it", KEPT, ("has no [profiles.nope]", "refuses to load it")),
    Entry("profiles-not-a-table", "files", "`install` exits 2: `profiles` is a str, not a table → fix or remove it", REFUSED, ("`profiles` is a str, not a table", "Fix or remove `profiles`")),
    Entry("credentials-client-credentials", "files", "`status` warns: holds no token_payload; `install` notes it replaced the client_credentials", "other profiles unchanged; `[credentials.<p>.client_credentials]` replaced (the SDK takes one kind)", ("holds no token_payload", "replaced [credentials.default.client_credentials] with a token_payload")),
    Entry("auth-server-without-issuer", "files", "`status` exits 1 (not usable, however valid the token): [auth_servers.default] lacks issuer; the QCS client refuses the file → add it or remove the table", KEPT, ("lacks issuer", "the QCS client refuses the file", "Add the missing key")),
    Entry("issuer-trailing-slash", "files", "`status`: the issuer ends with '/'; token refresh will fail → remove it", KEPT, ("ends with '/'", "Remove the trailing slash")),
    Entry("secrets-world-readable", "files", "`status` warns: can be read by other users (mode 0644) → chmod 600 PATH", KEPT, ("can be read by other users (mode 0644)", "chmod 600")),
    Entry("secrets-empty", "files", "`status` exits 1: secrets.toml has no [credentials.default.token_payload] → get new credentials", KEPT, ("has no [credentials.default.token_payload]", "qcs-jupyter install")),
    Entry("settings-huge", "files", "`install` works on a 1 MB settings.toml in seconds", "every user line kept, in order", ("Installed credentials",)),
    Entry("dotted-keys-captured", "files", "`install` exits 2: cannot be updated without changing the meaning of keys outside our profile (dotted keys) → rewrite them as [table] sections", REFUSED, ("dotted keys", "Rewrite the dotted keys as [table] sections")),
    Entry("default-profile-name-comment-leak", "files", "`install` succeeds", "the user's `default_profile_name` line keeps its bytes (no comment copied onto it)", ("Installed credentials",)),
    Entry("backups-pruned", "files", "`install` into a corrupt file a sixth time notes the new backup", "only the newest 3 `NAME.corrupt-*` / `NAME.replaced-*` backups of each file are kept (they hold tokens)", ("secrets.toml.corrupt-",)),
    Entry("out-of-order-tables-regrouped", "files", "`install` succeeds", "every line and value kept; a table family split by `[[array]]` tables is regrouped (TOML meaning unchanged)", ("Installed credentials",)),
    # --- the tokens in the file ------------------------------------------------------------------------------------
    Entry("access-token-not-jwt", "tokens", "`status` exits 1: the access token is not a JWT; the QCS client will treat it as expired", KEPT, ("The access token is not a JWT",)),
    Entry("jwt-without-exp", "tokens", "`status` exits 1: the access token has no usable exp claim", KEPT, ("has no usable exp claim",)),
    Entry("jwt-exp-string", "tokens", "`status` exits 1: has no usable exp claim (exp is a string)", KEPT, ("has no usable exp claim",)),
    Entry("expired-no-refresh", "tokens", "`status` exits 1: the access token expired at TIME; there is no refresh token → restart from the QCS panel, or `qcs-jupyter install`", KEPT, ("The access token expired at", "There is no refresh token", "Restart your server")),
    Entry("access-token-absurd-exp", "tokens", "`status` warns: claims to be valid until YEAR, longer than any issuer grants; `install` of fresh tokens replaces it", "replaced by the fresh token (never kept as newer)", ("longer than any issuer grants", "Installed credentials")),
    Entry("refresh-token-over-90-days", "tokens", "`status`: the refresh token is 100 days old; QCS refresh tokens last 90 days", KEPT, ("is 100 days old", "last 90 days")),
    # --- `qcs-jupyter install TOKEN_JSON` ------------------------------------------------------------------------------
    Entry("install-garbage-json", "install", "exit 1: TOKEN_JSON is not a usable token response: not valid JSON: MSG at line L column C", KEPT, ("is not a usable token response", "not valid JSON", "line 1 column 2")),
    Entry("install-json-array", "install", "exit 1: expected a JSON object with an access_token, got list", KEPT, ("expected a JSON object with an access_token, got list",)),
    Entry("install-missing-access-token", "install", "exit 1: the token response has no access_token", KEPT, ("has no access_token",)),
    Entry("install-access-token-not-string", "install", "exit 1: no access_token (a non-empty string is required)", KEPT, ("a non-empty string is required",)),
    Entry("install-negative-expires-in", "install", "exit 1: expires_in must be a non-negative integer number of seconds, got -5", KEPT, ("expires_in must be a non-negative integer", "got -5")),
    Entry("install-unknown-wrapper", "install", "exit 1: the token response has no access_token (only `token_payload` wrappers are unwrapped)", KEPT, ("has no access_token",)),
    Entry("install-file-missing", "install", "exit 2: cannot read PATH: No such file or directory", KEPT, ("cannot read", "No such file or directory")),
    Entry("install-api-url-not-http", "install", "exit 1: --api-url must be an http(s) URL (so must --issuer)", KEPT, ("--api-url must be an http(s) URL",)),
    Entry("install-issuer-without-client-id", "install", "exit 1: --issuer and --client-id go together", KEPT, ("--issuer and --client-id go together",)),
    # --- the Hub's handoff document -------------------------------------------------------------------------------------
    Entry("handoff-wrong-version", "handoff", "ValueError: the Hub sent a credentials document this version of qcs-jupyter does not understand", KEPT, ("does not understand",)),
    Entry("handoff-unknown-mode", "handoff", "ValueError: unknown credentials mode 'both' from the Hub", KEPT, ("unknown credentials mode 'both'",)),
    Entry("handoff-missing-token", "handoff", "ValueError: ... does not understand", KEPT, ("does not understand",)),
    Entry("handoff-token-without-access-token", "handoff", "ValueError: the token response has no access_token", KEPT, ("has no access_token",)),
    Entry("handoff-missing-auth-server", "handoff", "ValueError: the Hub sent no issuer/client_id", KEPT, ("no issuer/client_id",)),
    Entry("handoff-auth-server-not-object", "handoff", "ValueError naming issuer/client_id", KEPT, ("issuer/client_id",)),
    Entry("handoff-bad-timestamp", "handoff", "ValueError naming the field access_token_obtained_at", KEPT, ("access_token_obtained_at",)),
    # --- the server's link to the Hub -----------------------------------------------------------------------------------
    Entry("hub-unreachable", "hub", "panel/log: JupyterHub did not answer (Connection refused); your current credentials are kept", KEPT, ("JupyterHub did not answer", "Connection refused", "your current credentials are kept")),
    Entry("hub-401", "hub", "Your QCS login has ended (MSG). Log in again to JupyterHub to get new QCS credentials.", KEPT, ("QCS login has ended (token expired)", "Log in again")),
    Entry("hub-403", "hub", "JupyterHub refused this server (MSG). Is the Hub using QCSAuthenticator, and was this server started by it? Restart your server.", KEPT, ("JupyterHub refused this server (not yours)", "Restart your server")),
    Entry("hub-404", "hub", "JupyterHub has no QCS route (MSG). Is the Hub using QCSAuthenticator (qcs-jupyter)?", KEPT, ("has no QCS route", "QCSAuthenticator")),
    Entry("hub-500", "hub", "JupyterHub answered HTTP 500 (MSG); your current credentials are kept.", KEPT, ("JupyterHub answered HTTP 500 (boom)", "your current credentials are kept")),
    Entry("hub-502-html", "hub", "JupyterHub answered HTTP 502 (Bad Gateway); your current credentials are kept.", KEPT, ("JupyterHub answered HTTP 502 (Bad Gateway)",)),
    Entry("hub-bad-document", "hub", "the Hub sent a credentials document this version of qcs-jupyter does not understand", KEPT, ("does not understand",)),
    Entry("hub-api-url-not-http", "hub", "JUPYTERHUB_API_URL is not an http(s) URL: 'hub:8081'", KEPT, ("JUPYTERHUB_API_URL is not an http(s) URL",)),
    Entry("hub-200-not-json", "hub", "an error saying the Hub's answer is not JSON", KEPT, ("not JSON",)),
    Entry("hub-auth-server-not-object", "hub", "pull_blocking() returns False and records issuer/client_id", KEPT, ("issuer/client_id",)),
]
# fmt: on

QCS_SETTINGS = """\
default_profile_name = "default"

[profiles.default]
api_url = "https://api.qcs.rigetti.com"
auth_server_name = "default"
credentials_name = "default"

[auth_servers.default]
client_id = "0oa3ykoirzDKpkfzk357"
issuer = "https://auth.qcs.rigetti.com/oauth2/aus8jcovzG0gW2TUG355"
"""


# --- the harness ---------------------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    home: Path
    qcs: Path
    tmp: Path
    make_jwt: Callable[..., str]
    token_response: Callable[..., dict]
    capsys: Any
    monkeypatch: pytest.MonkeyPatch
    hub: Any = None

    @property
    def settings(self) -> Path:
        return self.qcs / "settings.toml"

    @property
    def secrets(self) -> Path:
        return self.qcs / "secrets.toml"

    def cli(self, *argv: str, stdin: str | None = None) -> tuple[int, str]:
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli_main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out + err

    def install_valid(self, **kw: Any) -> None:
        """Real credentials, as a first install writes them."""
        CredentialStore().install(TokenSet.from_response(self.token_response(**kw)))

    def tokens_file(self, **kw: Any) -> str:
        path = self.tmp / f"tokens-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(self.token_response(**kw)))
        return str(path)

    def write(self, settings: str | bytes | None = QCS_SETTINGS, secrets: str | bytes | None = None) -> None:
        self.qcs.mkdir(mode=0o700, exist_ok=True)
        for path, data in ((self.settings, settings), (self.secrets, secrets)):
            if data is not None:
                path.write_bytes(data.encode() if isinstance(data, str) else data)
                path.chmod(0o600)

    def payload(self, *lines: str, access: str | None = None, refresh: str | None = "refresh-1") -> str:
        """A secrets.toml with a valid access token unless overridden; extra raw TOML lines appended."""
        body = [f'access_token = "{access if access is not None else self.make_jwt(3600)}"']
        if refresh:
            body.append(f'refresh_token = "{refresh}"')
        return "[credentials.default.token_payload]\n" + "\n".join([*body, *lines]) + "\n"


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under ``root`` (not following links): file bytes, link targets, directories, FIFOs."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo",)
            else:
                out[rel] = path.read_bytes()
    return out


def assert_kept(before: dict[str, Any], root: Path) -> None:
    """Every pre-existing entry is still there, byte for byte (new files such as the lock may appear)."""
    after = snapshot(root)
    for rel, value in before.items():
        assert after.get(rel) == value, f"{rel} changed"


def assert_lines_kept_in_order(original: bytes, after: bytes) -> None:
    """Every line of ``original``, with its line ending, is a whole line of ``after``, in the same order."""
    remaining = iter(after.splitlines(keepends=True))
    for line in original.splitlines(keepends=True):
        assert any(candidate == line for candidate in remaining), f"{line!r} lost or changed:\n{after.decode()}"


def backups(qcs: Path, name: str) -> list[Path]:
    return sorted(qcs.glob(f"{name}.corrupt-*"))


# --- scenarios: the files ---------------------------------------------------------------------------------------------------
def _corrupt(ctx: Ctx, name: str, content: bytes) -> str:
    ctx.install_valid()
    (ctx.qcs / name).write_bytes(content)
    before = snapshot(ctx.tmp)
    code, status_text = ctx.cli("status")
    assert code == 2
    assert_kept(before, ctx.tmp)  # status only reads
    code, install_text = ctx.cli("install", ctx.tokens_file(exp_in=7200))
    assert code == 0, install_text
    [backup] = backups(ctx.qcs, name)
    assert backup.read_bytes() == content  # the corrupt content is kept, byte for byte
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert str(backup) in install_text
    tomlkit.parse((ctx.qcs / name).read_text())  # replaced by a valid file
    return status_text + install_text


def _refused(ctx: Ctx, setup: Callable[[Ctx], None], *, status_code: int | None = 2) -> str:
    setup(ctx)
    before = snapshot(ctx.tmp)
    text = ""
    if status_code is not None:
        code, text = ctx.cli("status")
        assert code == status_code, text
    code, install_text = ctx.cli("install", ctx.tokens_file(exp_in=7200))
    assert code == 2, install_text
    assert_kept(before, ctx.tmp)
    return text + install_text


def _link_outside(ctx: Ctx, name: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        ctx.install_valid()
        outside = ctx.tmp / "outside.toml"
        outside.write_text("precious = true\n")
        (ctx.qcs / name).unlink()
        (ctx.qcs / name).symlink_to(outside)

    return setup


def _make_dir(name: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        ctx.install_valid()
        (ctx.qcs / name).unlink()
        (ctx.qcs / name).mkdir()
        (ctx.qcs / name / "keep.txt").write_text("mine\n")

    return setup


def s_qcs_dir_symlink(ctx: Ctx) -> str:
    real = ctx.tmp / "elsewhere"
    real.mkdir()
    (ctx.home / ".qcs").symlink_to(real)
    before = snapshot(ctx.tmp)
    code, text = ctx.cli("install", ctx.tokens_file())
    assert code == 2
    assert_kept(before, ctx.tmp)
    assert list(real.iterdir()) == []
    return text


def s_dangling(ctx: Ctx) -> str:
    def setup(ctx: Ctx) -> None:
        ctx.install_valid()
        ctx.secrets.unlink()
        ctx.secrets.symlink_to(ctx.tmp / "nowhere.toml")

    text = _refused(ctx, setup)
    assert not (ctx.tmp / "nowhere.toml").exists()
    return text


OTHER_UID = 12345  # a uid and gid nobody on the machine has


def _dir_changes(which: str, change: Callable[[Path], None]) -> Callable[[Ctx], str]:
    """Credentials installed into a directory (``~/.qcs``, or the one QCS_<WHICH>_FILE_PATH names) that then
    changes hands or modes; both `status` and `install` must refuse it."""

    def scenario(ctx: Ctx) -> str:
        if os.geteuid() != 0:
            pytest.skip("making a directory owned by another user needs root")
        directory = ctx.qcs
        if which != "default":
            directory = ctx.tmp / "shared" / "qcs"
            ctx.monkeypatch.setenv(f"QCS_{which.upper()}_FILE_PATH", str(directory / f"{which}.toml"))

        def setup(ctx: Ctx) -> None:
            ctx.install_valid()
            change(directory)

        return _refused(ctx, setup)

    return scenario


def _owned_by_other(directory: Path) -> None:
    os.chown(directory, OTHER_UID, -1)


def _group_writable(directory: Path) -> None:
    os.chown(directory, -1, OTHER_UID)
    directory.chmod(0o770)


def s_under_sticky_tmp(ctx: Ctx) -> str:
    tmp = ctx.tmp / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    ctx.monkeypatch.setenv("QCS_SECRETS_FILE_PATH", str(tmp / "qcs" / "secrets.toml"))
    code, text = ctx.cli("install", ctx.tokens_file())
    assert code == 0, text
    assert stat.S_IMODE((tmp / "qcs").stat().st_mode) == 0o700
    code, status_text = ctx.cli("status")
    assert code == 0, status_text
    return text


def s_fifo(ctx: Ctx) -> str:
    def setup(ctx: Ctx) -> None:
        ctx.install_valid()
        ctx.secrets.unlink()
        os.mkfifo(ctx.secrets, 0o600)

    return _refused(ctx, setup)


def s_read_only(ctx: Ctx) -> str:
    ctx.install_valid(refresh="r1")
    before = snapshot(ctx.tmp)
    with read_only(ctx.qcs):
        code, text = ctx.cli("install", ctx.tokens_file(exp_in=7200, refresh="r2"))
        assert code == 2, text
        code, status_text = ctx.cli("status")  # still readable, still usable
        assert code == 0, status_text
    assert_kept(before, ctx.tmp)
    return text


def s_disk_full(ctx: Ctx) -> str:
    ctx.install_valid(refresh="r1")
    before = snapshot(ctx.tmp)

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with ctx.monkeypatch.context() as mp:
        mp.setattr(os, "write", full)
        code, text = ctx.cli("install", ctx.tokens_file(exp_in=7200, refresh="r2"))
    assert code == 2, text
    assert_kept(before, ctx.tmp)
    assert not [p for p in ctx.qcs.iterdir() if p.name.endswith(".tmp")]
    return text


def _status(ctx: Ctx, secrets: str, *, settings: str = QCS_SETTINGS, code: int | None = 1, mode: int = 0o600) -> str:
    ctx.write(settings, secrets)
    ctx.secrets.chmod(mode)
    before = snapshot(ctx.tmp)
    got, text = ctx.cli("status")
    if code is not None:
        assert got == code, text
    assert_kept(before, ctx.tmp)
    return text


def s_profiles_not_table(ctx: Ctx) -> str:
    return _refused(ctx, lambda c: c.write('profiles = "x"\n', c.payload()), status_code=None)


def s_client_credentials(ctx: Ctx) -> str:
    other = '[credentials.robot.client_credentials]\nclient_id = "robot"\nclient_secret = "shh"\n'
    ctx.write(QCS_SETTINGS, other + '[credentials.default.client_credentials]\nclient_id = "c"\nclient_secret = "s"\n')
    code, text = ctx.cli("status")
    assert code == 1
    code, install_text = ctx.cli("install", ctx.tokens_file())
    assert code == 0
    data = tomlkit.parse(ctx.secrets.read_text()).unwrap()["credentials"]
    assert data["robot"] == {"client_credentials": {"client_id": "robot", "client_secret": "shh"}}
    assert list(data["default"]) == ["token_payload"]
    return text + install_text


def s_huge(ctx: Ctx) -> str:
    lines = ["# a big settings file"]
    for i in range(400):
        lines += [f"[profiles.p{i}]", f'api_url = "https://api{i}.example"  # profile {i}']
        lines += [f'key{j} = "{"x" * 40}-{i}-{j}"' for j in range(60)]
    original = "\n".join(lines) + "\n"
    assert len(original) > 1_000_000
    ctx.write(original, None)
    # Correctness only: how fast a 1 MB file installs is a figure for bench/, not a timed test.
    code, text = ctx.cli("install", ctx.tokens_file())
    assert code == 0, text
    assert_lines_kept_in_order(original.encode(), ctx.settings.read_bytes())
    return text


def s_dotted_keys(ctx: Ctx) -> str:
    original = 'profiles.prod.api_url = "https://api.example"\ndefault_profile_name = "prod"\n'
    ctx.write(original, None)
    code, text = ctx.cli("install", ctx.tokens_file(), "--profile", "lab")
    assert code == 2, text
    assert ctx.settings.read_text() == original
    return text


def s_comment_leak(ctx: Ctx) -> str:
    original = b'default_profile_name = "default"\n\n[profiles.default]\ncredentials_name = "default"  # set by me\n'
    ctx.write(original, None)
    code, text = ctx.cli("install", ctx.tokens_file())
    assert code == 0, text
    after = ctx.settings.read_bytes()
    # Nothing to move here: the user's file is kept as its first bytes, every one of them (the comment stays on
    # its own line and is not copied onto default_profile_name), and what install adds comes after it.
    assert after.startswith(original), after.decode()
    assert after.count(b"# set by me") == 1
    return text


def s_regrouped(ctx: Ctx) -> str:
    blocks = [b"[profiles.a]\nx = 1\n", b"[[plugins]]\nmine = 1\n", b'[profiles.b]\napi_url = "y"\n']
    original = b"".join(blocks)
    ctx.write(original, None)
    code, text = ctx.cli("install", ctx.tokens_file())
    assert code == 0, text
    raw = ctx.settings.read_bytes()
    after = raw.decode()
    # The tables move as wholes: each keeps its bytes (header and body together); the profiles keep their order.
    for block in blocks:
        assert block in raw, f"{block!r} is not kept byte for byte:\n{after}"
    assert_lines_kept_in_order(blocks[0] + blocks[2], raw)
    data = tomlkit.parse(after).unwrap()
    assert (
        data["plugins"] == [{"mine": 1}]
        and data["profiles"]["a"] == {"x": 1}
        and data["profiles"]["b"] == {"api_url": "y"}
    )
    return text


def _not_shown(text: str, *values: str) -> str:
    for value in values:
        assert value not in text, f"{value!r} shown to the user"
    return text


def s_token_in_wrong_key(ctx: Ctx) -> str:
    token = ctx.make_jwt(3600)
    text = _status(ctx, ctx.payload(f'expires_in = "{token}"'))
    code, json_text = ctx.cli("status", "--json")
    assert code == 1
    return _not_shown(text + json_text, token, *token.split("."))


def _bad_path(ctx: Ctx, name: str, value: str) -> str:
    """A QCS_*_FILE_PATH the clients cannot resolve: refused by status and install, nothing written anywhere."""
    ctx.install_valid()
    work = ctx.tmp / "cwd"
    work.mkdir()
    ctx.monkeypatch.chdir(work)
    tokens = ctx.tokens_file(exp_in=7200)
    ctx.monkeypatch.setenv(name, value)
    before = snapshot(ctx.tmp)
    code, text = ctx.cli("status")
    assert code == 2, text
    code, install_text = ctx.cli("install", tokens)
    assert code == 2, install_text
    assert set(snapshot(ctx.tmp)) == set(before), "a file or folder was created"
    assert_kept(before, ctx.tmp)
    return text + install_text


def s_home_variable(ctx: Ctx) -> str:
    ctx.monkeypatch.chdir(ctx.tmp)
    ctx.monkeypatch.setenv("QCS_SETTINGS_FILE_PATH", "$HOME/cfg/settings.toml")
    ctx.monkeypatch.setenv("QCS_SECRETS_FILE_PATH", "${HOME}/cfg/secrets.toml")
    code, text = ctx.cli("install", ctx.tokens_file())
    assert code == 0, text
    assert (ctx.home / "cfg" / "settings.toml").is_file() and (ctx.home / "cfg" / "secrets.toml").is_file()
    assert not [p for p in ctx.tmp.rglob("*") if p.name.startswith("$")]
    return text


def s_backups_pruned(ctx: Ctx) -> str:
    ctx.install_valid()
    text = ""
    for i in range(6):
        ctx.secrets.write_text(f"broken {i} = [\n")
        code, text = ctx.cli("install", ctx.tokens_file(exp_in=3600 + 60 * i))
        assert code == 0, text
    kept = backups(ctx.qcs, "secrets.toml")
    assert [p.read_text() for p in kept] == [f"broken {i} = [\n" for i in (3, 4, 5)]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
    return text


# --- scenarios: the tokens ----------------------------------------------------------------------------------------------
def s_absurd_exp(ctx: Ctx) -> str:
    ctx.write(QCS_SETTINGS, ctx.payload(access=ctx.make_jwt(200 * 365 * 86400)))
    code, text = ctx.cli("status")
    assert code == 0, text  # the clients do not verify tokens: it "works" for them
    fresh = ctx.tokens_file(exp_in=3600)
    code, install_text = ctx.cli("install", fresh)
    assert code == 0 and "already holds newer" not in install_text, install_text
    written = tomlkit.parse(ctx.secrets.read_text()).unwrap()["credentials"]["default"]["token_payload"]
    assert written["access_token"] == json.loads(Path(fresh).read_text())["access_token"]  # the fresh one, in the file
    return text + install_text


def s_refresh_old(ctx: Ctx) -> str:
    old = rfc3339(datetime.now(timezone.utc) - timedelta(days=100))
    return _status(ctx, ctx.payload(f'updated_at = "{old}"'), code=0)


# --- scenarios: install input ---------------------------------------------------------------------------------------------
def _bad_install(ctx: Ctx, payload: str, *extra: str, code: int = 1) -> str:
    ctx.install_valid()
    before = snapshot(ctx.tmp)
    got, text = ctx.cli("install", "-", *extra, stdin=payload)
    assert got == code, text
    assert_kept(before, ctx.tmp)
    return text


def s_install_missing_file(ctx: Ctx) -> str:
    ctx.install_valid()
    before = snapshot(ctx.tmp)
    code, text = ctx.cli("install", str(ctx.tmp / "no-such-tokens.json"))
    assert code == 2
    assert_kept(before, ctx.tmp)
    return text


# --- scenarios: handoff documents --------------------------------------------------------------------------------------------
def handoff_doc(ctx: Ctx, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 2,
        "mode": "hub",
        "token": {"access_token": ctx.make_jwt(3600), "token_type": "Bearer", "expires_in": 3600},
        "access_token_obtained_at": rfc3339(datetime.now(timezone.utc)),
        "refresh_token_held_by_hub": True,
        "auth_server": {"issuer": "https://idp.example/o", "client_id": "c1"},
        "api_url": None,
        "grpc_api_url": None,
        "profile": None,
        "refresh_error": None,
    }
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


def _handoff(ctx: Ctx, **changes: Any) -> str:
    with pytest.raises(ValueError, match=r".") as err:
        parse_payload(handoff_doc(ctx, **changes))
    return str(err.value)


# --- scenarios: the Hub link -------------------------------------------------------------------------------------------------
class _Hub(ThreadingHTTPServer):
    answer: tuple[int, str, bytes] = (200, "application/json", b"{}")


class _Handler(BaseHTTPRequestHandler):
    server: _Hub

    def _reply(self) -> None:
        status, ctype, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hub_server() -> Iterator[_Hub]:
    server = _Hub(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _link(api_url: str) -> QCSHubClient:
    return QCSHubClient(
        api_url=api_url, api_token="server-token", user="ada", timeout=5, log=logging.getLogger("qcs-hardening")
    )


def _pull(ctx: Ctx, api_url: str) -> str:
    ctx.install_valid()
    before = snapshot(ctx.tmp)
    link = _link(api_url)
    assert link.pull_blocking() is False
    assert_kept(before, ctx.tmp)
    assert link.state.last_sync_error
    return link.state.last_sync_error


def _hub_answer(status: int, body: bytes | dict, ctype: str = "application/json") -> Callable[[Ctx], str]:
    def scenario(ctx: Ctx) -> str:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        ctx.hub.answer = (status, ctype, data)
        return _pull(ctx, f"http://127.0.0.1:{ctx.hub.server_address[1]}/hub/api")

    return scenario


def s_hub_unreachable(ctx: Ctx) -> str:
    with socket.socket() as s:  # a port that was just free: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return _pull(ctx, f"http://127.0.0.1:{port}/hub/api")


def s_hub_server_not_object(ctx: Ctx) -> str:
    doc = handoff_doc(ctx, auth_server="https://idp.example/o")
    return _hub_answer(200, doc)(ctx)


SCENARIOS: dict[str, Callable[[Ctx], str]] = {
    "settings-not-toml": lambda c: _corrupt(c, "settings.toml", b"[profiles.default\napi_url = 1\n"),
    "secrets-not-toml": lambda c: _corrupt(
        c, "secrets.toml", b'[credentials.default.token_payload]\naccess_token = "x\n'
    ),
    "settings-not-utf8": lambda c: _corrupt(c, "settings.toml", b"\xff\xfe not utf-8 \x80\n"),
    "secrets-not-utf8": lambda c: _corrupt(c, "secrets.toml", b'access_token = "caf\xe9"\n'),
    "secrets-is-directory": lambda c: _refused(c, _make_dir("secrets.toml")),
    "settings-is-directory": lambda c: _refused(c, _make_dir("settings.toml")),
    "secrets-symlink": lambda c: _refused(c, _link_outside(c, "secrets.toml")),
    "settings-symlink": lambda c: _refused(c, _link_outside(c, "settings.toml")),
    "qcs-dir-symlink": s_qcs_dir_symlink,
    "dangling-symlink": s_dangling,
    "qcs-dir-other-owner": _dir_changes("default", _owned_by_other),
    "secrets-dir-other-owner": _dir_changes("secrets", _owned_by_other),
    "settings-dir-other-owner": _dir_changes("settings", _owned_by_other),
    "secrets-dir-group-writable": _dir_changes("secrets", _group_writable),
    "secrets-dir-world-writable-sticky": _dir_changes("secrets", lambda d: d.chmod(0o1777)),
    "secrets-dir-under-world-writable": _dir_changes("secrets", lambda d: d.parent.chmod(0o777)),
    "secrets-dir-under-sticky-tmp": s_under_sticky_tmp,
    "secrets-fifo": s_fifo,
    "qcs-read-only": s_read_only,
    "disk-full": s_disk_full,
    "expires-in-string": lambda c: _status(c, c.payload('expires_in = "3600"')),
    "expires-in-bool": lambda c: _status(c, c.payload("expires_in = true")),
    "expires-in-float": lambda c: _status(c, c.payload("expires_in = 3600.0")),
    "expires-in-over-u32": lambda c: _status(c, c.payload("expires_in = 4294967296")),
    "updated-at-nine-digits": lambda c: _status(c, c.payload('updated_at = "2026-11-30T01:09:03.523448774Z"'), code=0),
    "token-pasted-into-wrong-key": s_token_in_wrong_key,
    "settings-path-tilde": lambda c: _bad_path(c, "QCS_SETTINGS_FILE_PATH", "~/qcs/settings.toml"),
    "secrets-path-unset-variable": lambda c: _bad_path(c, "QCS_SECRETS_FILE_PATH", "$QCS_NOT_SET/secrets.toml"),
    "secrets-path-relative": lambda c: _bad_path(c, "QCS_SECRETS_FILE_PATH", "qcs/secrets.toml"),
    "settings-path-home-variable": s_home_variable,
    "profile-not-in-settings": lambda c: _status(
        c, c.payload(), settings=QCS_SETTINGS.replace('profile_name = "default"', 'profile_name = "nope"')
    ),
    "updated-at-bare-datetime": lambda c: _status(c, c.payload("updated_at = 2026-01-01T00:00:00Z")),
    "updated-at-not-rfc3339": lambda c: _not_shown(_status(c, c.payload('updated_at = "yesterday"')), "yesterday"),
    "profiles-not-a-table": s_profiles_not_table,
    "credentials-client-credentials": s_client_credentials,
    "auth-server-without-issuer": lambda c: _status(
        c, c.payload(), settings=QCS_SETTINGS.replace('issuer = "https://auth', '# issuer = "https://auth'), code=1
    ),
    "issuer-trailing-slash": lambda c: _status(c, c.payload(), settings=QCS_SETTINGS.replace('355"', '355/"'), code=0),
    "secrets-world-readable": lambda c: _status(c, c.payload(), code=0, mode=0o644),
    "secrets-empty": lambda c: _status(c, ""),
    "settings-huge": s_huge,
    "dotted-keys-captured": s_dotted_keys,
    "default-profile-name-comment-leak": s_comment_leak,
    "backups-pruned": s_backups_pruned,
    "out-of-order-tables-regrouped": s_regrouped,
    "access-token-not-jwt": lambda c: _status(c, c.payload(access="opaque-token", refresh=None)),
    "jwt-without-exp": lambda c: _status(c, c.payload(access=c.make_jwt(None), refresh=None)),
    "jwt-exp-string": lambda c: _status(c, c.payload(access=c.make_jwt(None, exp="2030-01-01"), refresh=None)),
    "expired-no-refresh": lambda c: _status(c, c.payload(access=c.make_jwt(-3600), refresh=None)),
    "access-token-absurd-exp": s_absurd_exp,
    "refresh-token-over-90-days": s_refresh_old,
    "install-garbage-json": lambda c: _bad_install(c, "{not json"),
    "install-json-array": lambda c: _bad_install(c, "[1, 2]"),
    "install-missing-access-token": lambda c: _bad_install(c, '{"refresh_token": "r"}'),
    "install-access-token-not-string": lambda c: _bad_install(c, '{"access_token": 5}'),
    "install-negative-expires-in": lambda c: _bad_install(c, '{"access_token": "a", "expires_in": -5}'),
    "install-unknown-wrapper": lambda c: _bad_install(c, json.dumps({"tokens": c.token_response()})),
    "install-file-missing": s_install_missing_file,
    "install-api-url-not-http": lambda c: _bad_install(
        c, json.dumps(c.token_response(exp_in=7200)), "--api-url", "api.qcs.rigetti.com"
    ),
    "install-issuer-without-client-id": lambda c: _bad_install(
        c, json.dumps(c.token_response(exp_in=7200)), "--issuer", "https://idp.example/o"
    ),
    "handoff-wrong-version": lambda c: _handoff(c, version=1),
    "handoff-unknown-mode": lambda c: _handoff(c, mode="both"),
    "handoff-missing-token": lambda c: _handoff(c, token=_DROP),
    "handoff-token-without-access-token": lambda c: _handoff(c, token={"token_type": "Bearer"}),
    "handoff-missing-auth-server": lambda c: _handoff(c, auth_server=_DROP),
    "handoff-auth-server-not-object": lambda c: _handoff(c, auth_server="https://idp.example/o"),
    "handoff-bad-timestamp": lambda c: _handoff(c, access_token_obtained_at="yesterday"),
    "hub-unreachable": s_hub_unreachable,
    "hub-401": _hub_answer(401, {"message": "token expired"}),
    "hub-403": _hub_answer(403, {"message": "not yours"}),
    "hub-404": _hub_answer(404, {"message": "no such user"}),
    "hub-500": _hub_answer(500, {"message": "boom"}),
    "hub-502-html": _hub_answer(502, b"<html><body>Bad Gateway</body></html>", "text/html"),
    "hub-bad-document": _hub_answer(200, {"version": 1, "token": {}}),
    "hub-api-url-not-http": lambda c: _pull(c, "hub:8081"),
    "hub-200-not-json": _hub_answer(200, b"<html>JupyterHub</html>", "text/html"),
    "hub-auth-server-not-object": s_hub_server_not_object,
}


def _params() -> list[Any]:
    marks = {
        e.id: [pytest.mark.xfail(strict=True, reason=e.bug, raises=(AssertionError, AttributeError))] if e.bug else []
        for e in CATALOGUE
    }
    return [pytest.param(e, id=e.id, marks=marks[e.id]) for e in CATALOGUE]


@pytest.fixture
def ctx(home, qcs_dir, tmp_path, make_jwt, token_response, capsys, monkeypatch, hub_server) -> Ctx:
    return Ctx(home, qcs_dir, tmp_path, make_jwt, token_response, capsys, monkeypatch, hub_server)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("entry", _params())
def test_bad_input(entry: Entry, ctx: Ctx) -> None:
    text = SCENARIOS[entry.id](ctx)
    missing = [needle for needle in entry.needles if needle not in text]
    assert missing == [], f"{entry.id}: the user sees {text!r}"


def test_catalogue_and_scenarios_match() -> None:
    ids = [e.id for e in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(SCENARIOS)
    assert len(ids) >= 25
    assert {e.layer for e in CATALOGUE} == {"files", "tokens", "install", "handoff", "hub"}


def test_docs_list_every_catalogue_entry() -> None:
    text = TABLE_PAGE.read_text(encoding="utf-8")
    assert TABLE_HEADING in text
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line.strip() for line in section.splitlines() if line.startswith("| `")]
    listed = [row.split("`")[1] for row in rows]
    assert listed == [e.id for e in CATALOGUE], "the docs' table rows must follow CATALOGUE, one per entry, in order"
    # Whole rows, not just ids: what the user sees and what happens to the files must match the catalogue too.
    for row, entry in zip(rows, CATALOGUE, strict=True):
        assert row == f"| `{entry.id}` ({entry.layer}) | {entry.sees} | {entry.files} |", entry.id
