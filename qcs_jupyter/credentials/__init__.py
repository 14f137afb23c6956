"""The shared model of ``~/.qcs``: paths, safe file I/O, token sets, merge-and-write, status."""

from .errors import CredentialFileError, TokenInputError
from .paths import QCSPaths
from .status import compute_status, exit_code, read_status
from .store import AuthServer, CredentialStore, StoreSnapshot, WriteResult
from .tokens import TokenSet

__all__ = [
    "AuthServer",
    "CredentialFileError",
    "CredentialStore",
    "QCSPaths",
    "StoreSnapshot",
    "TokenInputError",
    "TokenSet",
    "WriteResult",
    "compute_status",
    "exit_code",
    "read_status",
]
