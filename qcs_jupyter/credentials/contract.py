"""The status contract: one typed definition of what ``qcs-jupyter status --json`` and ``GET qcs-jupyter/status`` say.

These dataclasses and enums are the single source; each field's description is its ``Annotated`` string. ``python -m qcs_jupyter.credentials.schemagen`` emits the JSON
Schema (``status.schema.json`` beside this file) and the labextension's TypeScript types
(``labextension/src/contract.ts``) from them; a test fails when either drifts. The state machine that fills
``state`` and ``usable`` lives in ``status.py`` and nowhere else: the browser shows what it is given.

No field ever holds a token value, and no field or problem message repeats a value read from the files other than
the shown names, issuer, client id and identity claims, each checked for shape first.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Annotated, Any, Literal


class QCSState(str, Enum):
    """The overall state, decided once on the Python side (qcs_jupyter/credentials/status.py); the UI shows it as is."""

    OK = "ok"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    ERROR = "error"
    MISSING = "missing"


QCSState.OK.__doc__ = "Usable, and either renewed automatically or valid for a while yet."
QCSState.EXPIRING.__doc__ = (
    "Usable now, but something needs attention soon: the 90-day refresh horizon is near, renewal is failing, or the "
    "access token cannot be renewed and expires within 5 minutes."
)
QCSState.EXPIRED.__doc__ = (
    "The access token has expired; the QCS client will refresh it on next use, or JupyterHub renews it shortly."
)
QCSState.ERROR.__doc__ = "The QCS client cannot use the files as they are; a problem says what to do."
QCSState.MISSING.__doc__ = "There are no credentials for the profile."


class QCSSeverity(str, Enum):
    """How bad a problem is."""

    ERROR = "error"
    WARNING = "warning"


QCSSeverity.ERROR.__doc__ = "The credentials are, or will shortly be, unusable until the user acts."
QCSSeverity.WARNING.__doc__ = "Worth knowing; the credentials still work."


class QCSProblemCode(str, Enum):
    """A stable machine-readable code for each problem (the message is for people and may change)."""

    PATH_UNRESOLVABLE = "path_unresolvable"
    FILE_UNREADABLE = "file_unreadable"
    FILE_CORRUPT = "file_corrupt"
    SETTINGS_MISSING = "settings_missing"
    SECRETS_MISSING = "secrets_missing"
    SECRETS_PERMISSIONS = "secrets_permissions"
    PROFILE_MISSING = "profile_missing"
    AUTH_SERVER_MISSING = "auth_server_missing"
    AUTH_SERVER_INCOMPLETE = "auth_server_incomplete"
    AUTH_SERVER_INVALID = "auth_server_invalid"
    ISSUER_TRAILING_SLASH = "issuer_trailing_slash"
    CREDENTIALS_MISSING = "credentials_missing"
    CREDENTIALS_OTHER_KIND = "credentials_other_kind"
    TOKEN_FIELD_TYPE = "token_field_type"
    EXPIRES_IN_TYPE = "expires_in_type"
    UPDATED_AT_TYPE = "updated_at_type"
    UPDATED_AT_FORMAT = "updated_at_format"
    ACCESS_TOKEN_MISSING = "access_token_missing"
    ACCESS_TOKEN_UNREADABLE = "access_token_unreadable"
    ACCESS_TOKEN_EXPIRED = "access_token_expired"
    ACCESS_TOKEN_IMPLAUSIBLE = "access_token_implausible"
    REFRESH_TOKEN_MISSING = "refresh_token_missing"
    REFRESH_TOKEN_EXPIRING = "refresh_token_expiring"
    REFRESH_TOKEN_EXPIRED = "refresh_token_expired"
    HUB_RENEWAL_FAILING = "hub_renewal_failing"
    HUB_RELOGIN_REQUIRED = "hub_relogin_required"


_PROBLEM_DOCS = {
    "path_unresolvable": "QCS_SETTINGS_FILE_PATH or QCS_SECRETS_FILE_PATH names a path the QCS clients cannot resolve.",
    "file_unreadable": "A file cannot be opened: a symbolic link, a directory, a FIFO, or no permission.",
    "file_corrupt": "A file is not valid TOML or not UTF-8.",
    "settings_missing": "settings.toml does not exist (the QCS clients need both files).",
    "secrets_missing": "secrets.toml does not exist (the QCS clients need both files).",
    "secrets_permissions": "secrets.toml can be read by other users.",
    "profile_missing": "settings.toml has no table for the profile the clients load: they refuse the file.",
    "auth_server_missing": "The profile names an [auth_servers.<name>] table that does not exist: the clients refuse "
    "the file.",
    "auth_server_incomplete": "[auth_servers.<name>] lacks client_id or issuer, or one is not a string: the QCS "
    "clients refuse the file.",
    "auth_server_invalid": "The issuer is not an http(s) URL, or client_id does not look like an OAuth client id: "
    "the QCS clients load the file, but refreshing fails.",
    "issuer_trailing_slash": "The issuer ends with '/': refreshing fails (the discovery document's issuer differs).",
    "credentials_missing": "secrets.toml has no [credentials.<name>.token_payload].",
    "credentials_other_kind": "[credentials.<name>] holds client_credentials or externally_managed, not a token_payload.",
    "token_field_type": "A token field (access_token, refresh_token, id_token, token_type, scope) is not a string: "
    "the QCS clients refuse the file.",
    "expires_in_type": "expires_in is not an integer from 0 to 4294967295: the QCS clients refuse the file.",
    "updated_at_type": "updated_at is a bare TOML date-time: the QCS clients need an RFC 3339 string.",
    "updated_at_format": "updated_at is not an RFC 3339 time the QCS clients can read: they refuse the file.",
    "access_token_missing": "There is no access token.",
    "access_token_unreadable": "The access token is not a JWT or has no usable exp: the QCS clients treat it as expired.",
    "access_token_expired": "The access token has expired.",
    "access_token_implausible": "The access token claims to be valid for longer than any issuer grants: it was not "
    "issued by QCS, and the Hub's fresh tokens replace it.",
    "refresh_token_missing": "Nothing can renew the access token when it expires.",
    "refresh_token_expiring": "The refresh token (the QCS login) reaches its 90-day limit soon.",
    "refresh_token_expired": "The refresh token (the QCS login) is past its 90-day limit.",
    "hub_renewal_failing": "The server's last attempt to get fresh credentials from JupyterHub failed.",
    "hub_relogin_required": "The QCS login at JupyterHub expired, was refused, or the user logged out: log in again.",
}
for _code in QCSProblemCode:
    _code.__doc__ = _PROBLEM_DOCS[_code.value]


class QCSHolder(str, Enum):
    """Who holds the refresh token that keeps the credentials alive."""

    FILE = "file"
    JUPYTERHUB = "jupyterhub"


QCSHolder.FILE.__doc__ = "secrets.toml holds it; the QCS client refreshes with it."
QCSHolder.JUPYTERHUB.__doc__ = (
    "JupyterHub holds the real one; secrets.toml holds at most a session token that refreshes through the Hub."
)


class QCSRenewer(str, Enum):
    """Who renews the access token before or when it expires."""

    JUPYTERHUB = "jupyterhub"
    CLIENT = "client"


QCSRenewer.JUPYTERHUB.__doc__ = "The server extension rewrites secrets.toml with fresh tokens from JupyterHub."
QCSRenewer.CLIENT.__doc__ = "The QCS client refreshes it with the refresh token in secrets.toml when needed."


@dataclass(frozen=True)
class QCSIdentity:
    """Who the credentials belong to, from the ID token's claims (read without verification)."""

    name: Annotated[str | None, "The name (or preferred_username) claim."]
    email: Annotated[str | None, "The email claim."]
    subject: Annotated[str | None, "The sub claim of the ID token, else of the access token."]


@dataclass(frozen=True)
class QCSAccessToken:
    """The access token in secrets.toml, as the QCS client judges it (its JWT exp)."""

    present: Annotated[bool, "secrets.toml holds an access token."]
    expires_at: Annotated[str | None, "When it expires (RFC 3339, UTC), from its exp claim."]
    expires_in_seconds: Annotated[int | None, "Seconds from checked_at to expires_at (negative once expired)."]
    valid: Annotated[bool, "It has not expired at checked_at."]
    renewed_by: Annotated[QCSRenewer | None, "Who renews it; null when nothing can."]


@dataclass(frozen=True)
class QCSRefreshToken:
    """The refresh token behind the credentials: its holder and its age against QCS's 90-day limit."""

    present: Annotated[bool, "A refresh token exists, in the file or held by JupyterHub."]
    held_by: Annotated[QCSHolder | None, "Who holds it."]
    in_file: Annotated[bool, "secrets.toml holds a refresh token (with JupyterHub: the Hub's session token)."]
    obtained_at: Annotated[str | None, "When it was issued (RFC 3339), if known."]
    obtained_at_estimated: Annotated[bool, "obtained_at is an estimate (the file's updated_at), not a record."]
    age_days: Annotated[float | None, "Its age in days at checked_at."]
    days_left: Annotated[float | None, "Days left until lifetime_days (negative once past)."]
    lifetime_days: Annotated[int, "How long QCS refresh tokens live (90)."]


@dataclass(frozen=True)
class QCSAuthServer:
    """The profile's [auth_servers.<name>] table: where tokens are refreshed."""

    name: Annotated[str, "The auth server's name (the profile's auth_server_name)."]
    issuer: Annotated[str | None, "The issuer URL; QCS's own when the table is absent; null when missing or not a URL."]
    client_id: Annotated[str | None, "The OAuth client id; QCS's own when the table is absent; null when missing."]


@dataclass(frozen=True)
class QCSProblem:
    """One problem, in plain words, with what to do about it."""

    code: Annotated[QCSProblemCode, "What kind of problem it is."]
    severity: Annotated[QCSSeverity, "How bad it is."]
    message: Annotated[str, "What is wrong, in a sentence; never a value from the files."]
    action: Annotated[str, "What to do about it."]


@dataclass(frozen=True)
class QCSHubInfo:
    """The server's link to JupyterHub (filled in by the server extension; null from the CLI)."""

    available: Annotated[bool, "The server runs under JupyterHub with qcs-jupyter's Hub side."]
    last_sync: Annotated[str | None, "When credentials were last pulled from the Hub (RFC 3339)."]
    last_sync_error: Annotated[str | None, "Why the last pull failed, or null."]
    refresh_available: Annotated[bool, "The caller may ask for a pull now (POST qcs-jupyter/refresh)."]
    restart_available: Annotated[bool, "The caller may restart the server (POST qcs-jupyter/restart)."]
    spawn_url: Annotated[str | None, "Same-origin path that starts the server again after a restart."]
    mode: Annotated[Literal["hub"] | None, '"hub" when JupyterHub manages the credentials, else null.']
    reason: Annotated[str | None, "Why refresh/restart are not available, or null."]
    login_url: Annotated[str | None, "Same-origin path to log in to JupyterHub again, or null."]
    relogin_required: Annotated[bool, "The QCS login expired, was refused, or the user logged out."]
    owner: Annotated[bool, "The caller owns this server; a non-owner gets no identity, paths, problems or actions."]

    @classmethod
    def from_mapping(cls, data: Any) -> QCSHubInfo:
        """Build from the server extension's dict; a missing key takes its safe default, an unknown key is dropped."""
        if isinstance(data, QCSHubInfo):
            return data
        data = data if isinstance(data, dict) else {}
        defaults: dict[str, Any] = {
            "available": False,
            "refresh_available": False,
            "restart_available": False,
            "relogin_required": False,
            "owner": True,
        }
        values = {f.name: data.get(f.name, defaults.get(f.name)) for f in fields(cls)}
        if values["mode"] != "hub":
            values["mode"] = None
        return cls(**values)


@dataclass(frozen=True)
class QCSStatus:
    """The status of the QCS credentials for one profile: GET qcs-jupyter/status and qcs-jupyter status --json."""

    profile: Annotated[str, "The profile shown: QCS_PROFILE_NAME, else default_profile_name, else 'default'."]
    settings_path: Annotated[str | None, "The settings.toml the QCS clients read (null for a non-owner)."]
    secrets_path: Annotated[str | None, "The secrets.toml the QCS clients read (null for a non-owner)."]
    home_dir: Annotated[
        str | None, "The home directory the paths are resolved against, to show them as ~/... (null for a non-owner)."
    ]
    identity: Annotated[QCSIdentity, "Who the credentials belong to (all null for a non-owner)."]
    access_token: Annotated[QCSAccessToken, "The access token."]
    refresh_token: Annotated[QCSRefreshToken, "The refresh token."]
    auth_server: Annotated[QCSAuthServer, "Where tokens are refreshed."]
    usable: Annotated[bool, "The QCS client can get a valid access token from the files now."]
    state: Annotated[QCSState, "The overall state; the UI shows it as is."]
    summary: Annotated[str, "One sentence saying how things stand, for a status line."]
    problems: Annotated[list[QCSProblem], "Every problem found, most important first."]
    checked_at: Annotated[str, "When this status was computed (RFC 3339, UTC)."]
    hub: Annotated[QCSHubInfo | None, "The link to JupyterHub, or null outside JupyterHub and from the CLI."]

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-ready dict (enums as their string values)."""
        return _plain(self)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    # dataclasses.asdict deep-copies every leaf; the panel polls, so convert directly (the values are immutable).
    kind = type(value)
    if kind in _SCALARS:  # most leaves: one set lookup
        return value
    if isinstance(value, Enum):
        return value.value
    fields = getattr(kind, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name in fields}
    if kind is list:
        return [_plain(v) for v in value]
    return value


class QCSCheckOutcome(str, Enum):
    """What QCS answered when asked with the current access token (POST qcs-jupyter/check, doctor --online)."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    FORBIDDEN = "forbidden"
    UNREACHABLE = "unreachable"
    ERROR = "error"
    NOT_CHECKED = "not_checked"


QCSCheckOutcome.ACCEPTED.__doc__ = "QCS accepted the access token and listed the quantum processors the user can see."
QCSCheckOutcome.REFUSED.__doc__ = "QCS refused the access token (HTTP 401): log in again."
QCSCheckOutcome.FORBIDDEN.__doc__ = "QCS knows the token, but the account lacks access (HTTP 403)."
QCSCheckOutcome.UNREACHABLE.__doc__ = "The QCS API could not be reached (network, DNS, TLS or timeout)."
QCSCheckOutcome.ERROR.__doc__ = (
    "The QCS API answered something else (another HTTP status, a redirect, not its JSON): see the message."
)
QCSCheckOutcome.NOT_CHECKED.__doc__ = (
    "QCS was not asked: there is no unexpired access token, or the API URL is not an http(s) URL."
)


@dataclass(frozen=True)
class QCSCheckResult:
    """The answer of QCS to what a QCS client asks first: one page of the quantum processors the user can see."""

    outcome: Annotated[QCSCheckOutcome, "What QCS answered."]
    message: Annotated[str, "What happened, in plain words; never a token or a value from QCS's answer."]
    action: Annotated[str | None, "What to do about it, or null when nothing is needed."]
    profile: Annotated[str, "The profile whose access token was used."]
    api_url: Annotated[str | None, "The QCS API asked (the profile's api_url), or null when it is not a URL."]
    http_status: Annotated[int | None, "The HTTP status QCS answered, or null when it did not answer."]
    processors: Annotated[int | None, "How many quantum processors the first page listed (accepted only)."]
    more_processors: Annotated[bool, "QCS has more processors than the first page listed."]
    elapsed_ms: Annotated[int | None, "How long QCS took to answer, in milliseconds (null when not asked)."]
    checked_at: Annotated[str, "When QCS was asked (RFC 3339, UTC)."]

    def to_json(self) -> dict[str, Any]:
        """A plain JSON-ready dict (enums as their string values)."""
        return _plain(self)


#: The wire types, in the order the schema and the TypeScript file list them.
WIRE_TYPES: tuple[type, ...] = (
    QCSStatus,
    QCSIdentity,
    QCSAccessToken,
    QCSRefreshToken,
    QCSAuthServer,
    QCSProblem,
    QCSHubInfo,
    QCSState,
    QCSSeverity,
    QCSProblemCode,
    QCSHolder,
    QCSRenewer,
    QCSCheckResult,
    QCSCheckOutcome,
)
