"""Ask QCS whether it accepts the current access token: "Check with QCS" (panel) and ``doctor --online`` (CLI).

It asks what a QCS client asks first: one page of the quantum processors the user can see
(``GET {api_url}/v1/quantumProcessors?pageSize=100``, as pyQuil 4.22 and qcs-sdk-python 0.31 send it), with the
access token from ``secrets.toml``. The answer is put in plain words (``contract.QCSCheckResult``); it never holds a
token, and nothing of QCS's answer but its HTTP status and how many processors it listed.

It never refreshes and never writes the files: it says how QCS answers the token the QCS clients would use now.
Redirects are not followed (they would carry the token elsewhere); the usual proxy variables are honoured, as the
QCS clients honour them.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..qcs import QCS_API_URL
from .contract import QCSCheckOutcome, QCSCheckResult
from .store import CredentialStore, StoreSnapshot
from .tokens import jwt_expiry, rfc3339, utcnow

#: What pyQuil 4.22 and qcs-sdk-python 0.31 send for their first page (measured against a stand-in API).
PAGE_SIZE = 100
PROCESSORS_PATH = "/v1/quantumProcessors"
#: The QCS clients' variable that overrides the profile's api_url.
API_URL_ENV = "QCS_SETTINGS_APPLICATIONS_API_URL"
DEFAULT_TIMEOUT = 10.0

LOG_IN_AGAIN_HUB = 'Log in again ("Log in again" in the QCS panel, or log out of JupyterHub and back in).'
LOG_IN_AGAIN_FILE = (
    "Get a new token from the QCS tokens page and install it with `qcs-jupyter install`, or log in again "
    "with your QCS client."
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the token to wherever it points: never follow one."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def api_url_of(snap: StoreSnapshot, env: Mapping[str, str] | None = None) -> str:
    """The QCS API the clients would call: ``$QCS_SETTINGS_APPLICATIONS_API_URL``, else the profile's api_url,
    else QCS's own."""
    env = os.environ if env is None else env
    value = env.get(API_URL_ENV) or snap.profile_table.get("api_url")
    return value if isinstance(value, str) and value else QCS_API_URL


def shown_url(url: str) -> str | None:
    """``url`` if it is an http(s) URL fit to show (a host, no user or password, no whitespace), else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    if any(c.isspace() or ord(c) < 32 for c in url):
        return None
    return url.rstrip("/")


def check_with_qcs(
    store: CredentialStore | None = None,
    *,
    snapshot: StoreSnapshot | None = None,
    hub: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> QCSCheckResult:
    """Ask QCS with the profile's current access token (blocking). ``hub``: JupyterHub manages the credentials
    (only the advice differs)."""
    snap = snapshot if snapshot is not None else (store or CredentialStore()).read()
    started = utcnow()
    url = shown_url(api_url_of(snap, env))

    def result(outcome: QCSCheckOutcome, message: str, action: str | None, **extra: Any) -> QCSCheckResult:
        values = {"http_status": None, "processors": None, "more_processors": False, "elapsed_ms": None, **extra}
        return QCSCheckResult(
            outcome=outcome,
            message=message,
            action=action,
            profile=snap.profile,
            api_url=url,
            checked_at=rfc3339(started),
            **values,
        )

    relogin = LOG_IN_AGAIN_HUB if hub else LOG_IN_AGAIN_FILE
    payload = snap.token_payload or {}
    token = payload.get("access_token")
    if snap.errors or not isinstance(token, str) or not token:
        return result(
            QCSCheckOutcome.NOT_CHECKED,
            "QCS was not asked: there is no usable access token for this profile.",
            "See the problems listed with the status; " + relogin[0].lower() + relogin[1:],
        )
    expiry = jwt_expiry(token)
    if expiry is not None and expiry <= started:
        return result(
            QCSCheckOutcome.NOT_CHECKED,
            "QCS was not asked: the access token has expired (a QCS client would refresh it first).",
            "Refresh now (JupyterHub), or use your QCS client once so it refreshes the token, then check again."
            if hub
            else "Use your QCS client once so it refreshes the token, then check again.",
        )
    if url is None:
        return result(
            QCSCheckOutcome.NOT_CHECKED,
            "QCS was not asked: the profile's api_url is not an http(s) URL.",
            f"Set api_url in settings.toml (or ${API_URL_ENV}) to the QCS API, e.g. {QCS_API_URL}.",
        )

    request = urllib.request.Request(  # noqa: S310 - the scheme is http(s), checked by shown_url
        f"{url}{PROCESSORS_PATH}?pageSize={PAGE_SIZE}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "qcs-jupyter"},
    )
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=ssl.create_default_context())
    )
    clock = time.monotonic()
    status: int | None = None
    body = b""
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            body = response.read(1_000_000)
    except urllib.error.HTTPError as e:
        status = e.code
        e.close()
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError) as e:
        return result(
            QCSCheckOutcome.UNREACHABLE,
            f"QCS could not be reached at {url}: {_why_unreachable(e)}. Your credentials were not checked.",
            "Check this server's network access to the QCS API, and api_url in settings.toml; then check again.",
            elapsed_ms=_ms_since(clock),
        )
    elapsed = _ms_since(clock)
    if status == 401:
        return result(
            QCSCheckOutcome.REFUSED,
            "QCS refused the access token (HTTP 401): it has been revoked, or was not issued for QCS.",
            relogin,
            http_status=status,
            elapsed_ms=elapsed,
        )
    if status == 403:
        return result(
            QCSCheckOutcome.FORBIDDEN,
            "QCS accepted who you are but refused access (HTTP 403): your account lacks access to QCS.",
            "Ask your QCS administrator (or Rigetti support) to give your account access; logging in again "
            "does not change this.",
            http_status=status,
            elapsed_ms=elapsed,
        )
    if status is not None and 300 <= status < 400:
        return result(
            QCSCheckOutcome.ERROR,
            f"{url} answered with a redirect (HTTP {status}); it was not followed, so the token stays here.",
            "Set api_url in settings.toml to the QCS API itself.",
            http_status=status,
            elapsed_ms=elapsed,
        )
    if status != 200:
        return result(
            QCSCheckOutcome.ERROR,
            f"QCS answered HTTP {status}; your credentials could not be checked.",
            "Try again in a minute; if it persists, check api_url in settings.toml and QCS's status page.",
            http_status=status,
            elapsed_ms=elapsed,
        )
    try:
        data = json.loads(body)
        listed = data["quantumProcessors"]
        if not isinstance(listed, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return result(
            QCSCheckOutcome.ERROR,
            f"{url} answered, but not as the QCS API does (no list of quantum processors).",
            "Set api_url in settings.toml to the QCS API.",
            http_status=status,
            elapsed_ms=elapsed,
        )
    count = len(listed)
    more = bool(data.get("nextPageToken"))
    return result(
        QCSCheckOutcome.ACCEPTED,
        accepted_message(count, more),
        None,
        http_status=status,
        processors=count,
        more_processors=more,
        elapsed_ms=elapsed,
    )


def accepted_message(count: int, more: bool) -> str:
    if count == 0:
        return "QCS accepted your credentials, but lists no quantum processors for your account."
    many = f"at least {count}" if more else str(count)
    noun = "quantum processor" if count == 1 and not more else "quantum processors"
    return f"QCS accepted your credentials: you can see {many} {noun}."


def _why_unreachable(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(reason, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "its TLS certificate is not trusted here"
    if isinstance(reason, ssl.SSLError):
        return "the TLS handshake failed"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return type(reason).__name__


def _ms_since(clock: float) -> int:
    return int((time.monotonic() - clock) * 1000)
