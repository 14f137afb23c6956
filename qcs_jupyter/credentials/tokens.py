"""OAuth token sets and what can be read from them without verifying signatures."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import TokenInputError

TOKEN_FIELDS = ("access_token", "refresh_token", "id_token", "token_type", "scope", "expires_in")
#: No issuer grants an access token for longer (QCS: one hour). An unverified ``exp`` further ahead than this was
#: not issued by QCS (a hand-made or test token): it is never taken as "newer" than tokens the Hub sends.
MAX_ACCESS_TOKEN_LIFETIME = timedelta(days=1)
#: Both QCS clients read ``expires_in`` as a u32.
EXPIRES_IN_MAX = 2**32 - 1


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(dt: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix: the string form the QCS SDK expects for ``updated_at``."""
    dt = dt.astimezone(timezone.utc)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds").replace("+00:00", "Z")


#: RFC 3339 as both QCS clients parse it (the Rust ``time`` crate): ``T`` or ``t`` between date and time (0.27 also
#: takes a space, pyQuil's 0.12.8 does not), any number of fractional digits (both write nine), ``Z``/``z`` or a
#: ``±HH:MM`` offset, ASCII digits only.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 time as both QCS clients do, on every supported Python; raises ``ValueError`` otherwise.

    ``datetime.fromisoformat`` cannot be used: before Python 3.11 it rejects the nine fractional digits the
    clients write (``2026-11-30T01:09:03.523448774Z``). Digits past microseconds are dropped. A leap second is
    accepted only at 23:59:60 UTC and read as 23:59:59.999999, as the clients read it.
    """
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError("not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.fraction] then Z or ±HH:MM)")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    fraction = m.group(7) or ""
    if m.group(8):
        offset = timedelta(0)
    else:
        off_h, off_m = int(m.group(10)), int(m.group(11))
        if off_h > 23 or off_m > 59:
            raise ValueError("the UTC offset is out of range")
        offset = (-1 if m.group(9) == "-" else 1) * timedelta(hours=off_h, minutes=off_m)
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError("the time of day is out of range")
    leap = second == 60
    micro = int((fraction + "000000")[:6])
    try:
        local = datetime(year, month, day, hour, minute, 59 if leap else second, micro)
        utc = (local - offset).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"not a valid date-time ({e})") from None
    if leap:
        if (utc.hour, utc.minute) != (23, 59):
            raise ValueError("a leap second is only valid at 23:59:60 UTC")
        utc = utc.replace(microsecond=999_999)
    return utc


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, read without verifying it (as the QCS SDK does); None if it is not a JWT."""
    claims = _decoded_claims(token)
    return dict(claims) if claims is not None else None


@functools.lru_cache(maxsize=64)
def _decoded_claims(token: str) -> dict[str, Any] | None:
    # The status is computed on every poll from the same few tokens: decode each once. PyJWT is imported here, not
    # at module level: its import pulls in cryptography, which modules that never read a token need not pay for.
    if not isinstance(token, str):
        return None
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False, "verify_aud": False})
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):  # a mangled token is simply not a JWT
        return None
    return claims if isinstance(claims, dict) else None


def jwt_expiry(token: str) -> datetime | None:
    """When a JWT access token expires (its ``exp`` claim), or None when it is not a JWT or has no usable ``exp``."""
    claims = jwt_claims(token)
    exp = claims.get("exp") if claims else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(exp, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def implausible_expiry(expires_at: datetime, now: datetime | None = None) -> bool:
    """True when an access token claims to stay valid longer than any issuer grants (see ``MAX_ACCESS_TOKEN_LIFETIME``)."""
    return expires_at > (now or utcnow()) + MAX_ACCESS_TOKEN_LIFETIME


def fingerprint(token: str) -> str:
    """A short one-way fingerprint to recognise a token again without storing it."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass
class TokenSet:
    """An OAuth token response, normalised to what ``secrets.toml`` stores.

    ``refresh_token_obtained_at`` is when the refresh token was first issued (for its 90-day life);
    ``updated_at`` is when the access token was obtained; ``managed_by`` names who refreshes it when
    the files carry no refresh token.
    """

    access_token: str
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str = "Bearer"
    scope: str | None = None
    expires_in: int | None = None
    updated_at: datetime = field(default_factory=utcnow)
    refresh_token_obtained_at: datetime | None = None
    #: Set when someone else (JupyterHub) holds the refresh token and keeps the access token fresh.
    managed_by: str | None = None

    @property
    def access_expires_at(self) -> datetime | None:
        """JWT ``exp`` when readable, else ``updated_at + expires_in``."""
        exp = jwt_expiry(self.access_token)
        if exp is None and self.expires_in is not None:
            return datetime.fromtimestamp(self.updated_at.timestamp() + self.expires_in, timezone.utc)
        return exp

    def payload(self) -> dict[str, Any]:
        """The ``token_payload`` table, in the SDK's schema (``expires_in`` an integer, ``updated_at`` an RFC 3339 string)."""
        out: dict[str, Any] = {"access_token": self.access_token}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        if self.id_token:
            out["id_token"] = self.id_token
        out["token_type"] = self.token_type
        if self.scope:
            out["scope"] = self.scope
        if self.expires_in is not None:
            out["expires_in"] = self.expires_in
        out["updated_at"] = rfc3339(self.updated_at)
        return out

    @classmethod
    def from_response(cls, data: Mapping[str, Any], *, now: datetime | None = None) -> TokenSet:
        """Validate an OAuth token response (or a ``{"token_payload": {...}}`` wrapper) field by field."""
        if not isinstance(data, Mapping):
            raise TokenInputError(f"expected a JSON object with an access_token, got {type(data).__name__}")
        if isinstance(data.get("token_payload"), Mapping):
            data = data["token_payload"]
        access = data.get("access_token")
        if not isinstance(access, str) or not access.strip():
            raise TokenInputError("the token response has no access_token (a non-empty string is required)")
        for key in ("refresh_token", "id_token", "token_type", "scope"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise TokenInputError(f"{key} must be a string, got {type(data[key]).__name__}")
        expires_in = data.get("expires_in")
        if expires_in is not None:
            if isinstance(expires_in, str) and expires_in.strip().isdigit():
                expires_in = int(expires_in)
            if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 <= expires_in <= EXPIRES_IN_MAX:
                raise TokenInputError(
                    "expires_in must be a non-negative integer number of seconds (at most 4294967295, as the QCS "
                    f"clients read it), got {data.get('expires_in')!r}"
                )
        return cls(
            access_token=access.strip(),
            refresh_token=(data.get("refresh_token") or None),
            id_token=(data.get("id_token") or None),
            token_type=data.get("token_type") or "Bearer",
            scope=data.get("scope") or None,
            expires_in=expires_in,
            updated_at=now or utcnow(),
        )

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise TokenInputError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
        return cls.from_response(data)
