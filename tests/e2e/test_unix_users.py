"""Real Unix users: LocalProcessSpawner runs each user's server as that user, from a single-user environment built
with the system Python and the built wheel; each `~/.qcs` is written by the user's own server, owned by them,
0700/0600, and unreadable by the other user. The Hub (root) never touches a home."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from devstack import artifacts

from .conftest import spawn, stack
from .procs import descendants

SYSTEM_PYTHON = "/usr/bin/python3"
USERS = ("qcsalice", "qcsbob")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("useradd") or not Path(SYSTEM_PYTHON).exists(),
    reason="needs root (to create Unix users), useradd and the system Python at /usr/bin/python3",
)


@pytest.fixture(scope="module")
def singleuser_env() -> Path:
    """A world-readable venv of the system Python with the project's wheel and JupyterHub's single-user server,
    built by scripts/setup.sh (no test installs anything)."""
    return artifacts.singleuser_env()


@pytest.fixture(scope="module")
def unix_users():
    for name in USERS:
        subprocess.run(["userdel", "-r", name], capture_output=True)  # leftovers of an interrupted run
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    yield {name: pwd.getpwnam(name) for name in USERS}
    for name in USERS:
        subprocess.run(["pkill", "-u", name], capture_output=True)
        subprocess.run(["userdel", "-r", name], capture_output=True)


def test_each_users_own_server_writes_their_qcs_files(tmp_path, singleuser_env, unix_users):
    extra = f"""
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{str(singleuser_env / "bin" / "jupyterhub-singleuser")!r}]
c.Spawner.args = []
c.Spawner.environment = {{}}
c.Spawner.default_url = "/tree"
"""
    with stack(tmp_path, rotate=True, ttl=600, extra_config=extra) as hub:
        for name in USERS:
            spawn(hub, name)
        for name, entry in unix_users.items():
            qcs = Path(entry.pw_dir) / ".qcs"
            info = qcs.stat()
            assert (info.st_uid, info.st_gid) == (entry.pw_uid, entry.pw_gid), f"{qcs} is not owned by {name}"
            assert stat.S_IMODE(info.st_mode) == 0o700
            for child in qcs.iterdir():  # everything in it was written by the user's own server
                assert child.stat().st_uid == entry.pw_uid, f"{child} is not owned by {name}"
            for file in ("settings.toml", "secrets.toml"):
                assert stat.S_IMODE((qcs / file).stat().st_mode) == 0o600
            assert hub.auth_state(name)["access_token"] in (qcs / "secrets.toml").read_text()
        # One user's processes cannot read the other's files (and can read their own: a control).
        alice_secrets = Path(unix_users["qcsalice"].pw_dir) / ".qcs" / "secrets.toml"
        own = subprocess.run(["runuser", "-u", "qcsalice", "--", "cat", str(alice_secrets)], capture_output=True)
        assert own.returncode == 0 and b"access_token" in own.stdout
        other = subprocess.run(["runuser", "-u", "qcsbob", "--", "cat", str(alice_secrets)], capture_output=True)
        assert other.returncode != 0 and b"Permission denied" in other.stderr
        listing = subprocess.run(
            ["runuser", "-u", "qcsbob", "--", "ls", str(alice_secrets.parent)], capture_output=True
        )
        assert listing.returncode != 0
        # The servers really run as the users, not as root (looked up among the Hub's own descendants).
        uids = {}
        for pid in descendants(hub.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                uid = Path(f"/proc/{pid}/status").stat().st_uid
            except OSError:
                continue
            if b"jupyterhub-singleuser" in cmdline:
                uids[pid] = uid
        assert sorted(uids.values()) == sorted(entry.pw_uid for entry in unix_users.values()), uids
