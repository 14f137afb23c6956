"""Careful file I/O for secrets: no symlinks, 0600 files in a 0700 directory, atomic replace, one writer.

Every operation works relative to an open directory descriptor (``O_NOFOLLOW``), so a file or the
directory itself being swapped for a symlink is refused instead of followed. The directory must be one no other
user controls (``check_dir``, as OpenSSH checks ``~/.ssh``): whoever can write to it, or to a directory above it,
can swap the files the QCS clients read (their tokens, their issuer) or read new ones.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import CredentialFileError

FILE_MODE = 0o600
DIR_MODE = 0o700
LOCK_NAME = ".qcs-jupyter.lock"
LOCK_TIMEOUT_SECONDS = 15.0
#: Backups of a replaced file kept beside it (those of secrets.toml hold tokens).
BACKUPS_KEPT = 3

_SYMLINK_ACTION = (
    "Replace the link with the real file or directory, or point QCS_SETTINGS_FILE_PATH / QCS_SECRETS_FILE_PATH at it."
)


@dataclass(frozen=True)
class FileSnapshot:
    """What a file held when it was read: its text (None if missing) and identity for change detection."""

    path: Path
    text: str | None
    identity: tuple[int, int, int] | None  # (inode, mtime_ns, size)
    mode: int | None = None


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextlib.contextmanager
def open_dir(path: Path, *, create: bool, tighten: bool, home: Path | None = None) -> Iterator[int | None]:
    """Open ``path`` as a directory without following a symlink; yield its fd (None if missing and not created).

    ``create`` makes it (0700) when missing, for writing; ``tighten`` sets an existing one we own to 0700. The
    directory must pass ``check_dir`` (``home``: where its check of the directories above stops).
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            yield None
            return
        try:
            os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        except OSError as e:
            raise CredentialFileError(
                path,
                f"cannot create the directory: {e.strerror}",
                kind="write_failed",
                action="Check that its parent is writable.",
            ) from e
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise CredentialFileError(
                path,
                "is a symbolic link; refusing to follow it for credentials",
                kind="symlink",
                action=_SYMLINK_ACTION,
            ) from e
        if e.errno == errno.ENOTDIR:
            raise CredentialFileError(
                path, "is not a directory", kind="not_a_file", action="Move it aside so the directory can be created."
            ) from e
        raise CredentialFileError(
            path, f"cannot open the directory: {e.strerror}", kind="unreadable", action="Check its permissions."
        ) from e
    try:
        if tighten:
            st = os.fstat(fd)
            if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != DIR_MODE:
                with contextlib.suppress(OSError):  # best effort; a write that fails says why
                    os.fchmod(fd, DIR_MODE)
        check_dir(fd, path, write=create, home=home)
        yield fd
    finally:
        os.close(fd)


# --- who controls the directory ------------------------------------------------------------------------------
_KEEP_ELSEWHERE = (
    "Keep the QCS files in a directory that only you own and can write to: unset QCS_SETTINGS_FILE_PATH and "
    "QCS_SECRETS_FILE_PATH to use ~/.qcs, or create one with `mkdir -m 700 DIR` and point them at files in it."
)


def check_dir(fd: int, path: Path, *, write: bool, home: Path | None = None) -> None:
    """Refuse a directory (open as ``fd``) in which another user could swap or read the QCS files.

    As OpenSSH checks ``~/.ssh``: the directory itself must be owned by the user this process runs as (for
    reading, root will do too) and writable by nobody else (group write only for a group with just that user in
    it); every directory above it, up to the home directory or ``/``, must be owned by that user or root and be
    writable by nobody else unless it has the sticky bit (like ``/tmp``, where others cannot rename what is ours).
    The home directory and those above it are not checked: everything the user runs trusts them already. A
    symbolic link on the way must be the user's or root's. Raises ``CredentialFileError`` (kind ``unsafe_dir``)
    naming the directory, its owner and mode, and what to do.
    """
    euid = os.geteuid()
    st = os.fstat(fd)
    _require_safe(path, st, euid, held=True, write=write)
    try:
        home_st = os.stat(home) if home is not None else None
    except OSError:
        home_st = None
    home_id = _dev_ino(home_st) if home_st is not None else None
    if _dev_ino(st) == home_id:
        return
    key = (str(path), str(home), write, euid)
    passed = _passed_checks.get(key)
    if passed is not None and passed == _between(st, home_st, passed[2]):
        return
    chain = _chain_below_home(path, home)
    # Taken before the check: a directory swapped meanwhile makes the next call check again.
    seen = _between(st, home_st, chain) if chain is not None else None
    _check_above(path, euid, home, home_id, write=write)
    if seen is not None:
        if len(_passed_checks) >= _PASSED_CHECKS_KEPT:
            _passed_checks.clear()
        _passed_checks[key] = seen


#: The directories whose check passed, by (directory, home, write, euid): their identity, their home's and that of
#: every directory between them (``_between``). While all of those are unchanged the check's outcome is too, and
#: ``check_dir`` costs one ``lstat`` per directory between instead of resolving the path and checking each again.
_passed_checks: dict[tuple[str, str, bool, int], tuple] = {}
_PASSED_CHECKS_KEPT = 64


def _chain_below_home(path: Path, home: Path | None) -> tuple[str, ...] | None:
    """The directories strictly between ``home`` and ``path``, when a passed check of ``path`` may be kept: ``path``
    is a plain absolute path below ``home`` (no ``..``), and none of them is a symbolic link or writable by its
    group or others (whether the group has one member depends on the user database, not on the directory)."""
    if home is None:
        return None
    text, top = str(path), str(home)
    if not (os.path.isabs(text) and os.path.isabs(top)) or ".." in path.parts or ".." in home.parts:
        return None
    if os.path.normpath(text) != text or os.path.normpath(top) != top:
        return None
    ancestors = _ancestors(text)
    if top not in ancestors:
        return None
    chain = tuple(ancestors[: ancestors.index(top)])
    for above in chain:
        try:
            lst = os.lstat(above)
        except OSError:
            return None
        if not stat.S_ISDIR(lst.st_mode) or lst.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return None
    return chain


def _between(st: os.stat_result, home_st: os.stat_result | None, chain: tuple[str, ...]) -> tuple | None:
    """The identity of the directory, of its home and of each directory in ``chain`` (None if one is gone)."""
    if home_st is None:
        return None
    out = []
    for above in chain:
        try:
            lst = os.lstat(above)
        except OSError:
            return None
        out.append((lst.st_dev, lst.st_ino, lst.st_mode, lst.st_uid, lst.st_gid))
    return (_dev_ino(st), _dev_ino(home_st), chain, tuple(out))


def _check_above(path: Path, euid: int, home: Path | None, home_id: tuple[int, int] | None, *, write: bool) -> None:
    """``check_dir`` for the directories above ``path``, and the symbolic links on the way."""
    # (Plain strings, not Path objects: this runs on every read of the files.)
    for above in _ancestors(os.path.realpath(path)):
        try:
            ast = os.stat(above)
        except OSError:
            return  # gone or hidden from us: the open of the files below it says why
        if _dev_ino(ast) == home_id:
            break
        _require_safe(Path(above), ast, euid, held=False, write=write)
    trusted = set() if home is None else {str(home), *_ancestors(str(home))}
    for above in _ancestors(str(path)):
        if above in trusted:
            continue
        try:
            lst = os.lstat(above)
        except OSError:
            continue
        if stat.S_ISLNK(lst.st_mode) and lst.st_uid not in (euid, 0):
            raise CredentialFileError(
                above,
                f"is a symbolic link owned by {_who(lst.st_uid)}, who could point it elsewhere: another user "
                "could swap the QCS files below it",
                kind="unsafe_dir",
                action=_KEEP_ELSEWHERE,
            )


def _ancestors(path: str) -> list[str]:
    """``/a/b/c`` → ``/a/b``, ``/a``, ``/``."""
    out = []
    while (parent := os.path.dirname(path)) != path:
        out.append(parent)
        path = parent
    return out


def _require_safe(path: Path, st: os.stat_result, euid: int, *, held: bool, write: bool) -> None:
    """``held``: ``path`` holds the files (it must be ours); otherwise it is a directory above them."""
    mode = stat.S_IMODE(st.st_mode)
    where, files = ("", "the QCS files in it") if held else ("(above the QCS files) ", "the QCS files below it")
    owners = {euid} if held and write else {euid, 0}
    if st.st_uid not in owners:
        allowed = "you" if len(owners) == 1 else "you or root"
        raise CredentialFileError(
            path,
            f"{where}is owned by {_who(st.st_uid)} with mode {mode:04o}, not by {allowed} ({_who(euid, bare=True)}): "
            f"that user could swap or read {files}",
            kind="unsafe_dir",
            action=_KEEP_ELSEWHERE,
        )
    sticky = bool(mode & stat.S_ISVTX) and not held  # a sticky bit protects what is ours only in a directory above
    if mode & stat.S_IWOTH and not sticky:
        by = "any user"
    elif mode & stat.S_IWGRP and not sticky and not _only_member(st.st_gid, euid):
        by = f"its group {_group(st.st_gid)}"
    else:
        return
    fix = f"Run `chmod go-w {path}`" + ("" if held else f" (or `chmod +t {path}`, as /tmp has)")
    raise CredentialFileError(
        path,
        f"{where}can be written by {by} (mode {mode:04o}{'' if held else ', no sticky bit'}): other users could "
        f"swap or read {files}",
        kind="unsafe_dir",
        action=f"{fix}{', if it is yours' if st.st_uid != euid else ''}. Or: {_KEEP_ELSEWHERE[0].lower()}{_KEEP_ELSEWHERE[1:]}",
    )


def _only_member(gid: int, uid: int) -> bool:
    """Whether ``uid`` is the group's one member (primary or listed), as Debian's OpenSSH allows group write."""
    try:
        name = pwd.getpwuid(uid).pw_name
        listed = grp.getgrgid(gid).gr_mem
        primary = [p.pw_uid for p in pwd.getpwall() if p.pw_gid == gid]
    except KeyError:
        return False
    if any(u != uid for u in primary) or any(m != name for m in listed):
        return False
    return bool(primary or listed)


def _who(uid: int, *, bare: bool = False) -> str:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
    return f"{name}, uid {uid}" if bare else f"{name} (uid {uid})"


def _group(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"


def _dev_ino(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def read_file(dir_fd: int | None, path: Path) -> FileSnapshot:
    """Read a UTF-8 text file in ``dir_fd`` without following symlinks. Missing → ``text=None``."""
    if dir_fd is None:
        return FileSnapshot(path, None, None)
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return FileSnapshot(path, None, None)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CredentialFileError(
                path,
                "is a symbolic link; refusing to follow it for credentials",
                kind="symlink",
                action=_SYMLINK_ACTION,
            ) from e
        raise CredentialFileError(
            path,
            f"cannot be read: {e.strerror}",
            kind="unreadable",
            action="Check the file's owner and permissions (it should be yours, mode 0600).",
        ) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise CredentialFileError(
                path, f"is {kind}", kind="not_a_file", action="Move it aside; the QCS client needs a regular file here."
            )
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CredentialFileError(
            path,
            f"is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
            kind="corrupt",
            action="Fix or remove the file; TOML files must be UTF-8.",
        ) from e
    return FileSnapshot(path, text, _identity(st), stat.S_IMODE(st.st_mode))


def current_identity(dir_fd: int, name: str) -> tuple[int, int, int] | None:
    try:
        return _identity(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
    except FileNotFoundError:
        return None


def write_atomic(dir_fd: int, path: Path, data: str | bytes) -> None:
    """Write ``data`` to a 0600 temp file beside ``path``, fsync it, rename it over ``path``, fsync the directory."""
    tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=dir_fd)
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # umask may have narrowed it; never widened
            view = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise _write_error(path, e) from e
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


def backup_file(dir_fd: int, path: Path, data: str | bytes, reason: str) -> Path:
    """Keep a copy of a file we are about to replace (e.g. corrupt) beside it, with a UTC timestamp.

    Backups of secrets.toml hold tokens: only the newest ``BACKUPS_KEPT`` of each file are kept.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.{reason}-{stamp}")
    write_atomic(dir_fd, backup, data)
    prune_backups(dir_fd, path.name)
    return backup


_TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


def remove_stale_temp_files(dir_fd: int) -> list[str]:
    """Remove the temp files a killed writer left (``write_atomic``'s ``.NAME.<hex>.tmp``: they hold tokens).

    Call it only under ``writer_lock`` of this directory: every writer of ours holds that lock, so a temp file
    found then belongs to no running write.
    """
    removed = []
    for entry in os.listdir(dir_fd):
        if not _TEMP_FILE.fullmatch(entry):
            continue
        with contextlib.suppress(OSError):  # best effort, like the pruning of backups
            if stat.S_ISREG(os.stat(entry, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                os.unlink(entry, dir_fd=dir_fd)
                removed.append(entry)
    return removed


def prune_backups(dir_fd: int, name: str, keep: int = BACKUPS_KEPT) -> list[str]:
    """Remove all but the newest ``keep`` backups (``NAME.corrupt-*``, ``NAME.replaced-*``) of ``name``."""
    pattern = re.compile(re.escape(name) + r"\.(?:corrupt|replaced)-([0-9]{8}T[0-9]{12}Z)")
    found = []
    for entry in os.listdir(dir_fd):
        m = pattern.fullmatch(entry)
        if m:
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.stat(entry, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    found.append((m.group(1), entry))
    removed = []
    for _, entry in sorted(found, reverse=True)[keep:]:
        with contextlib.suppress(OSError):  # best effort: a backup we cannot remove is no reason to fail a write
            os.unlink(entry, dir_fd=dir_fd)
            removed.append(entry)
    return removed


def read_raw(dir_fd: int, path: Path) -> bytes | None:
    """The raw bytes of a regular file (for backups of files that are not valid UTF-8)."""
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Serialize our writers (threads, processes, named servers) on one lock file in the directory."""
    lock_path = directory / LOCK_NAME
    if lock_path.is_symlink():
        raise CredentialFileError(
            lock_path, "is a symbolic link; refusing to use it as a lock", kind="symlink", action="Remove it."
        )
    lock = FileLock(str(lock_path), timeout=LOCK_TIMEOUT_SECONDS, mode=FILE_MODE)
    try:
        lock.acquire()
    except Timeout as e:
        raise CredentialFileError(
            lock_path,
            f"another writer has held the lock for more than {LOCK_TIMEOUT_SECONDS:.0f} s",
            kind="locked",
            action="Try again; if it persists, check for a stuck process.",
        ) from e
    except OSError as e:
        raise _write_error(lock_path, e) from e
    try:
        yield
    finally:
        lock.release()


def _write_error(path: Path, e: OSError) -> CredentialFileError:
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        action = "Free some disk space in your home directory, then restart your server."
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        action = "Make the directory writable by you (chmod u+w), or set QCS_SECRETS_FILE_PATH to a writable place."
    else:
        action = "Check the directory."
    return CredentialFileError(
        path,
        f"cannot be written: {e.strerror}; the existing file was left unchanged",
        kind="write_failed",
        action=action,
    )
