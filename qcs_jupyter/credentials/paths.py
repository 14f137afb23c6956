"""Where the QCS client files live, resolved exactly as the QCS SDKs resolve them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SETTINGS_PATH_ENV = "QCS_SETTINGS_FILE_PATH"
SECRETS_PATH_ENV = "QCS_SECRETS_FILE_PATH"
PROFILE_ENV = "QCS_PROFILE_NAME"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class QCSPaths:
    """The pair of files the SDK reads, and whether they sit in the default ``~/.qcs``."""

    settings: Path
    secrets: Path
    default_dir: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, home: Path | None = None) -> QCSPaths:
        env = os.environ if env is None else env
        base = (home or Path(env.get("HOME") or Path.home())) / ".qcs"
        settings = env.get(SETTINGS_PATH_ENV)
        secrets = env.get(SECRETS_PATH_ENV)
        return cls(
            settings=Path(settings).expanduser() if settings else base / "settings.toml",
            secrets=Path(secrets).expanduser() if secrets else base / "secrets.toml",
            default_dir=not settings and not secrets,
        )


def profile_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The profile named by ``QCS_PROFILE_NAME``, if any (it overrides ``default_profile_name``)."""
    env = os.environ if env is None else env
    return env.get(PROFILE_ENV) or None
