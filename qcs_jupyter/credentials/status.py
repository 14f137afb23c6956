"""Token status: what the QCS client files hold, how long it lasts, and every problem in plain words.

The same dictionary is printed by ``qcs-jupyter status --json`` and served by the server extension.
It never contains a token value.
"""

from __future__ import annotations

import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from .errors import CredentialFileError
from .store import QCS_CLIENT_ID, QCS_ISSUER, CredentialStore, StoreSnapshot
from .tokens import jwt_claims, jwt_expiry, parse_rfc3339, rfc3339, utcnow

REFRESH_TOKEN_LIFETIME_DAYS = 90
DEFAULT_WARNING_DAYS = 7
EXPIRING_SOON = timedelta(minutes=5)
GET_NEW_CREDENTIALS = (
    "Restart your server from the QCS panel (JupyterHub), run `qcs api auth-get-user`, "
    "or download new tokens from the QCS tokens page and run `qcs-jupyter install TOKENS.json`."
)


@dataclass(frozen=True)
class Problem:
    code: str
    severity: str  # "error" | "warning"
    message: str
    action: str


def file_error_problem(e: CredentialFileError) -> Problem:
    code = "file_corrupt" if e.kind == "corrupt" else "file_unreadable"
    return Problem(code, "error", f"{e.path} {e.message}.", e.action or "Check the file.")


def compute_status(
    snap: StoreSnapshot, *, now: datetime | None = None, warning_days: float = DEFAULT_WARNING_DAYS
) -> dict[str, Any]:
    """Build the status dictionary for one snapshot of the files."""
    now = now or utcnow()
    problems: list[Problem] = [file_error_problem(e) for e in snap.errors]
    unreadable = bool(snap.errors)

    for which, exists, mode in (
        ("settings", snap.settings_exists, snap.settings_mode),
        ("secrets", snap.secrets_exists, snap.secrets_mode),
    ):
        path = getattr(snap.paths, which)
        if not exists:
            problems.append(
                Problem(
                    f"{which}_missing",
                    "error",
                    f"{path} does not exist; the QCS client needs both files.",
                    GET_NEW_CREDENTIALS,
                )
            )
        elif which == "secrets" and mode is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(
                Problem(
                    "secrets_permissions",
                    "warning",
                    f"{path} can be read by other users (mode {mode:04o}).",
                    f"Run `chmod 600 {path}`.",
                )
            )

    server = snap.auth_server
    if server is not None:
        missing = [k for k in ("client_id", "issuer") if not isinstance(server.get(k), str) or not server.get(k)]
        if missing:
            problems.append(
                Problem(
                    "auth_server_incomplete",
                    "error",
                    f"[auth_servers.{snap.auth_server_name}] in settings.toml lacks {' and '.join(missing)}; the QCS client refuses it.",
                    "Add the missing key, or remove the table to use QCS's defaults.",
                )
            )
        elif str(server["issuer"]).endswith("/"):
            problems.append(
                Problem(
                    "issuer_trailing_slash",
                    "error",
                    "The issuer in settings.toml ends with '/'; token refresh will fail.",
                    "Remove the trailing slash.",
                )
            )

    payload = snap.token_payload
    access = payload.get("access_token") if payload else None
    refresh = payload.get("refresh_token") if payload else None
    access = access if isinstance(access, str) and access else None
    refresh = refresh if isinstance(refresh, str) and refresh else None

    if payload is not None:
        if "expires_in" in payload and (
            isinstance(payload["expires_in"], bool) or not isinstance(payload["expires_in"], int)
        ):
            problems.append(
                Problem(
                    "expires_in_type",
                    "error",
                    f"expires_in in secrets.toml is {payload['expires_in']!r}, not an integer; the QCS client rejects the file.",
                    GET_NEW_CREDENTIALS,
                )
            )
        updated = payload.get("updated_at")
        if updated is not None and not isinstance(updated, str):
            problems.append(
                Problem(
                    "updated_at_type",
                    "error",
                    "updated_at in secrets.toml is a bare TOML date-time; the QCS client needs a quoted RFC 3339 string.",
                    'Quote it, e.g. updated_at = "2026-01-01T00:00:00Z", or reinstall your credentials.',
                )
            )
        elif isinstance(updated, str):
            try:
                parse_rfc3339(updated)
            except ValueError:
                problems.append(
                    Problem(
                        "updated_at_format",
                        "error",
                        f"updated_at in secrets.toml ({updated!r}) is not an RFC 3339 time.",
                        GET_NEW_CREDENTIALS,
                    )
                )
    elif snap.secrets_exists and not unreadable:
        if snap.credentials is not None:
            problems.append(
                Problem(
                    "credentials_other_kind",
                    "warning",
                    f"[credentials.{snap.credentials_name}] holds no token_payload, so its status cannot be shown here.",
                    "Nothing to do if the QCS client works for you.",
                )
            )
        else:
            problems.append(
                Problem(
                    "credentials_missing",
                    "error",
                    f"secrets.toml has no [credentials.{snap.credentials_name}.token_payload].",
                    GET_NEW_CREDENTIALS,
                )
            )

    # Access token: expiry from the JWT `exp`, exactly as the QCS client reads it.
    hub_managed = snap.managed_by is not None and not refresh
    renewable = bool(refresh) or hub_managed
    renew_note = (
        f"{snap.managed_by} renews it while your server runs; if this persists, restart your server."
        if hub_managed
        else "It will be refreshed with your refresh token."
    )
    expires_at = jwt_expiry(access) if access else None
    access_valid = bool(expires_at and expires_at > now)
    if access and expires_at is None:
        claims = jwt_claims(access)
        what = "is not a JWT" if claims is None else "has no usable exp claim"
        problems.append(
            Problem(
                "access_token_unreadable",
                "warning" if renewable else "error",
                f"The access token {what}; the QCS client will treat it as expired.",
                renew_note if renewable else GET_NEW_CREDENTIALS,
            )
        )
    elif access and not access_valid:
        problems.append(
            Problem(
                "access_token_expired",
                "warning" if renewable else "error",
                f"The access token expired at {rfc3339(expires_at)}.",
                renew_note if renewable else GET_NEW_CREDENTIALS,
            )
        )
    elif payload is not None and not access:
        problems.append(
            Problem(
                "access_token_missing",
                "warning" if renewable else "error",
                "secrets.toml holds no access token.",
                renew_note if renewable else GET_NEW_CREDENTIALS,
            )
        )

    obtained_at, estimated = snap.refresh_token_obtained_at()
    age_days = days_left = None
    if obtained_at is not None:
        age_days = max(0.0, (now - obtained_at).total_seconds() / 86400)
        days_left = REFRESH_TOKEN_LIFETIME_DAYS - age_days
    refresh_expired = days_left is not None and days_left <= 0
    if payload is not None and not renewable:
        problems.append(
            Problem(
                "refresh_token_missing",
                "warning" if access_valid else "error",
                "There is no refresh token, so the access token cannot be renewed when it expires.",
                GET_NEW_CREDENTIALS,
            )
        )
    elif refresh_expired:
        problems.append(
            Problem(
                "refresh_token_expired",
                "error",
                f"The refresh token is {age_days:.0f} days old; QCS refresh tokens last {REFRESH_TOKEN_LIFETIME_DAYS} days.",
                GET_NEW_CREDENTIALS,
            )
        )
    elif days_left is not None and days_left <= warning_days:
        problems.append(
            Problem(
                "refresh_token_expiring",
                "warning",
                f"The refresh token expires in about {days_left:.0f} days.",
                GET_NEW_CREDENTIALS,
            )
        )

    server_ok = not any(p.code in ("auth_server_incomplete", "issuer_trailing_slash") for p in problems)
    schema_ok = not any(p.code in ("expires_in_type", "updated_at_type", "updated_at_format") for p in problems)
    # The SDK itself can only renew with a refresh token in the file; a Hub-managed token is usable while valid.
    usable = not unreadable and schema_ok and (access_valid or (bool(refresh) and not refresh_expired and server_ok))
    if unreadable:
        state = "error"
    elif payload is None:
        state = "missing"
    elif not usable and not (hub_managed and schema_ok and not refresh_expired):
        state = "error"
    elif not access_valid:
        state = "expired"
    elif (expires_at - now) < EXPIRING_SOON or (days_left is not None and days_left <= warning_days):
        state = "expiring"
    else:
        state = "ok"

    id_claims = jwt_claims(payload["id_token"]) if payload and isinstance(payload.get("id_token"), str) else None
    id_claims = id_claims or {}
    access_claims = (jwt_claims(access) if access else None) or {}
    return {
        "profile": snap.profile,
        "settings_path": str(snap.paths.settings),
        "secrets_path": str(snap.paths.secrets),
        "identity": {
            "name": _str_claim(id_claims, "name") or _str_claim(id_claims, "preferred_username"),
            "email": _str_claim(id_claims, "email"),
            "subject": _str_claim(id_claims, "sub") or _str_claim(access_claims, "sub"),
        },
        "access_token": {
            "present": access is not None,
            "expires_at": rfc3339(expires_at) if expires_at else None,
            "expires_in_seconds": int((expires_at - now).total_seconds()) if expires_at else None,
            "valid": access_valid,
        },
        "refresh_token": {
            "present": renewable,
            "held_by": "file" if refresh else snap.managed_by,
            "obtained_at": rfc3339(obtained_at) if obtained_at else None,
            "obtained_at_estimated": estimated,
            "age_days": round(age_days, 2) if age_days is not None else None,
            "days_left": round(days_left, 2) if days_left is not None else None,
            "lifetime_days": REFRESH_TOKEN_LIFETIME_DAYS,
        },
        "auth_server": {
            "name": snap.auth_server_name,
            "issuer": _str_claim(server or {}, "issuer") or (QCS_ISSUER if server is None else None),
            "client_id": _str_claim(server or {}, "client_id") or (QCS_CLIENT_ID if server is None else None),
        },
        "usable": usable,
        "state": state,
        "problems": [asdict(p) for p in problems],
        "checked_at": rfc3339(now),
    }


def _str_claim(claims: dict[str, Any], key: str) -> str | None:
    value = claims.get(key)
    return value if isinstance(value, str) and value else None


def read_status(store: CredentialStore | None = None, **kwargs: Any) -> dict[str, Any]:
    """Read the files and compute their status in one call."""
    return compute_status((store or CredentialStore()).read(), **kwargs)


def exit_code(status: dict[str, Any]) -> int:
    """0 usable, 1 not usable, 2 a file is unreadable or corrupt (the CLI's contract)."""
    if any(p["code"] in ("file_corrupt", "file_unreadable") for p in status["problems"]):
        return 2
    return 0 if status["usable"] else 1
