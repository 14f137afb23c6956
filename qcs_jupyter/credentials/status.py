"""Token status: what the QCS client files hold, how long it lasts, and every problem in plain words.

This module is the one place that decides ``state`` and ``usable`` (the labextension shows them as they are).
It reads a ``StoreSnapshot`` in four parts (the files, the auth server, the token payload's schema, the tokens),
adds what the server's link to JupyterHub reports, and decides. The result is a ``QCSStatus`` (``contract.py``),
printed by ``qcs-jupyter status --json`` and served by the server extension. It never holds a token value, and
a problem names the key and the kind of problem, never the value found there.
"""

from __future__ import annotations

import functools
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..qcs import QCS_CLIENT_ID, QCS_ISSUER, REFRESH_TOKEN_LIFETIME_DAYS
from ..qcs import REFRESH_TOKEN_WARNING_DAYS as DEFAULT_WARNING_DAYS
from .contract import (
    QCSAccessToken,
    QCSAuthServer,
    QCSHolder,
    QCSHubInfo,
    QCSIdentity,
    QCSProblem,
    QCSProblemCode,
    QCSRefreshToken,
    QCSRenewer,
    QCSSeverity,
    QCSState,
    QCSStatus,
)
from .errors import CredentialFileError
from .store import CredentialStore, StoreSnapshot
from .tokens import EXPIRES_IN_MAX, implausible_expiry, jwt_claims, jwt_expiry, parse_rfc3339, rfc3339, utcnow

Code, Severity = QCSProblemCode, QCSSeverity
Problem = QCSProblem  # the name 0.1 exported

#: An access token that nothing renews turns "expiring" this long before it expires.
EXPIRING_SOON = timedelta(minutes=5)
GET_NEW_CREDENTIALS = (
    "Restart your server from the QCS panel (JupyterHub), run `qcs api auth-get-user`, "
    "or download new tokens from the QCS tokens page and run `qcs-jupyter install TOKENS.json`."
)
LOG_IN_AGAIN = (
    'Click "Log in again" in the QCS panel: you sign in to QCS again and your server and kernels keep running.'
)
MANAGED_BY_HUB = "jupyterhub"
FILE_ERROR_CODES = frozenset({Code.FILE_CORRUPT, Code.FILE_UNREADABLE, Code.PATH_UNRESOLVABLE})
_STRING_FIELDS = ("access_token", "refresh_token", "id_token", "token_type", "scope")
_SHOWN_NAME = re.compile(r"[\w .@+-]{1,64}")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_HIDDEN = "(not shown: it holds a value from secrets.toml)"
_ALARMS = frozenset(
    {Code.REFRESH_TOKEN_EXPIRING, Code.REFRESH_TOKEN_EXPIRED, Code.HUB_RENEWAL_FAILING, Code.HUB_RELOGIN_REQUIRED}
)


def problem(code: QCSProblemCode, severity: QCSSeverity, message: str, action: str) -> QCSProblem:
    return QCSProblem(code, severity, message, action)


def _once(snap: StoreSnapshot, key: str, compute: Callable[[], Any]) -> Any:
    """What depends on the files alone, computed once per snapshot: the server re-reads only changed files and
    hands the same snapshot to every poll until then. (The callers copy what they extend.)"""
    cache = snap.__dict__.setdefault("_status_parts", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


# --- part 1: the files -------------------------------------------------------------------------------------------
def file_error_problem(e: CredentialFileError) -> QCSProblem:
    if e.kind == "bad_path":
        return problem(Code.PATH_UNRESOLVABLE, Severity.ERROR, f"{e.path} {e.message}.", e.action)
    code = Code.FILE_CORRUPT if e.kind == "corrupt" else Code.FILE_UNREADABLE
    return problem(code, Severity.ERROR, f"{e.path} {e.message}.", e.action or "Check the file.")


def _file_problems(snap: StoreSnapshot) -> list[QCSProblem]:
    found = [file_error_problem(e) for e in snap.errors]
    if snap.errors:
        return found
    for which, exists, mode in (
        ("settings", snap.settings_exists, snap.settings_mode),
        ("secrets", snap.secrets_exists, snap.secrets_mode),
    ):
        path = getattr(snap.paths, which)
        if not exists:
            code = Code.SETTINGS_MISSING if which == "settings" else Code.SECRETS_MISSING
            msg = f"{path} does not exist; the QCS client needs both files."
            found.append(problem(code, Severity.ERROR, msg, GET_NEW_CREDENTIALS))
        elif which == "secrets" and mode is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
            msg = f"{path} can be read by other users (mode {mode:04o})."
            found.append(problem(Code.SECRETS_PERMISSIONS, Severity.WARNING, msg, f"Run `chmod 600 {path}`."))
    return found


# --- part 2: the auth server ---------------------------------------------------------------------------------------
@dataclass
class _AuthServerReading:
    shown: QCSAuthServer
    problems: list[QCSProblem] = field(default_factory=list)
    loads: bool = True  # the QCS client accepts the table
    refreshes: bool = True  # a refresh through it can work


def _profile_problems(snap: StoreSnapshot, names: _Names) -> list[QCSProblem]:
    """The profile the clients load must exist; with no [profiles] at all they have a built-in 'default'."""
    if snap.errors or not snap.settings_exists:
        return []
    profiles = snap.settings.get("profiles")
    if (isinstance(profiles, dict) and profiles and snap.profile in profiles) or (
        not profiles and snap.profile == "default"
    ):
        return []
    return [
        problem(
            Code.PROFILE_MISSING,
            Severity.ERROR,
            f"settings.toml has no [profiles.{names.profile}]; the QCS client refuses to load it.",
            "Set QCS_PROFILE_NAME (or default_profile_name in settings.toml) to one of your profiles, or add it.",
        )
    ]


def _auth_server(snap: StoreSnapshot, name: str) -> _AuthServerReading:
    table = snap.auth_server
    if table is None:
        servers = snap.settings.get("auth_servers")
        if snap.auth_server_name == "default" and not servers:  # the clients' built-in: QCS's own issuer and client
            return _AuthServerReading(QCSAuthServer(name, QCS_ISSUER, QCS_CLIENT_ID))
        reading = _AuthServerReading(QCSAuthServer(name, None, None), loads=False, refreshes=False)
        msg = f"settings.toml has no [auth_servers.{name}], which the profile names; the QCS client refuses to load it."
        action = "Add the table with client_id and issuer, or point the profile's auth_server_name at an existing one."
        reading.problems.append(problem(Code.AUTH_SERVER_MISSING, Severity.ERROR, msg, action))
        return reading
    where = f"[auth_servers.{name}] in settings.toml"
    issuer, client_id = table.get("issuer"), table.get("client_id")
    reading = _AuthServerReading(QCSAuthServer(name, _shown_issuer(issuer), _shown_client_id(client_id)))
    lacking = [key for key, value in (("client_id", client_id), ("issuer", issuer)) if value is None]
    wrong = [
        key
        for key, value in (("client_id", client_id), ("issuer", issuer))
        if value is not None and not isinstance(value, str)
    ]
    if lacking or wrong:
        parts = [f"lacks {' and '.join(lacking)}"] if lacking else []
        parts += [f"has a {key} that is not a string" for key in wrong]
        reading.problems.append(
            problem(
                Code.AUTH_SERVER_INCOMPLETE,
                Severity.ERROR,
                f"{where} {' and '.join(parts)}; the QCS client refuses the file.",
                "Add the missing key as a quoted string, or remove the table to use QCS's defaults.",
            )
        )
        reading.loads = reading.refreshes = False
        return reading
    odd = [
        key
        for key, shown in (("issuer", reading.shown.issuer), ("client_id", reading.shown.client_id))
        if shown is None
    ]
    if odd:
        what = {
            "issuer": "the issuer is not an http(s) URL",
            "client_id": "the client_id does not look like an OAuth client id",
        }
        reading.problems.append(
            problem(
                Code.AUTH_SERVER_INVALID,
                Severity.ERROR,
                f"In {where}, {' and '.join(what[k] for k in odd)} (not shown); token refresh will fail.",
                "Set the issuer URL and client id your identity provider gave you, or remove the table to use QCS's defaults.",
            )
        )
        reading.refreshes = False
    elif reading.shown.issuer and reading.shown.issuer.endswith("/"):
        reading.problems.append(
            problem(
                Code.ISSUER_TRAILING_SLASH,
                Severity.ERROR,
                f"The issuer in {where} ends with '/'; token refresh will fail.",
                "Remove the trailing slash.",
            )
        )
        reading.refreshes = False
    return reading


def _shown_issuer(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 2048 or _SPACE_OR_CONTROL.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


def _shown_client_id(value: Any) -> str | None:
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value) or jwt_claims(value) is not None:
        return None
    return value


# --- part 3: the token payload's schema ----------------------------------------------------------------------------
def _payload_problems(snap: StoreSnapshot, creds_name: str) -> tuple[list[QCSProblem], bool]:
    """Problems that make the QCS client refuse the file, and whether it loads."""
    payload = snap.token_payload
    if payload is None:
        if not snap.secrets_exists or snap.errors:
            return [], False
        if snap.credentials is not None:
            msg = f"[credentials.{creds_name}] holds no token_payload, so its status cannot be shown here."
            return [
                problem(
                    Code.CREDENTIALS_OTHER_KIND, Severity.WARNING, msg, "Nothing to do if the QCS client works for you."
                )
            ], False
        msg = f"secrets.toml has no [credentials.{creds_name}.token_payload]."
        return [problem(Code.CREDENTIALS_MISSING, Severity.ERROR, msg, GET_NEW_CREDENTIALS)], False
    found = []
    wrong = [key for key in _STRING_FIELDS if key in payload and not isinstance(payload[key], str)]
    if wrong:
        found.append(
            problem(
                Code.TOKEN_FIELD_TYPE,
                Severity.ERROR,
                f"{' and '.join(wrong)} in secrets.toml {'is' if len(wrong) == 1 else 'are'} not a quoted string; "
                "the QCS client rejects the file.",
                GET_NEW_CREDENTIALS,
            )
        )
    if "expires_in" in payload:
        value = payload["expires_in"]
        if isinstance(value, bool) or not isinstance(value, int):
            kind = f"a {_toml_kind(value)}, not an integer"
        elif not 0 <= value <= EXPIRES_IN_MAX:
            kind = "an integer outside 0 to 4294967295"
        else:
            kind = None
        if kind:
            msg = f"expires_in in secrets.toml is {kind}; the QCS client rejects the file."
            found.append(problem(Code.EXPIRES_IN_TYPE, Severity.ERROR, msg, GET_NEW_CREDENTIALS))
    updated = payload.get("updated_at")
    if updated is not None and not isinstance(updated, str):
        found.append(
            problem(
                Code.UPDATED_AT_TYPE,
                Severity.ERROR,
                f"updated_at in secrets.toml is a bare TOML {_toml_kind(updated)}; the QCS client needs a quoted "
                "RFC 3339 string.",
                'Quote it, e.g. updated_at = "2026-01-01T00:00:00Z", or reinstall your credentials.',
            )
        )
    elif isinstance(updated, str):
        try:
            parse_rfc3339(updated)
        except ValueError as e:
            msg = f"updated_at in secrets.toml is not an RFC 3339 time the QCS client can read ({e})."
            found.append(problem(Code.UPDATED_AT_FORMAT, Severity.ERROR, msg, GET_NEW_CREDENTIALS))
    return found, not found


def _toml_kind(value: Any) -> str:
    """What a TOML value is, in TOML's words (never the value itself)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date-time"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__.replace("_", " ").replace("datetime", "date-time").lower()


# --- part 4: the tokens --------------------------------------------------------------------------------------------
@dataclass
class _Tokens:
    access: str | None
    expires_at: datetime | None
    access_valid: bool
    implausible: bool
    refresh_in_file: bool
    hub_managed: bool
    obtained_at: datetime | None
    estimated: bool
    age_days: float | None
    days_left: float | None

    @property
    def refresh_expired(self) -> bool:
        return self.days_left is not None and self.days_left <= 0


def _read_tokens(snap: StoreSnapshot, now: datetime) -> _Tokens:
    payload = snap.token_payload or {}
    access = payload.get("access_token")
    access = access if isinstance(access, str) and access else None
    refresh = payload.get("refresh_token")
    expires_at = jwt_expiry(access) if access else None
    obtained_at, estimated = _once(snap, "obtained_at", snap.refresh_token_obtained_at)
    age_days = days_left = None
    if obtained_at is not None:
        age_days = max(0.0, (now - obtained_at).total_seconds() / 86400)
        days_left = REFRESH_TOKEN_LIFETIME_DAYS - age_days
    return _Tokens(
        access=access,
        expires_at=expires_at,
        access_valid=bool(expires_at and expires_at > now),
        implausible=bool(expires_at and implausible_expiry(expires_at, now)),
        refresh_in_file=isinstance(refresh, str) and bool(refresh),
        hub_managed=snap.managed_by == MANAGED_BY_HUB,
        obtained_at=obtained_at,
        estimated=estimated,
        age_days=age_days,
        days_left=days_left,
    )


# --- the decision --------------------------------------------------------------------------------------------------
@dataclass
class _Facts:
    """Everything the decision needs, each fact a plain boolean."""

    unreadable: bool
    missing: bool
    loads: bool
    access_valid: bool
    expiring_soon: bool
    renewer: QCSRenewer | None  # who renews the access token, when someone can
    client_can_refresh: bool
    hub_can_renew: bool
    alarm: bool  # worth the user's attention: renewal failing or impossible, the 90-day horizon near


def decide(f: _Facts) -> tuple[QCSState, bool]:
    """The state machine: (state, usable) from the facts. The only place either is decided."""
    usable = not f.unreadable and not f.missing and f.loads and (f.access_valid or f.client_can_refresh)
    if f.unreadable:
        return QCSState.ERROR, False
    if f.missing:
        return QCSState.MISSING, False
    if not f.loads:
        return QCSState.ERROR, False
    if f.access_valid:
        if f.alarm or (f.renewer is None and f.expiring_soon):
            return QCSState.EXPIRING, True
        return QCSState.OK, True
    if usable or f.hub_can_renew:
        return QCSState.EXPIRED, usable
    return QCSState.ERROR, False


def evaluate(
    snap: StoreSnapshot,
    *,
    now: datetime | None = None,
    warning_days: float = DEFAULT_WARNING_DAYS,
    hub: QCSHubInfo | Mapping[str, Any] | None = None,
) -> QCSStatus:
    """The typed status of one snapshot of the files, with the server's Hub link when there is one."""
    now = now or utcnow()
    hub_info = QCSHubInfo.from_mapping(hub) if hub is not None else None
    names: _Names = _once(snap, "names", lambda: _Names(snap))
    problems = list(_once(snap, "file", lambda: _file_problems(snap) + _profile_problems(snap, names)))
    server: _AuthServerReading = _once(snap, "server", lambda: _auth_server(snap, names.auth_server))
    payload_problems, payload_loads = _once(snap, "payload", lambda: _payload_problems(snap, names.credentials))
    problems += server.problems + payload_problems
    tokens = _read_tokens(snap, now)
    payload = snap.token_payload

    relogin = bool(hub_info and hub_info.available and hub_info.relogin_required)
    renewal_error = hub_info.last_sync_error if hub_info and hub_info.available else None
    if tokens.hub_managed:
        renewer = QCSRenewer.JUPYTERHUB
    elif tokens.refresh_in_file:
        renewer = QCSRenewer.CLIENT
    else:
        renewer = None
    # A client in a kernel refreshes with the file's refresh token (with JupyterHub: through the Hub's issuer, which
    # answers only while the real refresh token lives and the user is logged in).
    loads = server.loads and payload_loads and not any(p.code is Code.PROFILE_MISSING for p in problems)
    client_can_refresh = (
        loads
        and tokens.refresh_in_file
        and server.refreshes
        and not tokens.refresh_expired
        and not (tokens.hub_managed and relogin)
    )
    hub_can_renew = tokens.hub_managed and not tokens.refresh_expired and not relogin
    renewable = client_can_refresh or hub_can_renew

    if payload is not None:
        problems += _access_problems(tokens, renewable, hub_can_renew, relogin)
        problems += _refresh_problems(tokens, renewer, warning_days, access_valid=tokens.access_valid)
    problems += _hub_problems(hub_info, tokens, renewal_error)

    facts = _Facts(
        unreadable=bool(snap.errors),
        missing=not snap.errors and (not snap.settings_exists or not snap.secrets_exists or payload is None),
        loads=loads,
        access_valid=tokens.access_valid,
        expiring_soon=bool(tokens.expires_at and tokens.expires_at - now < EXPIRING_SOON),
        renewer=renewer if renewable else None,
        client_can_refresh=client_can_refresh,
        hub_can_renew=hub_can_renew,
        # Usable now but worth the user's attention: anything that stops renewal, or an error the file holds.
        alarm=any(p.severity is Severity.ERROR or p.code in _ALARMS for p in problems),
    )
    state, usable = decide(facts)
    problems.sort(key=lambda p: p.severity != Severity.ERROR)  # errors first, otherwise in the order found
    status = QCSStatus(
        profile=names.profile,
        settings_path=str(snap.paths.settings),
        secrets_path=str(snap.paths.secrets),
        home_dir=str(snap.paths.home) if snap.paths.home else None,
        identity=_once(snap, "identity", lambda: _identity(snap, tokens.access)),
        access_token=QCSAccessToken(
            present=tokens.access is not None,
            expires_at=rfc3339(tokens.expires_at) if tokens.expires_at else None,
            expires_in_seconds=int((tokens.expires_at - now).total_seconds()) if tokens.expires_at else None,
            valid=tokens.access_valid,
            renewed_by=renewer if renewable else None,
        ),
        refresh_token=QCSRefreshToken(
            present=tokens.refresh_in_file or tokens.hub_managed,
            held_by=QCSHolder.JUPYTERHUB if tokens.hub_managed else QCSHolder.FILE if tokens.refresh_in_file else None,
            in_file=tokens.refresh_in_file,
            obtained_at=rfc3339(tokens.obtained_at) if tokens.obtained_at else None,
            obtained_at_estimated=tokens.estimated,
            age_days=round(tokens.age_days, 2) if tokens.age_days is not None else None,
            days_left=round(tokens.days_left, 2) if tokens.days_left is not None else None,
            lifetime_days=REFRESH_TOKEN_LIFETIME_DAYS,
        ),
        auth_server=server.shown,
        usable=usable,
        state=state,
        summary=_summary(state, tokens, renewer if renewable else None, problems, now),
        problems=problems,
        checked_at=rfc3339(now),
        hub=hub_info,
    )
    status = _without_file_values(status, snap)
    if hub_info is not None and not hub_info.owner:
        status = _for_non_owner(status)
    return status


def _access_problems(t: _Tokens, renewable: bool, hub_can_renew: bool, relogin: bool) -> list[QCSProblem]:
    severity = Severity.WARNING if renewable else Severity.ERROR
    if hub_can_renew:
        note = "JupyterHub renews it while your server runs; if this persists, restart your server."
    elif renewable:
        note = "The QCS client refreshes it with your refresh token when needed."
    else:
        note = LOG_IN_AGAIN if relogin else GET_NEW_CREDENTIALS
    if t.access is None:
        return [problem(Code.ACCESS_TOKEN_MISSING, severity, "secrets.toml holds no access token.", note)]
    if t.expires_at is None:
        what = "is not a JWT" if jwt_claims(t.access) is None else "has no usable exp claim"
        msg = f"The access token {what}; the QCS client will treat it as expired."
        return [problem(Code.ACCESS_TOKEN_UNREADABLE, severity, msg, note)]
    if not t.access_valid:
        msg = f"The access token expired at {rfc3339(t.expires_at)}."
        return [problem(Code.ACCESS_TOKEN_EXPIRED, severity, msg, note)]
    if t.implausible:
        msg = f"The access token claims to be valid until {t.expires_at.date().isoformat()}, longer than any issuer grants; QCS did not issue it."
        action = "Fresh credentials from JupyterHub replace it." if t.hub_managed else GET_NEW_CREDENTIALS
        return [problem(Code.ACCESS_TOKEN_IMPLAUSIBLE, Severity.WARNING, msg, action)]
    return []


def _refresh_problems(
    t: _Tokens, renewer: QCSRenewer | None, warning_days: float, *, access_valid: bool
) -> list[QCSProblem]:
    hub = t.hub_managed
    action = LOG_IN_AGAIN if hub else GET_NEW_CREDENTIALS
    whose = "Your QCS login at JupyterHub" if hub else "The refresh token"
    if renewer is None:
        msg = "There is no refresh token, so the access token cannot be renewed when it expires."
        return [problem(Code.REFRESH_TOKEN_MISSING, Severity.WARNING if access_valid else Severity.ERROR, msg, action)]
    if t.refresh_expired:
        msg = f"{whose} is {t.age_days:.0f} days old; QCS refresh tokens last {REFRESH_TOKEN_LIFETIME_DAYS} days."
        return [problem(Code.REFRESH_TOKEN_EXPIRED, Severity.ERROR, msg, action)]
    if t.days_left is not None and t.days_left <= warning_days:
        msg = f"{whose} expires in about {t.days_left:.0f} days (QCS refresh tokens last {REFRESH_TOKEN_LIFETIME_DAYS} days)."
        return [problem(Code.REFRESH_TOKEN_EXPIRING, Severity.WARNING, msg, action)]
    return []


def _hub_problems(hub: QCSHubInfo | None, t: _Tokens, renewal_error: str | None) -> list[QCSProblem]:
    if hub is None or not hub.available:
        return []
    if hub.relogin_required:
        msg = "JupyterHub can no longer renew your QCS credentials: the QCS login expired, was refused, or you logged out."
        return [
            problem(
                Code.HUB_RELOGIN_REQUIRED, Severity.WARNING if t.access_valid else Severity.ERROR, msg, LOG_IN_AGAIN
            )
        ]
    if renewal_error:
        msg = f"Renewing the credentials from JupyterHub failed: {renewal_error}"
        action = "Your current credentials are kept; the server retries. If this persists, restart your server."
        return [problem(Code.HUB_RENEWAL_FAILING, Severity.WARNING, msg, action)]
    return []


def _summary(state: QCSState, t: _Tokens, renewer: QCSRenewer | None, problems: list[QCSProblem], now: datetime) -> str:
    if state is QCSState.OK and t.expires_at is not None:
        left = _duration(t.expires_at - now)
        if renewer is QCSRenewer.JUPYTERHUB:
            return f"Valid for {left}; renews automatically before then (JupyterHub keeps it fresh)."
        if renewer is QCSRenewer.CLIENT:
            return f"Valid for {left}; the QCS client renews it with the refresh token when needed."
        return f"Valid for {left}; it cannot be renewed after that."
    if problems:
        return problems[0].message
    return {
        QCSState.MISSING: "There are no QCS credentials for this profile.",
        QCSState.EXPIRED: "The access token has expired.",
    }.get(state, f"The credentials are {state.value}.")


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


# --- what may be shown ----------------------------------------------------------------------------------------------
class _Names:
    """The profile, credentials and auth-server names as shown: only when they look like names."""

    def __init__(self, snap: StoreSnapshot) -> None:
        self.profile = _shown_name(snap.profile)
        self.credentials = _shown_name(snap.credentials_name)
        self.auth_server = _shown_name(snap.auth_server_name)


def _shown_name(value: str) -> str:
    return value if _SHOWN_NAME.fullmatch(value) else "<name not shown>"


def _identity(snap: StoreSnapshot, access: str | None) -> QCSIdentity:
    payload = snap.token_payload or {}
    id_token = payload.get("id_token")
    id_claims = (jwt_claims(id_token) if isinstance(id_token, str) else None) or {}
    access_claims = (jwt_claims(access) if access else None) or {}
    return QCSIdentity(
        name=_claim(id_claims, "name") or _claim(id_claims, "preferred_username"),
        email=_claim(id_claims, "email"),
        subject=_claim(id_claims, "sub") or _claim(access_claims, "sub"),
    )


def _claim(claims: Mapping[str, Any], key: str) -> str | None:
    value = claims.get(key)
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        return None
    return value if jwt_claims(value) is None else None


def _secret_values(snap: StoreSnapshot) -> frozenset[str]:
    """Every long string in secrets.toml: none of them may appear in what the status shows."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    return frozenset(s for s in walk(snap.secrets) if len(s) >= 12)


def _secret_pattern(snap: StoreSnapshot) -> re.Pattern[str] | None:
    values = _secret_values(snap)
    return _pattern_of(values) if values else None


@functools.lru_cache(maxsize=1)  # the current secrets only: the status is judged again on every change of the files
def _pattern_of(values: frozenset[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(v) for v in sorted(values)))


def _without_file_values(status: QCSStatus, snap: StoreSnapshot) -> QCSStatus:
    """The last line of defence: a shown string that contains a value from secrets.toml is replaced."""
    secrets = _once(snap, "secrets", lambda: _secret_pattern(snap))

    def leaks(value: Any) -> bool:
        return isinstance(value, str) and secrets.search(value) is not None

    def scrub(obj: Any) -> Any:
        names = obj.__dataclass_fields__
        if not any(leaks(getattr(obj, k)) for k in names):
            return obj  # the usual case: nothing to replace, nothing rebuilt
        return replace(obj, **{k: _HIDDEN for k in names if leaks(getattr(obj, k))})

    if not secrets:
        return status
    return replace(
        scrub(status),
        identity=scrub(status.identity),
        auth_server=scrub(status.auth_server),
        problems=[scrub(p) for p in status.problems],
    )


def _for_non_owner(status: QCSStatus) -> QCSStatus:
    """What a user the server is shared with may see: the state, nothing of who owns it, where, or why."""
    return replace(
        status,
        settings_path=None,
        secrets_path=None,
        home_dir=None,
        identity=QCSIdentity(None, None, None),
        problems=[],
        summary=_OWNER_ONLY[status.state],
    )


_OWNER_ONLY = {
    QCSState.OK: "The owner's QCS credentials are valid.",
    QCSState.EXPIRING: "The owner's QCS credentials need the owner's attention soon.",
    QCSState.EXPIRED: "The owner's QCS access token has expired.",
    QCSState.ERROR: "The owner's QCS credentials are not usable.",
    QCSState.MISSING: "The owner has no QCS credentials here.",
}


# --- entry points ---------------------------------------------------------------------------------------------------
def compute_status(
    snap: StoreSnapshot,
    *,
    now: datetime | None = None,
    warning_days: float = DEFAULT_WARNING_DAYS,
    hub: QCSHubInfo | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status as a JSON-ready dict (see ``contract.QCSStatus``)."""
    return evaluate(snap, now=now, warning_days=warning_days, hub=hub).to_json()


def read_status(store: CredentialStore | None = None, **kwargs: Any) -> dict[str, Any]:
    """Read the files and compute their status in one call."""
    return compute_status((store or CredentialStore()).read(), **kwargs)


def exit_code(status: Mapping[str, Any] | QCSStatus) -> int:
    """0 usable, 1 not usable, 2 a file is unreadable or corrupt or its path unresolvable (the CLI's contract)."""
    data = status.to_json() if isinstance(status, QCSStatus) else status
    if any(p["code"] in {c.value for c in FILE_ERROR_CODES} for p in data["problems"]):
        return 2
    return 0 if data["usable"] else 1
