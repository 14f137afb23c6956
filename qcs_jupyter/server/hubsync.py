"""The server's link to JupyterHub: pull fresh QCS credentials into ``~/.qcs``, and stop for a restart.

All Hub calls use the server's own token (``JUPYTERHUB_API_TOKEN``) over the Hub API; no QCS secret ever
passes through the environment. Calls are plain blocking HTTP run off the event loop, so the same code
serves the pull at startup (before the server listens) and the ones while it runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..credentials import CredentialFileError, CredentialStore
from ..credentials.paths import profile_from_env
from ..credentials.tokens import rfc3339, utcnow
from ..handoff import CREDENTIALS_ROUTE, CREDENTIALS_SCOPE, parse_payload

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HubError(Exception):
    """A Hub call failed; the message says what happened and what to do."""


@dataclass
class SyncState:
    last_sync: datetime | None = None
    last_sync_error: str | None = None
    next_sync_in: float | None = None
    access_token_expires_at: datetime | None = None
    mode: str | None = None
    profile: str | None = None
    scopes: list[str] = field(default_factory=list)


class HubLink:
    """Pulls the user's credentials from the Hub and writes them; schedules the next pull before expiry."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        profile: str | None,
        log: logging.Logger,
        margin: float = 120.0,
        min_interval: float = 5.0,
        max_interval: float = 1800.0,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = (env.get("JUPYTERHUB_API_URL") or "").rstrip("/")
        self._token = env.get("JUPYTERHUB_API_TOKEN") or ""
        self.user = env.get("JUPYTERHUB_USER") or ""
        self.server_name = env.get("JUPYTERHUB_SERVER_NAME") or ""
        self.base_url = env.get("JUPYTERHUB_BASE_URL") or "/"
        self.service_prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
        self.profile = profile or profile_from_env()
        self.log = log
        self.margin, self.min_interval, self.max_interval, self.timeout = margin, min_interval, max_interval, timeout
        self.state = SyncState()
        self._failures = 0
        self._task: asyncio.Task | None = None

    @property
    def available(self) -> bool:
        return bool(self.api_url and self._token and self.user)

    @property
    def can_pull(self) -> bool:
        return self.available and (
            not self.state.scopes or any(s.startswith(CREDENTIALS_SCOPE) for s in self.state.scopes)
        )

    @property
    def can_stop(self) -> bool:
        wanted = {
            "delete:servers",
            f"delete:servers!user={self.user}",
            f"delete:servers!server={self.user}/{self.server_name}",
        }
        return self.available and bool(wanted & set(self.state.scopes))

    @property
    def spawn_url(self) -> str:
        server = f"/{quote(self.server_name)}" if self.server_name else ""
        return f"{self.base_url.rstrip('/')}/hub/spawn/{quote(self.user)}{server}?next={quote(self.service_prefix.rstrip('/') + '/lab', safe='')}"

    # --- HTTP ----------------------------------------------------------------------------------------
    def _call(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        if not self.api_url.startswith(("http://", "https://")):
            raise HubError(f"JUPYTERHUB_API_URL is not an http(s) URL: {self.api_url!r}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.api_url + path,
            method=method,
            headers={"Authorization": f"token {self._token}", "Accept": "application/json"},
        )
        if method in ("POST", "DELETE"):
            request.data = b""
        try:
            with _NO_PROXY.open(request, timeout=self.timeout) as response:
                body = response.read()
                return response.status, (json.loads(body) if body else {})
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read() or b"{}").get("message") or e.reason
            except ValueError:
                message = e.reason
            raise HubError(_explain(e.code, str(message))) from None
        except json.JSONDecodeError:
            raise HubError(
                f"{self.api_url} answered with something that is not JSON; check JUPYTERHUB_API_URL. Your current credentials are kept."
            ) from None
        except (OSError, ValueError) as e:
            raise HubError(
                f"JupyterHub did not answer ({getattr(e, 'reason', e)}); your current credentials are kept."
            ) from None

    def _sync_scopes(self) -> None:
        if not self.state.scopes:
            _, model = self._call("GET", "/user")
            self.state.scopes = [s for s in model.get("scopes", []) if isinstance(s, str)]

    def pull_blocking(self, *, force: bool = False) -> bool:
        """Fetch from the Hub and write ``~/.qcs``. Records (never raises) any failure; True on success."""
        try:
            self._sync_scopes()
            _, data = self._call("POST" if force else "GET", f"{CREDENTIALS_ROUTE}/{quote(self.user)}")
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
            self.log.warning("qcs-jupyter: could not update QCS credentials from JupyterHub: %s", e)
            return False
        self._failures = 0
        self.state.last_sync = utcnow()
        self.state.mode = handoff.mode
        self.state.profile = result.profile
        self.state.access_token_expires_at = handoff.access_token_expires_at
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
            return min(self.max_interval, 10.0 * 2 ** min(self._failures - 1, 5))
        expires = self.state.access_token_expires_at
        if expires is None:
            return self.max_interval
        left = expires.timestamp() - now
        obtained = self.state.last_sync.timestamp() if self.state.last_sync else now
        margin = min(self.margin, max(1.0, (expires.timestamp() - obtained) / 3))
        return max(self.min_interval, min(self.max_interval, left - margin))

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._loop())

    async def _loop(self) -> None:
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
        path = f"/users/{quote(self.user)}/server"
        if self.server_name:
            path = f"/users/{quote(self.user)}/servers/{quote(self.server_name)}"

        def call() -> None:
            try:
                self._call("DELETE", path)
            except HubError as e:
                self.log.error("qcs-jupyter: could not stop the server through JupyterHub: %s", e)

        threading.Thread(target=call, name="qcs-jupyter-stop", daemon=True).start()

    def info(self) -> dict[str, Any]:
        if not self.available:
            return {
                "available": False,
                "last_sync": None,
                "last_sync_error": None,
                "refresh_available": False,
                "restart_available": False,
                "spawn_url": None,
                "mode": None,
                "reason": "Not running under JupyterHub: restart and refresh happen through a Hub.",
            }
        return {
            "available": True,
            "last_sync": rfc3339(self.state.last_sync) if self.state.last_sync else None,
            "last_sync_error": self.state.last_sync_error,
            "refresh_available": self.can_pull,
            "restart_available": self.can_stop,
            "spawn_url": self.spawn_url,
            "mode": self.state.mode,
            "reason": None
            if self.can_stop
            else "This Hub does not let servers stop themselves; use File > Hub Control Panel to restart.",
        }


def _explain(code: int, message: str) -> str:
    if code == 401:
        return f"JupyterHub says the QCS login has expired ({message}). Log out of JupyterHub and log in again."
    if code == 403:
        return f"JupyterHub refused ({message}). The Hub's admin must enable qcs-jupyter's scopes (configure_hub(c))."
    if code == 404:
        return (
            f"JupyterHub has no QCS credentials for you ({message}). Is the Hub using QCSAuthenticator? Log in again."
        )
    return f"JupyterHub answered HTTP {code} ({message}); your current credentials are kept."
