"""List the processes a CI run started that are still running after it: exit 1 if there are any.

    python .ci/leftovers.py RUN_ID RUN_TMP [MORE_ROOT...]

A process counts as the run's when its environment carries QCS_JUPYTER_CI_RUN=RUN_ID (most children inherit it),
or when its working directory or command line lies under RUN_TMP (the run's TMPDIR: pytest's temp dirs, the homes
of user servers, which the Hub starts with an environment of their own) or under a MORE_ROOT (e.g. the
single-user venv of real Unix users). This script and its ancestors (the CI job itself) are left out. Nothing is
stopped here: on a machine shared with other work only the list is certain to be this run's own; stop them by pid.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return pids


def started_at(pid: int) -> float | None:
    """Epoch seconds the process started (field 22 of /proc/PID/stat, in clock ticks since boot)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            return None  # ended; its parent has not collected it yet
        ticks = int(fields[19])
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
    except (OSError, ValueError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def leftovers(run_id: str, roots: list[str]) -> dict[int, str]:
    mine = ancestors()
    found = {}
    marker = f"QCS_JUPYTER_CI_RUN={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        if started_at(pid) is None:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            environ = b""
        ours = marker in environ.split(b"\0")
        if ours or any(cwd == root or cwd.startswith(root + os.sep) or root in cmdline for root in roots):
            found[pid] = f"pid {pid}, cwd {cwd}: {cmdline[:300]}"
    return found


def main(argv: list[str]) -> int:
    run_id, run_tmp, *more = argv
    roots = [os.path.realpath(run_tmp), *(os.path.realpath(r) for r in more)]
    deadline = time.monotonic() + 15  # processes that are just ending get a moment
    found = leftovers(run_id, roots)
    while found and time.monotonic() < deadline:
        time.sleep(1)
        found = leftovers(run_id, roots)
    if not found:
        print("== no process of this run is left running")
        return 0
    print(f"error: {len(found)} process(es) this run started are still running:", file=sys.stderr)
    for line in found.values():
        print(f"  {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
