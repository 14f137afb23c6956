"""Look into the environments of a process tree (only the stack a test started, never the whole machine)."""

from __future__ import annotations

from pathlib import Path


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from ``/proc/*/stat`` parent links."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        # The command name (2nd field) may hold spaces and parentheses: split after its closing one.
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(proc.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def environ_of(root: int, match: bytes) -> list[str]:
    """Environments of the processes under ``root`` whose command line contains ``match``."""
    found = []
    for pid in descendants(root):
        try:
            if match in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    return found


def server_pid(root: int, user: str, server: str = "") -> int | None:
    """The pid of ``user``'s running single-user server ``server`` ('' = default) under ``root``, or None."""
    for pid in descendants(root):
        try:
            if b"jupyterhub.singleuser" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            env = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        values = dict(line.split("=", 1) for line in env if "=" in line)
        if values.get("JUPYTERHUB_USER") == user and values.get("JUPYTERHUB_SERVER_NAME", "") == server:
            return pid
    return None
