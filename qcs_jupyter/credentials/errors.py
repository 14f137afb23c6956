"""Errors raised by the ``~/.qcs`` model: each says what happened and what to do."""

from __future__ import annotations

from pathlib import Path


class CredentialFileError(Exception):
    """A QCS settings or secrets file cannot be used as it is.

    ``kind`` is a stable machine-readable code (``unreadable``, ``corrupt``, ``symlink``, ``not_a_file``,
    ``invalid``, ``locked``, ``write_failed``, ``unsafe_dir``: another user controls the directory (``path``),
    ``bad_path``: a ``QCS_*_FILE_PATH`` the QCS clients cannot resolve, then ``path`` is the variable's name);
    ``action`` tells the user what to do.
    """

    def __init__(self, path: Path | str, message: str, *, kind: str, action: str = "") -> None:
        self.path = str(path)
        self.message = message
        self.kind = kind
        self.action = action
        super().__init__(f"{self.path}: {message}" + (f" ({action})" if action else ""))


class TokenInputError(ValueError):
    """A token response given to ``install`` is not usable (bad JSON, missing or wrongly typed fields)."""
