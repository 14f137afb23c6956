"""Who controls the directory of the QCS files: only the user (as OpenSSH checks ``~/.ssh``).

Real directories on disk; other owners through ``os.chown`` (the tests run as root, and the rule is about the user
this process runs as, ``os.geteuid()``), and one child process that becomes a real non-root user.
"""

from __future__ import annotations

import os
import pwd
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from qcs_jupyter.credentials import CredentialStore, TokenSet
from qcs_jupyter.credentials.errors import CredentialFileError
from qcs_jupyter.credentials.paths import QCSPaths
from qcs_jupyter.credentials.safefile import check_dir, open_dir

OTHER = 12345  # a uid and gid nobody on the machine has

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making directories owned by others needs root")


def mkdir(path: Path, mode: int = 0o700, uid: int | None = None, gid: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    path.chmod(mode)  # after chown, which clears the sticky and set-id bits
    return path


def layout(setup: Callable[[Path, Path], Path]) -> Callable[[Path], tuple[Path, Path]]:
    """``setup(base, home)`` makes the directories and returns the one that holds the files."""

    def build(tmp: Path) -> tuple[Path, Path]:
        base = mkdir(tmp / "base", 0o755)
        home = mkdir(tmp / "home", 0o755)
        return setup(base, home), home

    return build


def _symlink(link: Path, target: Path, uid: int) -> Path:
    link.symlink_to(target)
    os.lchown(link, uid, -1)
    return link


CASES = [
    # (id, layout, None when accepted, else words of the refusal)
    ("own-0700", layout(lambda b, h: mkdir(b / "qcs")), None),
    ("own-0755", layout(lambda b, h: mkdir(b / "qcs", 0o755)), None),
    (
        "owned-by-another-uid",
        layout(lambda b, h: mkdir(b / "qcs", uid=OTHER)),
        f"is owned by uid {OTHER} with mode 0700",
    ),
    ("group-writable", layout(lambda b, h: mkdir(b / "qcs", 0o770, gid=OTHER)), f"its group gid {OTHER} (mode 0770)"),
    ("group-writable-own-group", layout(lambda b, h: mkdir(b / "qcs", 0o770, gid=0)), None),  # root alone in it
    ("world-writable", layout(lambda b, h: mkdir(b / "qcs", 0o777)), "can be written by any user (mode 0777)"),
    ("world-writable-sticky", layout(lambda b, h: mkdir(b / "qcs", 0o1777)), "any user (mode 1777)"),
    ("under-sticky-like-tmp", layout(lambda b, h: mkdir(mkdir(b / "tmp", 0o1777) / "qcs")), None),
    ("under-group-writable-sticky", layout(lambda b, h: mkdir(mkdir(b / "g", 0o1770, gid=OTHER) / "qcs")), None),
    (
        "under-world-writable",
        layout(lambda b, h: mkdir(mkdir(b / "open", 0o777) / "qcs")),
        "(above the QCS files) can be written by any user (mode 0777, no sticky bit)",
    ),
    (
        "under-another-users-dir",
        layout(lambda b, h: mkdir(mkdir(b / "theirs", 0o755, uid=OTHER) / "qcs")),
        f"(above the QCS files) is owned by uid {OTHER}",
    ),
    (
        "sticky-dir-owned-by-another",  # the owner of a sticky directory may rename anything in it
        layout(lambda b, h: mkdir(mkdir(b / "tmp", 0o1777, uid=OTHER) / "qcs")),
        f"is owned by uid {OTHER} with mode 1777",
    ),
    ("home-not-checked", layout(lambda b, h: mkdir(mkdir(h, 0o777, uid=OTHER) / ".qcs")), None),
    ("home-holding-the-files", layout(lambda b, h: mkdir(h, 0o755, uid=OTHER)), f"home: is owned by uid {OTHER}"),
    (
        "symlink-of-another-user-above",
        layout(lambda b, h: _symlink(b / "link", mkdir(b / "real"), OTHER) / mkdir(b / "real" / "qcs").name),
        f"link: is a symbolic link owned by uid {OTHER}",
    ),
    (
        "symlink-of-root-above",
        layout(lambda b, h: _symlink(b / "link", mkdir(b / "real"), 0) / mkdir(b / "real" / "qcs").name),
        None,
    ),
    (
        "symlink-into-a-world-writable-dir",
        layout(lambda b, h: _symlink(b / "link", mkdir(b / "open", 0o777), 0) / mkdir(b / "open" / "qcs").name),
        "open: (above the QCS files) can be written by any user",
    ),
]


@pytest.mark.parametrize(("build", "refusal"), [pytest.param(b, r, id=i) for i, b, r in CASES])
def test_who_controls_the_directory(tmp_path, build, refusal):
    held, home = build(tmp_path)
    fd = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if refusal is None:
            check_dir(fd, held, write=True, home=home)
            return
        with pytest.raises(CredentialFileError) as err:
            check_dir(fd, held, write=True, home=home)
    finally:
        os.close(fd)
    text = str(err.value)
    assert err.value.kind == "unsafe_dir"
    assert refusal in text, text
    assert "only you own and can write to" in text  # what to do, every time


def test_install_writes_nothing_into_a_directory_of_another_user(tmp_path, token_response, monkeypatch):
    shared = mkdir(tmp_path / "shared", 0o755, uid=OTHER)
    home = mkdir(tmp_path / "home", 0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("QCS_SETTINGS_FILE_PATH", str(home / "settings.toml"))
    monkeypatch.setenv("QCS_SECRETS_FILE_PATH", str(shared / "secrets.toml"))
    with pytest.raises(CredentialFileError, match=rf"{shared}: is owned by uid {OTHER}"):
        CredentialStore().install(TokenSet.from_response(token_response()))
    assert list(shared.iterdir()) == []
    # Reading names it once, though the directory is checked for each file in it.
    monkeypatch.setenv("QCS_SETTINGS_FILE_PATH", str(shared / "settings.toml"))
    snap = CredentialStore().read()
    assert [e.kind for e in snap.errors] == ["unsafe_dir"]


def test_the_default_qcs_dir_of_another_user_is_refused(tmp_path, token_response, monkeypatch):
    home = mkdir(tmp_path / "home", 0o755)
    qcs = mkdir(home / ".qcs", 0o755, uid=OTHER)
    monkeypatch.setenv("HOME", str(home))
    for name in ("QCS_SETTINGS_FILE_PATH", "QCS_SECRETS_FILE_PATH"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CredentialFileError, match=f"is owned by uid {OTHER}"):
        CredentialStore(QCSPaths.from_env()).install(TokenSet.from_response(token_response()))
    assert list(qcs.iterdir()) == []
    assert (qcs.stat().st_mode & 0o777) == 0o755  # not "tightened" either: it is not ours


def _as_user(uid: int, gid: int, check: Callable[[], None]) -> str:
    """Run ``check`` in a child process that has become ``uid``; returns '' or the refusal."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            check()
            out = b""
        except CredentialFileError as e:
            out = str(e).encode()
        except BaseException as e:
            out = f"ERROR {e!r}".encode()
        os.write(write, out or b"-")
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        got = fh.read().decode()
    os.waitpid(pid, 0)
    return "" if got == "-" else got


def test_a_real_non_root_user():
    """The owner that counts is the user the process runs as: root's directory is fine to read from (an admin's
    settings), not to write into; the user's own directory is fine; another user's is not."""
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory(prefix="qcs-dir-owner-") as tmp:  # in /tmp: pytest's own is root's alone
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        _non_root_cases(tmp_path, nobody)


def _non_root_cases(tmp_path: Path, nobody: pwd.struct_passwd) -> None:
    rootdir = mkdir(tmp_path / "root-owned", 0o755)
    own = mkdir(tmp_path / "own", 0o700, uid=nobody.pw_uid)
    theirs = mkdir(tmp_path / "theirs", 0o755, uid=OTHER)

    def check(path: Path, write: bool) -> Callable[[], None]:
        def run() -> None:
            with open_dir(path, create=write, tighten=False):
                pass

        return run

    as_nobody = lambda path, write: _as_user(nobody.pw_uid, nobody.pw_gid, check(path, write))  # noqa: E731
    assert as_nobody(own, True) == ""
    assert as_nobody(rootdir, False) == ""
    assert "is owned by root (uid 0) with mode 0755, not by you (nobody, uid" in as_nobody(rootdir, True)
    assert f"is owned by uid {OTHER} with mode 0755, not by you or root (nobody, uid" in as_nobody(theirs, False)


def _check(held: Path, home: Path) -> None:
    fd = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    try:
        check_dir(fd, held, write=False, home=home)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda mid, tmp: mid.chmod(0o777), id="made-writable-by-all"),
        pytest.param(lambda mid, tmp: os.chown(mid, OTHER, -1), id="given-to-another-user"),
        pytest.param(
            lambda mid, tmp: (
                mid.rename(tmp / "moved"),
                mkdir(tmp / "elsewhere", 0o777),
                mkdir(tmp / "elsewhere" / "qcs", 0o700),
                _symlink(mid, tmp / "elsewhere", OTHER),
            ),
            id="swapped-for-another-users-link",
        ),
    ],
)
def test_a_passed_check_is_made_again_when_a_directory_above_changes(tmp_path, change):
    """A passed check is kept while every directory between the home and the files is unchanged (the status reads
    the files on each change): a directory above made unsafe after a passed check is refused on the next one."""
    home = mkdir(tmp_path / "home", 0o755)
    mid = mkdir(home / "mid", 0o755)
    held = mkdir(mid / "qcs", 0o700)
    _check(held, home)
    _check(held, home)  # kept: still passes
    change(mid, tmp_path)
    with pytest.raises(CredentialFileError) as err:
        _check(held, home)
    assert err.value.kind == "unsafe_dir"
