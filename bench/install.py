"""P10: installing credentials into a 1 MB ``settings.toml`` ÷ the format-preserving round trip of the same file.

A user's ``settings.toml`` may be large (hundreds of profiles, comments); ``install`` must keep every line of it
and still finish quickly. The baseline is what any writer that keeps the user's file as written must do at
least: read it, parse it with ``tomlkit``, render it back, and replace it atomically (temporary file, fsync,
rename). ``install`` does that plus its own work (the writer lock, the merge, ``secrets.toml``, and the strict
re-parse that refuses a file whose meaning would change). Both run in this process on a fresh copy of the same
1.4 MB file, interleaved A,B then B,A; the figure is the ratio of the medians, with a bootstrap interval.
The install is checked: every line of the original is still there, in order (otherwise the figure fails).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import tomlkit

from qcs_jupyter.credentials import CredentialStore, QCSPaths, TokenSet

from .common import Figure, Goal, Options, ratio_of_medians, summary
from .jupyter import install_credentials

GOAL = Goal("<=", 1.5)


def big_settings(profiles: int = 400, keys: int = 60) -> str:
    """A settings.toml of ``profiles`` commented profiles with ``keys`` keys each (about 1.4 MB by default)."""
    lines = ["# a big settings file"]
    for i in range(profiles):
        lines += [f"[profiles.p{i}]", f'api_url = "https://api{i}.example"  # profile {i}']
        lines += [f'key{j} = "{"x" * 40}-{i}-{j}"' for j in range(keys)]
    return "\n".join(lines) + "\n"


def _fresh_home(root: Path, text: str) -> Path:
    home = root / f"home-{secrets.token_hex(4)}"
    qcs = home / ".qcs"
    qcs.mkdir(parents=True, mode=0o700)
    (qcs / "settings.toml").write_text(text)
    return home


def _tokens(root: Path) -> TokenSet:
    """Realistic tokens (JWTs with exp), read back from a throwaway install."""
    home = root / "tokens"
    install_credentials(home)
    secrets_doc = tomlkit.parse((home / ".qcs" / "secrets.toml").read_text()).unwrap()
    payload = secrets_doc["credentials"]["default"]["token_payload"]
    return TokenSet(access_token=payload["access_token"], refresh_token=payload["refresh_token"])


def time_install(home: Path, tokens: TokenSet) -> float:
    started = time.perf_counter()
    CredentialStore(paths=QCSPaths.from_env({}, home=home)).install(tokens)
    return time.perf_counter() - started


def time_round_trip(home: Path) -> float:
    """Read, tomlkit parse, render, and replace atomically: the floor for keeping a user's file as written."""
    path = home / ".qcs" / "settings.toml"
    started = time.perf_counter()
    text = tomlkit.dumps(tomlkit.parse(path.read_text()))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return time.perf_counter() - started


def lines_kept(original: str, written: str) -> bool:
    remaining = iter(written.splitlines())
    return all(any(candidate == line for candidate in remaining) for line in original.splitlines())


def run(opts: Options) -> Figure:
    rounds = 3 if opts.quick else 9
    root = opts.workdir
    original = big_settings()
    tokens = _tokens(root)
    times: dict[str, list[float]] = {"install": [], "round_trip": []}
    problems: list[str] = []
    for r in range(rounds):
        order = ["install", "round_trip"] if r % 2 == 0 else ["round_trip", "install"]
        for name in order:
            home = _fresh_home(root, original)
            if name == "install":
                times[name].append(time_install(home, tokens))
                if r == 0 and not lines_kept(original, (home / ".qcs" / "settings.toml").read_text()):
                    problems.append("install lost or reordered lines of the user's settings.toml")
            else:
                times[name].append(time_round_trip(home))
            shutil.rmtree(home)
        opts.say(
            f"P10 round {r + 1}/{rounds}: install {times['install'][-1]:.2f} s, "
            f"round trip {times['round_trip'][-1]:.2f} s"
        )
    spread = ratio_of_medians(times["install"], times["round_trip"])
    details: dict[str, Any] = {
        "settings_bytes": len(original.encode()),
        "settings_lines": original.count("\n"),
        "install_s": summary(times["install"], digits=3),
        "round_trip_s": summary(times["round_trip"], digits=3),
        "ratio_spread": spread,
        "rounds": rounds,
        "method": "in-process, a fresh copy of the file each time, interleaved A,B then B,A; wall time",
    }
    return Figure(
        id="P10",
        name="install into a 1 MB settings.toml ÷ tomlkit round trip of it (median)",
        value=spread["ratio"],
        unit="ratio",
        goal=GOAL,
        details=details,
        problems=problems,
    )
