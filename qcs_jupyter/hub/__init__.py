"""Hub side: the QCS authenticator and its Hub API routes (credential pulls, self-stop, the clients' issuer)."""

from .authenticator import QCSAuthenticator

__all__ = ["QCSAuthenticator"]
