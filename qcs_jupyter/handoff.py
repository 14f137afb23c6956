"""The credential handoff between the Hub and a user's server: the routes and one JSON document.

The Hub side builds the document from ``auth_state``; the server side turns it back into a token set
and writes ``~/.qcs``. Both import this module so the two ends cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .credentials import AuthServer, TokenSet
from .credentials.tokens import parse_rfc3339, rfc3339

#: Routes under the Hub API (``JUPYTERHUB_API_URL``); the last part is the user name. Only a token that
#: JupyterHub issued to one of that user's running servers is answered.
CREDENTIALS_ROUTE = "/qcs/credentials"
STOP_ROUTE = "/qcs/stop"
#: Where the Hub serves the issuer QCS clients in kernels refresh through (under the Hub's API prefix).
ISSUER_ROUTE = "/qcs/issuer"
#: The only mode: the Hub holds the real refresh token and is the only party that refreshes at the IdP.
MODE_HUB = "hub"
MANAGED_BY_HUB = "jupyterhub"
VERSION = 2


def _epoch_to_rfc3339(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return rfc3339(datetime.fromtimestamp(value, timezone.utc))
    return None


def build_payload(
    auth_state: dict[str, Any],
    *,
    auth_server: AuthServer,
    session_token: str | None,
    api_url: str | None,
    grpc_api_url: str | None,
    profile: str | None,
    refresh_error: str | None = None,
    relogin_required: bool = False,
) -> dict[str, Any]:
    """What the Hub hands a user's server: only what ``~/.qcs`` needs, nothing about anyone else.

    ``auth_server`` is the issuer the QCS clients refresh through: the Hub's own, whose refresh token is the
    user's ``session_token`` (good only there, for a bounded time, while their session runs). The real refresh
    token never leaves the Hub.
    """
    qcs = auth_state.get("qcs") or {}
    response = auth_state.get("token_response") or {}
    token = {
        "access_token": auth_state["access_token"],
        "refresh_token": session_token,
        "id_token": auth_state.get("id_token"),
        "token_type": response.get("token_type") or "Bearer",
        "scope": " ".join(auth_state["scope"])
        if isinstance(auth_state.get("scope"), list)
        else auth_state.get("scope"),
        "expires_in": response.get("expires_in") if isinstance(response.get("expires_in"), int) else None,
    }
    return {
        "version": VERSION,
        "mode": MODE_HUB,
        "token": {k: v for k, v in token.items() if v is not None},
        "access_token_obtained_at": _epoch_to_rfc3339(qcs.get("access_token_obtained_at")),
        "access_token_expires_at": _epoch_to_rfc3339(qcs.get("access_token_expires_at")),
        "refresh_token_held_by_hub": bool(auth_state.get("refresh_token")),
        "refresh_token_obtained_at": _epoch_to_rfc3339(qcs.get("refresh_token_obtained_at")),
        "auth_server": {"issuer": auth_server.issuer, "client_id": auth_server.client_id},
        "api_url": api_url,
        "grpc_api_url": grpc_api_url,
        "profile": profile,
        "refresh_error": refresh_error,
        "relogin_required": relogin_required,
    }


@dataclass
class Handoff:
    """A parsed handoff document, ready to install."""

    tokens: TokenSet
    auth_server: AuthServer
    mode: str
    api_url: str | None
    grpc_api_url: str | None
    profile: str | None
    access_token_expires_at: datetime | None
    refresh_error: str | None
    relogin_required: bool = False


def parse_payload(data: dict[str, Any]) -> Handoff:
    """Turn the Hub's document into a token set; raises ``ValueError`` with a plain message if malformed."""
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("token"), dict):
        raise ValueError("the Hub sent a credentials document this version of qcs-jupyter does not understand")
    mode = data.get("mode")
    if mode != MODE_HUB:
        raise ValueError(f"unknown credentials mode {mode!r} from the Hub")
    tokens = TokenSet.from_response(data["token"])
    obtained = _time(data, "access_token_obtained_at")
    if obtained is not None:
        tokens.updated_at = obtained
    tokens.refresh_token_obtained_at = _time(data, "refresh_token_obtained_at")
    if data.get("refresh_token_held_by_hub"):
        tokens.managed_by = MANAGED_BY_HUB
    server = data.get("auth_server")
    if (
        not isinstance(server, dict)
        or not isinstance(server.get("issuer"), str)
        or not isinstance(server.get("client_id"), str)
    ):
        raise ValueError("the Hub sent no issuer/client_id")
    expires = _time(data, "access_token_expires_at")
    return Handoff(
        tokens=tokens,
        auth_server=AuthServer(server["issuer"], server["client_id"]),
        mode=mode,
        api_url=data.get("api_url"),
        grpc_api_url=data.get("grpc_api_url"),
        profile=data.get("profile"),
        access_token_expires_at=expires or tokens.access_expires_at,
        refresh_error=data.get("refresh_error"),
        relogin_required=data.get("relogin_required") is True,
    )


def _time(data: dict[str, Any], field: str) -> datetime | None:
    """An optional RFC 3339 field of the Hub's document; anything else is refused by name."""
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            pass
    raise ValueError(f"the Hub sent {field}={value!r}, not an RFC 3339 time")
