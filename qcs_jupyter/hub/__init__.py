"""Hub side: the QCS authenticator, its credential handoff route, and the Hub configuration helper."""

from .authenticator import QCSAuthenticator
from .config import SERVER_TOKEN_SCOPES, configure_hub

__all__ = ["SERVER_TOKEN_SCOPES", "QCSAuthenticator", "configure_hub"]
