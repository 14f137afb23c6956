"""Where the QCS client files live, resolved exactly as the QCS clients resolve them.

Both clients (pyQuil's core 0.12.8 and qcs-sdk-python's 0.27) read ``QCS_SETTINGS_FILE_PATH`` and
``QCS_SECRETS_FILE_PATH`` with Rust's ``std::env::var`` and expand them with ``shellexpand::env``: ``$VAR``,
``${VAR}`` and ``${VAR:-default}`` are replaced, ``$$`` is a literal ``$``, an unset variable is an error, and
``~`` is never expanded. Only the defaults (``~/.qcs/settings.toml``, ``~/.qcs/secrets.toml``) start at the home
directory. A value the clients cannot resolve to the file they would read is refused here, with the reason,
instead of being guessed at (0.1 expanded ``~`` and wrote into a folder literally named ``$HOME``).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SETTINGS_PATH_ENV = "QCS_SETTINGS_FILE_PATH"
SECRETS_PATH_ENV = "QCS_SECRETS_FILE_PATH"
PROFILE_ENV = "QCS_PROFILE_NAME"
DEFAULT_PROFILE = "default"


class UnresolvablePath(ValueError):
    """A ``QCS_*_FILE_PATH`` value the QCS clients cannot resolve.

    ``message`` completes a sentence that starts with the variable's name; ``action`` says what to write instead.
    """

    def __init__(self, message: str, action: str) -> None:
        super().__init__(message)
        self.message = message
        self.action = action


@dataclass(frozen=True)
class QCSPaths:
    """The pair of files the QCS clients read, and whether they sit in the default ``~/.qcs``.

    ``problem``/``action`` are set when ``problem_var`` names a path the QCS clients cannot resolve; the
    path fields then hold the variable's raw value, which is shown but never read or written. ``home``: the home
    directory the paths were resolved against; the check of who controls the files' directories stops there.
    """

    settings: Path
    secrets: Path
    default_dir: bool
    problem: str | None = None
    action: str | None = None
    problem_var: str | None = None
    home: Path | None = field(default=None, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, home: Path | None = None) -> QCSPaths:
        env = os.environ if env is None else env
        home = home or home_dir(env)
        base = home / ".qcs"
        resolved: dict[str, Path] = {}
        failed: tuple[str, UnresolvablePath] | None = None
        for which, name in (("settings", SETTINGS_PATH_ENV), ("secrets", SECRETS_PATH_ENV)):
            raw = env.get(name)
            if raw is None:
                resolved[which] = base / f"{which}.toml"
                continue
            try:
                resolved[which] = Path(resolve_env_path(name, raw, env))
            except UnresolvablePath as e:
                resolved[which] = Path(raw)  # shown as given; never opened
                failed = failed or (name, e)
        unset = env.get(SETTINGS_PATH_ENV) is None and env.get(SECRETS_PATH_ENV) is None
        if failed:
            name, e = failed
            return cls(resolved["settings"], resolved["secrets"], False, e.message, e.action, name, home)
        return cls(resolved["settings"], resolved["secrets"], default_dir=unset, home=home)


def home_dir(env: Mapping[str, str]) -> Path:
    """``$HOME`` when set and not empty, else the account's home directory (as the clients' ``~``)."""
    home = env.get("HOME")
    if home:
        return Path(home)
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        return Path.home()


def resolve_env_path(name: str, raw: str, env: Mapping[str, str]) -> str:
    """The path the QCS clients read for ``name=raw``; raises ``UnresolvablePath`` where they would fail."""
    if not _is_utf8(raw):
        raise UnresolvablePath("is not valid UTF-8, so the QCS clients cannot read it", f"Set {name} again.")
    if raw == "":
        raise UnresolvablePath(
            "is set but empty; the QCS clients take that as a path and find no file",
            f"Unset {name} to use ~/.qcs, or set it to the file's full path.",
        )
    path = expand_vars(raw, env)
    if path.startswith("~"):
        raise UnresolvablePath(
            "starts with '~', which the QCS clients do not expand (they expand only $VARIABLES)",
            f"Write $HOME instead of ~, e.g. {name}=$HOME{path[1:] if path.startswith('~/') else '/...'}.",
        )
    if not os.path.isabs(path):
        raise UnresolvablePath(
            "is a relative path; each QCS client resolves it from its own working directory "
            "(every notebook's folder), so it names a different file in each",
            f"Set {name} to an absolute path, e.g. starting with $HOME/.",
        )
    return path


def expand_vars(value: str, env: Mapping[str, str]) -> str:
    """``shellexpand::env`` (3.1), as the QCS clients apply it to ``QCS_*_FILE_PATH``.

    ``$NAME`` takes the longest run of alphanumeric characters and ``_``; ``${NAME}`` and ``${NAME:-default}``
    end at the first ``}``; a set but empty variable expands to nothing (its default is not used); ``$$`` is
    ``$``; a ``$`` followed by anything else, or a ``${`` with no ``}``, stays as it is.
    """
    out: list[str] = []
    i = 0
    while (j := value.find("$", i)) != -1:
        out.append(value[i:j])
        rest = value[j:]
        nxt = rest[1:2]
        if nxt == "{":
            close = rest.find("}")
            if close == -1:
                out.append("${")
                i = j + 2
                continue
            split = rest.find(":-", 0, close)
            has_default = split not in (-1, 2)
            var = rest[2 : split if has_default else close]
            found = _lookup(var, env)
            if found is None and not has_default:
                raise _unset(var)
            out.append(found if found is not None else rest[split + 2 : close])
            i = j + close + 1
        elif nxt and _is_var_char(nxt):
            end = 2
            while end < len(rest) and _is_var_char(rest[end]):
                end += 1
            var = rest[1:end]
            found = _lookup(var, env)
            if found is None:
                raise _unset(var)
            out.append(found)
            i = j + end
        else:
            out.append("$")
            i = j + (2 if nxt == "$" else 1)
    out.append(value[i:])
    return "".join(out)


def _is_var_char(c: str) -> bool:
    # Rust's char::is_alphanumeric; Python's isalnum differs only for a few combining marks.
    return c.isalnum() or c == "_"


def _lookup(var: str, env: Mapping[str, str]) -> str | None:
    value = env.get(var) if var else None
    if value is not None and not _is_utf8(value):
        raise UnresolvablePath(
            f"uses ${var}, whose value is not valid UTF-8, so the QCS clients refuse the path",
            f"Set {var} again, or write the path out in full.",
        )
    return value


def _unset(var: str) -> UnresolvablePath:
    shown = var if var.replace("_", "a").isalnum() and len(var) <= 64 else "a variable"
    return UnresolvablePath(
        f"uses ${shown}, which is not set, so the QCS clients refuse the path",
        f"Set {shown} where JupyterLab and your kernels start, or write the path out in full.",
    )


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # os.environ keeps undecodable bytes as lone surrogates
        return False
    return True


def profile_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The profile named by ``QCS_PROFILE_NAME``, if any (it overrides ``default_profile_name``)."""
    env = os.environ if env is None else env
    return env.get(PROFILE_ENV) or None
