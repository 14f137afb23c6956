"""A user's QCS session on the Hub, what ends it, and the session refresh tokens of QCS clients in kernels.

QCS clients in kernels (pyQuil, qcs-sdk-python) refresh their access token at the Hub's issuer with the refresh
token in ``secrets.toml``. That token is not the real one (which never leaves the Hub) but a *session token*:

- ``qcsj2.<user, base64url>.<minted, epoch seconds>.<session id>.<HMAC-SHA256>``, signed with a key derived from
  ``JUPYTERHUB_CRYPT_KEY``. Nothing token-like is stored: ``auth_state`` keeps only the session id, and the Hub
  recomputes tokens when it needs them. A forged or malformed token is refused by its format and signature
  alone, before any user is looked up, at the same cost for every name.
- It is good until ``minted + lifetime`` (default 20 hours), so a copy taken from ``secrets.toml`` (a backup, a
  printed notebook, a user the server was shared with) stops working within a day even while servers run.
- It rotates: every ``rotation`` seconds (default 1 hour) a new one is minted. The Hub hands the newest to the
  user's servers on each pull (they write it into ``secrets.toml``) and in every refresh answer at its issuer,
  so a client that keeps the answer's refresh token keeps working as long as a server runs, and one that keeps
  the token it started with works for at least ``lifetime - rotation``.

A session (its id) begins with the first server start or credential pull after a login and ends — every token
of it dead at once — when the user logs out, an admin revokes it, the user's last server stops, or the user is
deleted. ``end``, ``ensure`` and ``token_live`` are the only places that decide this.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

PREFIX = "qcsj2"
#: The whole token, strictly: printable ASCII only, fixed field shapes, bounded length.
_TOKEN = re.compile(rf"{PREFIX}\.([A-Za-z0-9_-]{{1,340}})\.([0-9]{{10}})\.([A-Za-z0-9_-]{{22}})\.([A-Za-z0-9_-]{{43}})")
MAX_TOKEN_LENGTH = 440
_KEY_INFO = b"qcs-jupyter session tokens v2"


@dataclass(frozen=True)
class SessionClaim:
    """What a well-formed, correctly signed session token says. Not yet checked against the user's session."""

    user: str
    minted: int
    session_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(crypt_keys: list[bytes]) -> bytes | None:
    """The signing key, derived from JupyterHub's first auth_state key (None when there is none)."""
    if not crypt_keys:
        return None
    return hmac.new(crypt_keys[0], _KEY_INFO, hashlib.sha256).digest()


class SessionTokens:
    """Mints and checks session tokens. ``lifetime`` and ``rotation`` are in seconds."""

    def __init__(self, key: bytes, *, lifetime: float, rotation: float) -> None:
        if not 0 < rotation < lifetime:
            raise ValueError("the rotation interval must be shorter than the lifetime")
        self._key = key
        self.lifetime = lifetime
        self.rotation = rotation

    def _mac(self, user_part: str, minted: str, session_id: str) -> str:
        message = f"{PREFIX}.{user_part}.{minted}.{session_id}".encode("ascii")
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def mint(self, user: str, session_id: str, now: float | None = None) -> str:
        """The session's current token: the same within one rotation interval, so pulls do not flap."""
        now = time.time() if now is None else now
        minted = f"{int(now // self.rotation * self.rotation):010d}"
        user_part = _b64(user.encode("utf-8"))
        return f"{PREFIX}.{user_part}.{minted}.{session_id}.{self._mac(user_part, minted, session_id)}"

    def parse(self, token: Any) -> SessionClaim | None:
        """The claim of a well-formed token with a valid signature, else None (no lookup, constant work)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        user_part, minted, session_id, mac = match.groups()
        if not hmac.compare_digest(mac.encode("ascii"), self._mac(user_part, minted, session_id).encode("ascii")):
            return None
        try:
            user = _unb64(user_part).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        if not user or any(ord(c) < 32 or ord(c) == 127 for c in user):
            return None
        return SessionClaim(user, int(minted), session_id)

    def live(self, claim: SessionClaim, qcs: dict[str, Any] | None, now: float | None = None) -> bool:
        """Whether the claim belongs to the user's current session and is within its lifetime."""
        now = time.time() if now is None else now
        current = (qcs or {}).get("session_id")
        if not isinstance(current, str) or not hmac.compare_digest(current.encode(), claim.session_id.encode()):
            return False
        return claim.minted <= now + 60 and now < claim.minted + self.lifetime


def new_session_id() -> str:
    return _b64(secrets.token_bytes(16))  # 22 characters


def ensure(qcs: dict[str, Any], now: float | None = None) -> str:
    """The user's session id, beginning a session if none is running (edits ``qcs`` in place)."""
    session_id = qcs.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        session_id = new_session_id()
        qcs["session_id"] = session_id
        qcs["session_started_at"] = time.time() if now is None else now
    return session_id


def end(qcs: dict[str, Any]) -> None:
    """End the session: every session token of it stops working at once (edits ``qcs`` in place)."""
    qcs["session_id"] = None
    qcs["session_started_at"] = None
    qcs.pop("session_refresh_token", None)  # 0.2 kept the token itself; never keep it
