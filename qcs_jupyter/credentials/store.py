"""The one model of ``~/.qcs``: read it, and merge a token set into it without losing anything else.

Used alike by the Hub side, the server extension and the CLI. Writes touch only our profile's tables
(``profiles.<p>``, ``auth_servers.<p>``, ``credentials.<p>``); every other byte of both files is kept
(tomlkit round-trips comments, order and formatting).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli as tomllib  # the standard library's parser, compiled (see pyproject.toml)
import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Table

from ..qcs import QCS_API_URL, QCS_CLIENT_ID, QCS_GRPC_API_URL, QCS_ISSUER
from . import safefile
from .errors import CredentialFileError
from .paths import DEFAULT_PROFILE, QCSPaths, profile_from_env
from .tokens import TOKEN_FIELDS, TokenSet, fingerprint, implausible_expiry, jwt_expiry, parse_rfc3339, rfc3339

METADATA_NAME = ".qcs-jupyter.json"
_OTHER_CREDENTIAL_KINDS = ("client_credentials", "externally_managed")
_MAX_MERGE_ATTEMPTS = 5
_QUOTED = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'")


@dataclass(frozen=True)
class AuthServer:
    """An OAuth issuer and public client id, as ``[auth_servers.<name>]`` holds them."""

    issuer: str
    client_id: str

    def __post_init__(self) -> None:
        # The SDK compares the discovery document's issuer verbatim: never a trailing slash.
        object.__setattr__(self, "issuer", self.issuer.rstrip("/"))


@dataclass
class StoreSnapshot:
    """Everything read from the two files for one profile; ``errors`` holds files that could not be used."""

    paths: QCSPaths
    profile: str
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    settings_exists: bool = False
    secrets_exists: bool = False
    settings_mode: int | None = None
    secrets_mode: int | None = None
    errors: list[CredentialFileError] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def profile_table(self) -> dict[str, Any]:
        return _as_dict(_as_dict(self.settings.get("profiles")).get(self.profile))

    @property
    def credentials_name(self) -> str:
        name = self.profile_table.get("credentials_name")
        return name if isinstance(name, str) else DEFAULT_PROFILE

    @property
    def auth_server_name(self) -> str:
        name = self.profile_table.get("auth_server_name")
        return name if isinstance(name, str) else DEFAULT_PROFILE

    @property
    def auth_server(self) -> dict[str, Any] | None:
        table = _as_dict(self.settings.get("auth_servers")).get(self.auth_server_name)
        return table if isinstance(table, dict) else None

    @property
    def credentials(self) -> dict[str, Any] | None:
        table = _as_dict(self.secrets.get("credentials")).get(self.credentials_name)
        return table if isinstance(table, dict) else None

    @property
    def token_payload(self) -> dict[str, Any] | None:
        payload = (self.credentials or {}).get("token_payload")
        return payload if isinstance(payload, dict) else None

    @property
    def metadata_entry(self) -> dict[str, Any]:
        return _as_dict(_as_dict(self.metadata.get("credentials")).get(self.credentials_name))

    @property
    def managed_by(self) -> str | None:
        """Who keeps these credentials fresh and holds the real refresh token (``jupyterhub``), if not the file."""
        value = self.metadata_entry.get("managed_by")
        return value if isinstance(value, str) else None

    def refresh_token_obtained_at(self) -> tuple[datetime | None, bool]:
        """When the file's refresh token was first written, and whether that is only an estimate.

        Recorded by us when we wrote it; if the token has changed since (the SDK rotated it, or the user
        replaced it), ``updated_at`` is the best estimate.
        """
        payload = self.token_payload or {}
        token = payload.get("refresh_token")
        meta = self.metadata_entry
        if self.managed_by:
            # JupyterHub holds the real refresh token; any token in the file is the Hub's session token. The
            # server records the real one's issue time (from the Hub) beside the files.
            try:
                return parse_rfc3339(str(meta["refresh_token_obtained_at"])), False
            except (KeyError, ValueError):
                return None, False
        if not isinstance(token, str) or not token:
            return None, False
        if meta.get("refresh_token_fingerprint") == fingerprint(token):
            try:
                return parse_rfc3339(str(meta["refresh_token_obtained_at"])), False
            except (KeyError, ValueError):
                pass
        updated = payload.get("updated_at")
        if isinstance(updated, str):
            try:
                return parse_rfc3339(updated), True
            except ValueError:
                pass
        return None, True


@dataclass
class WriteResult:
    """What ``install`` did: which files it wrote, what it backed up, what it decided to keep."""

    profile: str
    settings_path: Path
    secrets_path: Path
    tokens_written: bool = False
    settings_written: bool = False
    kept_newer: bool = False
    backups: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class CredentialStore:
    """Reads and merges the QCS client files for one profile.

    ``profile`` overrides ``QCS_PROFILE_NAME``, which overrides the file's ``default_profile_name``.
    """

    def __init__(self, paths: QCSPaths | None = None, profile: str | None = None) -> None:
        self.paths = paths or QCSPaths.from_env()
        self.explicit_profile = profile or profile_from_env()

    # -- reading ---------------------------------------------------------------------------------
    def files_identity(self) -> tuple:
        """A cheap identity (inode, mtime, size) of both files and our metadata, without following links.

        Equal identities mean an earlier ``read()`` is still current: callers that read often cache on it.
        """

        def ident(path: Path) -> tuple[int, int, int, int] | None:
            try:
                st = os.lstat(path)
            except OSError:
                return None
            return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)

        return (
            ident(self.paths.settings.parent),
            ident(self.paths.secrets.parent),
            ident(self.paths.settings),
            ident(self.paths.secrets),
            ident(self.paths.secrets.parent / METADATA_NAME),
        )

    def read(self) -> StoreSnapshot:
        """Read both files; problems with a file are collected in ``errors``, never raised."""
        snap = StoreSnapshot(self.paths, self.explicit_profile or DEFAULT_PROFILE)
        if self.paths.problem:
            snap.errors.append(_path_error(self.paths))
            snap.settings_exists = snap.secrets_exists = True  # unknown: the problem says why
            return snap
        with ExitStack() as stack:
            # One open (and check) of a directory holding both files; one refused is refused for both.
            opened: dict[Path, int | CredentialFileError | None] = {}
            for which in ("settings", "secrets"):
                path: Path = getattr(self.paths, which)
                try:
                    if path.parent not in opened:
                        try:
                            opened[path.parent] = stack.enter_context(
                                safefile.open_dir(path.parent, create=False, tighten=False, home=self.paths.home)
                            )
                        except CredentialFileError as e:
                            opened[path.parent] = e
                    dfd = opened[path.parent]
                    if isinstance(dfd, CredentialFileError):
                        raise dfd
                    fs = safefile.read_file(dfd, path)
                    if which == "secrets" and dfd is not None:
                        snap.metadata = _read_metadata(dfd, path.parent / METADATA_NAME)
                    setattr(snap, f"{which}_exists", fs.text is not None)
                    setattr(snap, f"{which}_mode", fs.mode)
                    if fs.text is not None:
                        setattr(snap, which, _values(path, fs.text, fs.identity))
                except CredentialFileError as e:
                    setattr(snap, f"{which}_exists", True)
                    if not any((e.path, e.message) == (seen.path, seen.message) for seen in snap.errors):
                        snap.errors.append(e)  # one directory holding both files is named once
        if not self.explicit_profile:
            default = snap.settings.get("default_profile_name")
            snap.profile = default if isinstance(default, str) and default else DEFAULT_PROFILE
        return snap

    # -- writing ---------------------------------------------------------------------------------
    def install(
        self,
        tokens: TokenSet,
        *,
        auth_server: AuthServer | None = None,
        api_url: str | None = None,
        grpc_api_url: str | None = None,
    ) -> WriteResult:
        """Merge ``tokens`` (and the auth server) into both files, atomically and under the writer lock.

        Tokens older than the ones the file holds are not written (the SDK may have refreshed them).
        A corrupt file is kept as a timestamped backup beside it and replaced.
        """
        if self.paths.problem:
            raise _path_error(self.paths)
        settings_path, secrets_path = self.paths.settings, self.paths.secrets
        with ExitStack() as stack:
            secrets_fd = stack.enter_context(
                safefile.open_dir(
                    secrets_path.parent, create=True, tighten=self.paths.default_dir, home=self.paths.home
                )
            )
            stack.enter_context(safefile.writer_lock(secrets_path.parent))
            # A writer killed mid-write left its temp file (tokens) behind; under the lock none is in flight. A
            # separate settings directory is left alone: another store may write there under another lock.
            safefile.remove_stale_temp_files(secrets_fd)
            if settings_path.parent == secrets_path.parent:
                settings_fd = secrets_fd
            else:
                settings_fd = stack.enter_context(
                    safefile.open_dir(settings_path.parent, create=True, tighten=False, home=self.paths.home)
                )
            for _ in range(_MAX_MERGE_ATTEMPTS):
                result = WriteResult(self.explicit_profile or DEFAULT_PROFILE, settings_path, secrets_path)
                settings_doc, settings_id = _load_for_write(settings_fd, settings_path, result)
                secrets_doc, secrets_id = _load_for_write(secrets_fd, secrets_path, result)
                profile = self.explicit_profile or _str_or(settings_doc.get("default_profile_name"), DEFAULT_PROFILE)
                result.profile = profile
                settings_changed = _merge_settings(
                    settings_doc, profile, auth_server, api_url, grpc_api_url, settings_path
                )
                tokens_changed, kept_newer, dropped = _merge_secrets(secrets_doc, profile, tokens, secrets_path)
                result.kept_newer = kept_newer
                # Optimistic check: the SDK writes secrets.toml without our lock; never overwrite its refresh.
                if (
                    safefile.current_identity(secrets_fd, secrets_path.name) != secrets_id
                    or safefile.current_identity(settings_fd, settings_path.name) != settings_id
                ):
                    continue
                if tokens_changed or secrets_id is None:
                    text = _render(secrets_doc, secrets_path)
                    if dropped:  # e.g. a client secret the user may still want: keep a copy beside the file
                        backup = safefile.backup_file(
                            secrets_fd, secrets_path, safefile.read_raw(secrets_fd, secrets_path) or b"", "replaced"
                        )
                        result.backups.append(backup)
                        result.notes.append(
                            f"replaced [credentials.{profile}.{dropped}] with a token_payload; the old file was kept in {backup}"
                        )
                    safefile.write_atomic(secrets_fd, secrets_path, text)
                    result.tokens_written = tokens_changed
                    if tokens_changed:
                        _record_metadata(secrets_fd, secrets_path.parent / METADATA_NAME, profile, tokens)
                if settings_changed or settings_id is None:
                    safefile.write_atomic(settings_fd, settings_path, _render(settings_doc, settings_path))
                    result.settings_written = True
                return result
            raise CredentialFileError(
                secrets_path,
                "kept changing while we tried to update it",
                kind="locked",
                action="Another program is rewriting it; try again in a moment.",
            )
        raise AssertionError("unreachable")  # pragma: no cover


def _path_error(paths: QCSPaths) -> CredentialFileError:
    return CredentialFileError(
        paths.problem_var or "QCS_*_FILE_PATH", paths.problem or "", kind="bad_path", action=paths.action or ""
    )


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_or(value: Any, default: str) -> str:
    # A plain str: the file's own tomlkit item would carry its comments along wherever we insert it.
    return str(value) if isinstance(value, str) and value else default


def _render(doc: tomlkit.TOMLDocument, path: Path) -> str:
    """The text to write, checked by a strict TOML parser to mean exactly the data we merged.

    tomlkit can misplace a new table after dotted keys (``a.b = 1``), silently moving a later top-level key
    into our table; such a file is refused rather than changed behind the user's back.
    """
    text = tomlkit.dumps(doc)
    try:
        same = tomllib.loads(text) == doc.unwrap()
    except tomllib.TOMLDecodeError:
        same = False
    if not same:
        raise CredentialFileError(
            path,
            "cannot be updated without changing the meaning of keys outside our profile (it uses dotted keys such as `profiles.x.api_url = ...`)",
            kind="invalid",
            action="Rewrite the dotted keys as [table] sections, then try again; the file was left unchanged.",
        )
    return text


def _parse(path: Path, text: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except TOMLKitError as e:
        # tomlkit quotes the offending key ("Key "<...>" already exists"): a token pasted as a key must not be shown.
        reason = _QUOTED.sub("…", str(e))
        raise CredentialFileError(
            path,
            f"is not valid TOML: {reason}",
            kind="corrupt",
            action="Fix the syntax, or remove the file and restart your server.",
        ) from e


def _values(path: Path, text: str, identity: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """The file's values, for reading only: the strict standard parser, many times faster than tomlkit (the status
    reads the files each time they change). A file it refuses goes through ``_parse``, so the error is tomlkit's,
    worded (and kept free of secrets) as for writing.

    The last values of each path are kept with the file's ``identity`` (inode, mtime, size) and text: a file read
    again unchanged (the other of the two files changed) is not parsed again. They are shared: read, never change
    them."""
    key = str(path)
    kept = _parsed.get(key)
    if identity is not None and kept is not None and kept[0] == identity and kept[1] == text:
        return kept[2]
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _parse(path, text).unwrap()
    if identity is not None:
        if len(_parsed) >= _PARSED_KEPT and key not in _parsed:
            _parsed.clear()
        _parsed[key] = (identity, text, values)
    return values


_parsed: dict[str, tuple[tuple[int, int, int], str, dict[str, Any]]] = {}
_PARSED_KEPT = 16


def _load_for_write(
    dir_fd: int, path: Path, result: WriteResult
) -> tuple[tomlkit.TOMLDocument, tuple[int, int, int] | None]:
    """Parse a file for merging; a corrupt one is backed up and replaced by an empty document."""
    try:
        snap = safefile.read_file(dir_fd, path)
    except CredentialFileError as e:
        if e.kind != "corrupt":
            raise
        return _backup_corrupt(dir_fd, path, safefile.read_raw(dir_fd, path) or b"", e, result)
    if snap.text is None:
        return tomlkit.document(), None
    try:
        return _parse(path, snap.text), snap.identity
    except CredentialFileError as e:
        return _backup_corrupt(dir_fd, path, snap.text, e, result)


def _backup_corrupt(
    dir_fd: int, path: Path, data: str | bytes, error: CredentialFileError, result: WriteResult
) -> tuple[tomlkit.TOMLDocument, tuple[int, int, int] | None]:
    backup = safefile.backup_file(dir_fd, path, data, "corrupt")
    result.backups.append(backup)
    result.notes.append(f"{error.message}; the old content was kept in {backup}")
    return tomlkit.document(), safefile.current_identity(dir_fd, path.name)


def _table(parent: Any, key: str, path: Path, dotted: str, *, super_table: bool = False) -> Table:
    """The table ``parent[key]``, created if missing; a non-table there is refused, never overwritten."""
    if key not in parent:
        parent[key] = tomlkit.table(is_super_table=super_table)
    value = parent[key]
    if not isinstance(value, (Table, dict)) or isinstance(value, list):
        raise CredentialFileError(
            path,
            f"`{dotted}` is a {type(value.unwrap() if hasattr(value, 'unwrap') else value).__name__}, not a table",
            kind="invalid",
            action=f"Fix or remove `{dotted}` in the file.",
        )
    return value


def _set(table: Any, key: str, value: Any) -> bool:
    current = table.get(key)
    current = current.unwrap() if hasattr(current, "unwrap") else current
    if current == value and type(current) is type(value):
        return False
    table[key] = value
    return True


def _merge_settings(
    doc: Any, profile: str, auth_server: AuthServer | None, api_url: str | None, grpc_api_url: str | None, path: Path
) -> bool:
    changed = False
    if "default_profile_name" not in doc:
        doc["default_profile_name"] = profile  # tomlkit places a new top-level key before the tables
        changed = True
    prof = _table(_table(doc, "profiles", path, "profiles", super_table=True), profile, path, f"profiles.{profile}")
    for key, value, override in (("api_url", QCS_API_URL, api_url), ("grpc_api_url", QCS_GRPC_API_URL, grpc_api_url)):
        if override:
            changed |= _set(prof, key, override)
        elif key not in prof:
            changed |= _set(prof, key, value)
    changed |= _set(prof, "auth_server_name", profile)
    changed |= _set(prof, "credentials_name", profile)
    server = _table(
        _table(doc, "auth_servers", path, "auth_servers", super_table=True), profile, path, f"auth_servers.{profile}"
    )
    if auth_server is not None:
        changed |= _set(server, "client_id", auth_server.client_id)
        changed |= _set(server, "issuer", auth_server.issuer)
    else:
        # The SDK requires both keys when the table exists; fill in QCS's own values only where missing.
        if "client_id" not in server:
            changed |= _set(server, "client_id", QCS_CLIENT_ID)
        if "issuer" not in server:
            changed |= _set(server, "issuer", QCS_ISSUER)
    return changed


def _merge_secrets(doc: Any, profile: str, tokens: TokenSet, path: Path) -> tuple[bool, bool, str | None]:
    """Returns (changed, kept_newer, dropped other credential kind)."""
    creds = _table(
        _table(doc, "credentials", path, "credentials", super_table=True),
        profile,
        path,
        f"credentials.{profile}",
        super_table=True,
    )
    payload = _table(creds, "token_payload", path, f"credentials.{profile}.token_payload")
    existing = payload.unwrap() if hasattr(payload, "unwrap") else dict(payload)
    if _holds_newer(existing, tokens):
        return False, True, None
    dropped = None
    for kind in _OTHER_CREDENTIAL_KINDS:
        if kind in creds:
            del creds[kind]  # the SDK accepts exactly one credential kind per entry
            dropped = kind
    new = tokens.payload()
    if existing.get("access_token") == new["access_token"] and existing.get("refresh_token") == new.get(
        "refresh_token"
    ):
        new["updated_at"] = existing.get("updated_at", new["updated_at"])
    changed = dropped is not None
    for key, value in new.items():
        changed |= _set(payload, key, value)
    for key in (*TOKEN_FIELDS, "updated_at"):
        if key not in new and key in payload:
            del payload[key]
            changed = True
    return changed, False, dropped


def _holds_newer(existing: Mapping[str, Any], tokens: TokenSet) -> bool:
    """True when the file's access token outlives ``tokens``' one (e.g. the SDK refreshed it since)."""
    current = existing.get("access_token")
    if not isinstance(current, str) or current == tokens.access_token:
        return False
    current_exp, new_exp = jwt_expiry(current), tokens.access_expires_at
    if current_exp and implausible_expiry(current_exp):
        return False  # no issuer grants that: a hand-made token must not freeze the file against fresh ones
    if current_exp and new_exp:
        return current_exp > new_exp
    updated = existing.get("updated_at")
    if isinstance(updated, str):
        try:
            return parse_rfc3339(updated) > tokens.updated_at
        except ValueError:
            return False
    return False


def _read_metadata(dir_fd: int, path: Path) -> dict[str, Any]:
    try:
        snap = safefile.read_file(dir_fd, path)
        data = json.loads(snap.text) if snap.text else {}
    except (CredentialFileError, json.JSONDecodeError):
        return {}  # our own bookkeeping: rebuilt on the next write
    return data if isinstance(data, dict) else {}


def _record_metadata(dir_fd: int, path: Path, profile: str, tokens: TokenSet) -> None:
    """Remember beside the secrets who refreshes the tokens and when the refresh token was first seen.

    A refresh token in the file is recognised again by a one-way fingerprint, never stored itself.
    """
    data = _read_metadata(dir_fd, path)
    entries = data.get("credentials")
    if not isinstance(entries, dict):
        entries = data["credentials"] = {}
    old = entries.get(profile) if isinstance(entries.get(profile), dict) else {}
    entry: dict[str, Any] = {}
    if tokens.managed_by:
        entry["managed_by"] = tokens.managed_by
    if tokens.refresh_token:
        fp = fingerprint(tokens.refresh_token)
        entry["refresh_token_fingerprint"] = fp
        keep = old.get("refresh_token_fingerprint") == fp and tokens.refresh_token_obtained_at is None
        obtained = (
            old.get("refresh_token_obtained_at")
            if keep
            else rfc3339(tokens.refresh_token_obtained_at or tokens.updated_at)
        )
        entry["refresh_token_obtained_at"] = obtained
    elif tokens.managed_by and tokens.refresh_token_obtained_at:
        entry["refresh_token_obtained_at"] = rfc3339(tokens.refresh_token_obtained_at)
    if entry == old:
        return
    entries[profile] = entry
    data["version"] = 1
    safefile.write_atomic(dir_fd, path, json.dumps(data, indent=2, sort_keys=True) + "\n")
