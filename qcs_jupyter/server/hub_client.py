"""The server's client of the Hub API: pull fresh QCS credentials into ``~/.qcs``, and stop for a restart.

Every call carries the server's own token (``JUPYTERHUB_API_TOKEN``); the Hub answers it because JupyterHub
issued that token to this very server. No QCS secret passes through the environment. Calls are plain blocking
HTTP run off the event loop.

The first pull starts as soon as the server's event loop runs (the server is listening by then): a server starts
as fast as one without this extension. Until that pull has finished, whatever could read ``~/.qcs`` first (a
kernel or terminal being started, the status) waits for it, at most ``first_pull_wait`` seconds from the start
(``wait_first_pull``). This module imports nothing heavy: the credential code loads with the first pull, after
the server listens.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

# The credential code (TOML, file locking, the handoff document) is imported where it is used, not here: this
# module loads with the server extension, before the server listens, and the pull that needs it runs after.


class HubError(Exception):
    """A Hub call failed; the message says what happened and what to do. ``relogin``: log in again."""

    def __init__(self, message: str, *, relogin: bool = False) -> None:
        super().__init__(message)
        self.relogin = relogin


@dataclass
class SyncState:
    last_sync: datetime | None = None
    last_sync_error: str | None = None
    next_sync_in: float | None = None
    access_token_expires_at: datetime | None = None
    profile: str | None = None
    relogin_required: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the server's token to wherever the redirect points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _env(name: str) -> str:
    return os.environ.get(name) or ""


class QCSHubClient(LoggingConfigurable):
    """Keeps ``~/.qcs`` fresh from JupyterHub while the server runs, and asks the Hub to stop this server.

    Its connection settings default from the variables JupyterHub gives every single-user server
    (``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_USER``, ...), as JupyterHub's own ``HubAuth``
    does; the timing options are set in the server's config as ``c.QCSHubClient.<option>``.
    """

    api_url = Unicode(help="The Hub API URL. Default: $JUPYTERHUB_API_URL.").tag(config=True)
    api_token = Unicode(help="This server's Hub API token. Default: $JUPYTERHUB_API_TOKEN (never logged).")
    user = Unicode(help="The server's owner. Default: $JUPYTERHUB_USER.").tag(config=True)
    server_name = Unicode(help="The server's name ('' = default server). Default: $JUPYTERHUB_SERVER_NAME.").tag(
        config=True
    )
    base_url = Unicode(help="The Hub's base URL path. Default: $JUPYTERHUB_BASE_URL, else '/'.").tag(config=True)
    service_prefix = Unicode(help="This server's URL path. Default: $JUPYTERHUB_SERVICE_PREFIX, else '/'.").tag(
        config=True
    )
    certfile = Unicode(help="Client certificate for internal TLS. Default: $JUPYTERHUB_SSL_CERTFILE.").tag(config=True)
    keyfile = Unicode(help="Client key for internal TLS. Default: $JUPYTERHUB_SSL_KEYFILE.").tag(config=True)
    client_ca = Unicode(help="CA that signs the Hub's internal certificate. Default: $JUPYTERHUB_SSL_CLIENT_CA.").tag(
        config=True
    )

    sync_margin = Float(
        120.0,
        help="""Fetch fresh credentials from the Hub this many seconds before the access token expires
        (capped at a third of the token's lifetime).""",
    ).tag(config=True)
    sync_min_interval = Float(5.0, help="Never fetch from the Hub more often than this (seconds).").tag(config=True)
    sync_max_interval = Float(1800.0, help="Fetch from the Hub at least this often (seconds).").tag(config=True)
    timeout = Float(
        20.0,
        help="""Seconds to wait for each JupyterHub API call. Longer than the Hub's own wait for the identity
        provider (QCSAuthenticator.refresh_timeout, 10 s): when the IdP is slow, the Hub answers with the tokens
        it has once that wait is over, and this server should still be listening then.""",
    ).tag(config=True)
    first_pull_wait = Float(
        10.0,
        help="""At most this many seconds after the server starts, a kernel or terminal being started, or a status
        request, waits for the server's first pull of credentials from the Hub, so that it finds ~/.qcs written.
        The pull starts when the server listens and usually takes well under a second; if the Hub has not
        answered by then, they go ahead with what ~/.qcs holds, and the status and the log say so.""",
    ).tag(config=True)
    profile = Unicode(
        None,
        allow_none=True,
        help="QCS profile to write. Default: $QCS_PROFILE_NAME, else the profile the Hub names.",
    ).tag(config=True)

    @default("api_url")
    def _api_url_default(self) -> str:
        return _env("JUPYTERHUB_API_URL").rstrip("/")

    @default("api_token")
    def _api_token_default(self) -> str:
        return _env("JUPYTERHUB_API_TOKEN")

    @default("user")
    def _user_default(self) -> str:
        return _env("JUPYTERHUB_USER")

    @default("server_name")
    def _server_name_default(self) -> str:
        return _env("JUPYTERHUB_SERVER_NAME")

    @default("base_url")
    def _base_url_default(self) -> str:
        return _env("JUPYTERHUB_BASE_URL") or "/"

    @default("service_prefix")
    def _service_prefix_default(self) -> str:
        return _env("JUPYTERHUB_SERVICE_PREFIX") or "/"

    @default("certfile")
    def _certfile_default(self) -> str:
        return _env("JUPYTERHUB_SSL_CERTFILE")

    @default("keyfile")
    def _keyfile_default(self) -> str:
        return _env("JUPYTERHUB_SSL_KEYFILE")

    @default("client_ca")
    def _client_ca_default(self) -> str:
        return _env("JUPYTERHUB_SSL_CLIENT_CA")

    @default("profile")
    def _profile_default(self) -> str | None:
        from ..credentials.paths import profile_from_env

        return profile_from_env()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = SyncState()
        self._failures = 0
        self._task: asyncio.Task | None = None
        self._opener: urllib.request.OpenerDirector | None = None
        # The first pull: the deadline of waiting for it (set by ``expect_first_pull``), whether it is over (also
        # for threads), its future (for coroutines), and whether giving up on it was logged.
        self._first_deadline: float | None = None
        self.first_pull_done = threading.Event()
        self._first_future: asyncio.Future | None = None
        self._first_gave_up = False

    @property
    def available(self) -> bool:
        return bool(self.api_url and self.api_token and self.user)

    @property
    def spawn_url(self) -> str | None:
        server = f"/{quote(self.server_name)}" if self.server_name else ""
        return _same_origin(f"{self.hub_prefix}spawn/{quote(self.user)}{server}?next={quote(self.lab_url, safe='')}")

    @property
    def login_url(self) -> str | None:
        return _same_origin(f"{self.hub_prefix}oauth_login?next={quote(self.lab_url, safe='')}")

    @property
    def hub_prefix(self) -> str:
        return self.base_url.rstrip("/") + "/hub/"

    @property
    def lab_url(self) -> str:
        return self.service_prefix.rstrip("/") + "/lab"

    # --- HTTP ----------------------------------------------------------------------------------------
    def _open(self, request: urllib.request.Request) -> Any:
        if self._opener is None:
            handlers: list[Any] = [urllib.request.ProxyHandler({}), _NoRedirect()]
            if self.api_url.startswith("https://"):
                context = ssl.create_default_context(cafile=self.client_ca or None)
                if self.certfile:
                    context.load_cert_chain(self.certfile, self.keyfile or None)
                handlers.append(urllib.request.HTTPSHandler(context=context))
            self._opener = urllib.request.build_opener(*handlers)
        return self._opener.open(request, timeout=self.timeout)

    def _call(self, method: str, path: str) -> dict[str, Any]:
        if not self.api_url.startswith(("http://", "https://")):
            raise HubError(f"JUPYTERHUB_API_URL is not an http(s) URL: {self.api_url!r}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.api_url + path,
            method=method,
            headers={"Authorization": f"token {self.api_token}", "Accept": "application/json"},
        )
        if method == "POST":
            request.data = b""
        try:
            with self._open(request) as response:
                body = response.read()
                return json.loads(body) if body else {}
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read() or b"{}").get("message") or e.reason
            except ValueError:
                message = e.reason
            raise HubError(_explain(e.code, str(message)), relogin=e.code == 401) from None
        except json.JSONDecodeError:
            raise HubError(
                f"{self.api_url} answered with something that is not JSON; check JUPYTERHUB_API_URL. Your current credentials are kept."
            ) from None
        except (OSError, ValueError, ssl.SSLError) as e:
            raise HubError(
                f"JupyterHub did not answer ({getattr(e, 'reason', e)}); your current credentials are kept."
            ) from None

    def pull_blocking(self, *, force: bool = False) -> bool:
        """Fetch from the Hub and write ``~/.qcs``. Records (never raises) any failure; True on success."""
        from ..credentials import CredentialFileError, CredentialStore
        from ..credentials.tokens import rfc3339, utcnow
        from ..handoff import CREDENTIALS_ROUTE, parse_payload

        try:
            data = self._call("POST" if force else "GET", f"{CREDENTIALS_ROUTE}/{quote(self.user, safe='')}")
            handoff = parse_payload(data)
            store = CredentialStore(profile=self.profile or handoff.profile)
            result = store.install(
                handoff.tokens,
                auth_server=handoff.auth_server,
                api_url=handoff.api_url,
                grpc_api_url=handoff.grpc_api_url,
            )
        except (HubError, CredentialFileError, ValueError) as e:
            self._failures += 1
            self.state.last_sync_error = str(e)
            self.state.relogin_required = isinstance(e, HubError) and e.relogin
            self.log.warning("qcs-jupyter: could not update QCS credentials from JupyterHub: %s", e)
            return False
        self._failures = 0
        self.state.last_sync = utcnow()
        self.state.profile = result.profile
        self.state.access_token_expires_at = handoff.access_token_expires_at
        self.state.relogin_required = handoff.relogin_required
        self.state.last_sync_error = (
            f"JupyterHub could not refresh your tokens: {handoff.refresh_error}" if handoff.refresh_error else None
        )
        for note in result.notes:
            self.log.warning("qcs-jupyter: %s", note)
        self.log.info(
            "qcs-jupyter: QCS credentials for profile %r %s (access token valid until %s)",
            result.profile,
            "written"
            if result.tokens_written
            else ("kept: the file holds newer ones" if result.kept_newer else "unchanged"),
            rfc3339(handoff.access_token_expires_at) if handoff.access_token_expires_at else "unknown",
        )
        return True

    async def pull(self, *, force: bool = False) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.pull_blocking(force=force))

    def next_delay(self, now: float | None = None) -> float:
        """Seconds until the next pull: ahead of expiry when it succeeded, with backoff when it failed."""
        now = time.time() if now is None else now
        if self._failures:
            return min(self.sync_max_interval, 10.0 * 2 ** min(self._failures - 1, 5))
        expires = self.state.access_token_expires_at
        if expires is None:
            return self.sync_max_interval
        left = expires.timestamp() - now
        obtained = self.state.last_sync.timestamp() if self.state.last_sync else now
        margin = min(self.sync_margin, max(1.0, (expires.timestamp() - obtained) / 3))
        return max(self.sync_min_interval, min(self.sync_max_interval, left - margin))

    # --- lifecycle -----------------------------------------------------------------------------------
    def expect_first_pull(self) -> None:
        """From now on (the server is starting), readers of ``~/.qcs`` wait for the first pull, at most
        ``first_pull_wait`` seconds from now. Without a Hub there is nothing to wait for."""
        if self.available and self._first_deadline is None:
            self._first_deadline = time.monotonic() + self.first_pull_wait

    @property
    def first_pull_pending(self) -> bool:
        """Whether readers of ``~/.qcs`` would still wait for the first pull (it runs, and its wait has not
        run out)."""
        return (
            self._first_deadline is not None
            and not self.first_pull_done.is_set()
            and time.monotonic() < self._first_deadline
        )

    def _first_wait_over(self, what: str) -> None:
        if not self.first_pull_done.is_set() and self._first_deadline is not None and not self._first_gave_up:
            self._first_gave_up = True
            self.log.warning(
                "qcs-jupyter: JupyterHub has not sent QCS credentials within %g s of the server's start; "
                "%s goes ahead with what ~/.qcs holds now (possibly nothing or old tokens). "
                "They are written as soon as the Hub answers.",
                self.first_pull_wait,
                what,
            )

    async def wait_first_pull(self, what: str = "a request") -> None:
        """Wait (bounded) until the first pull has written ``~/.qcs``; at once when it has, or without a Hub."""
        if not self.first_pull_pending:
            return
        if self._first_future is None:
            self._first_future = asyncio.get_running_loop().create_future()
        self.log.info("qcs-jupyter: %s waits for the first QCS credentials from JupyterHub", what)
        left = (self._first_deadline or 0.0) - time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(self._first_future), max(0.0, left))
        except asyncio.TimeoutError:
            self._first_wait_over(what)

    def wait_first_pull_blocking(self, what: str = "a request") -> None:
        """The same for code that cannot wait asynchronously (it holds up the event loop meanwhile: the pull runs
        in a thread of its own, so it finishes)."""
        if not self.first_pull_pending:
            return
        self.log.info("qcs-jupyter: %s waits for the first QCS credentials from JupyterHub", what)
        if not self.first_pull_done.wait(max(0.0, (self._first_deadline or 0.0) - time.monotonic())):
            self._first_wait_over(what)

    def _first_pull_blocking(self) -> bool:
        try:
            return self.pull_blocking()
        finally:
            self.first_pull_done.set()  # in the pull's own thread: a waiter may be holding up the event loop

    def start(self) -> None:
        """Pull now, then keep ``~/.qcs`` fresh (call with the event loop running)."""
        if self._task is None:
            self.expect_first_pull()
            self._task = asyncio.get_event_loop().create_task(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._first_pull_blocking)
        except Exception:  # a bug here must not end the keep-fresh loop for the server's lifetime
            self._failures += 1
            self.state.last_sync_error = "internal error while updating credentials; see the server log"
            self.log.exception("qcs-jupyter: unexpected error while updating QCS credentials")
        finally:
            self.first_pull_done.set()
            if self._first_future is not None and not self._first_future.done():
                self._first_future.set_result(None)
        while True:
            delay = self.next_delay()
            self.state.next_sync_in = delay
            await asyncio.sleep(delay)
            try:
                await self.pull()
            except Exception:  # a bug here must not end the keep-fresh loop for the server's lifetime
                self._failures += 1
                self.state.last_sync_error = "internal error while updating credentials; see the server log"
                self.log.exception("qcs-jupyter: unexpected error while updating QCS credentials")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def stop_server(self) -> None:
        """Ask the Hub to stop this server (it cannot start itself again: the browser does that).

        The call runs in a daemon thread: the Hub answers only once this very process has exited, and a
        pool thread waiting for that answer would hold up the shutdown it asked for.
        """

        from ..handoff import STOP_ROUTE

        def call() -> None:
            try:
                self._call("POST", f"{STOP_ROUTE}/{quote(self.user, safe='')}")
            except HubError as e:
                self.log.error("qcs-jupyter: could not stop the server through JupyterHub: %s", e)

        threading.Thread(target=call, name="qcs-jupyter-stop", daemon=True).start()

    def info(self, *, owner: bool = True) -> dict[str, Any]:
        """The ``hub`` part of the status. A caller who does not own this server gets no actions."""
        if not self.available:
            return {
                "available": False,
                "last_sync": None,
                "last_sync_error": None,
                "refresh_available": False,
                "restart_available": False,
                "spawn_url": None,
                "login_url": None,
                "relogin_required": False,
                "owner": owner,
                "mode": None,
                "reason": "Not running under JupyterHub: restart and refresh happen through a Hub.",
            }
        from ..credentials.tokens import rfc3339

        error = self.state.last_sync_error
        if error is None and self._first_deadline is not None and not self.first_pull_done.is_set():
            error = "Waiting for JupyterHub to send your QCS credentials" + (
                f" (no answer within {self.first_pull_wait:g} s); ~/.qcs may be missing or old until it does."
                if not self.first_pull_pending
                else "."
            )
        return {
            "available": True,
            "last_sync": rfc3339(self.state.last_sync) if self.state.last_sync else None,
            "last_sync_error": error if owner else None,
            "refresh_available": owner,
            "restart_available": owner,
            "spawn_url": self.spawn_url if owner else None,
            "login_url": self.login_url if owner else None,
            "relogin_required": self.state.relogin_required,
            "owner": owner,
            "mode": "hub",
            "reason": None if owner else "Only the owner of this server can refresh or restart it.",
        }


def _same_origin(url: str) -> str | None:
    """Only a path on this origin: never a scheme, a host, ``//host`` or ``/\\host``."""
    if not url.startswith("/") or url.startswith(("//", "/\\")):
        return None
    return url


def _explain(code: int, message: str) -> str:
    if code == 401:
        return f"Your QCS login has ended ({message}). Log in again to JupyterHub to get new QCS credentials."
    if code == 403:
        return (
            f"JupyterHub refused this server ({message}). Is the Hub using QCSAuthenticator, and was this server "
            "started by it? Restart your server."
        )
    if code == 404:
        return f"JupyterHub has no QCS route ({message}). Is the Hub using QCSAuthenticator (qcs-jupyter)?"
    return f"JupyterHub answered HTTP {code} ({message}); your current credentials are kept."
