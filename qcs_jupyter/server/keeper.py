"""The server's keeper of the user's credentials: pulls them from the Hub and reports the status of ``~/.qcs``.

Loaded with the server extension, before the server listens: the credential code it uses is imported on first use.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import TYPE_CHECKING, Any

from traitlets import Instance
from traitlets.config import LoggingConfigurable

from ..qcs import REFRESH_TOKEN_WARNING_DAYS
from .hub_client import QCSHubClient

if TYPE_CHECKING:
    from ..credentials import CredentialStore, StoreSnapshot

#: The same files and Hub link give the same status for this long: many open tabs poll it at once.
STATUS_REUSE_SECONDS = 1.0
#: Files up to this size (both files and our metadata together) are read and parsed on the event loop.
INLINE_READ_MAX_BYTES = 64 * 1024
#: "Check with QCS" asks QCS at most once in this many seconds, however many tabs or clicks ask.
CHECK_MIN_INTERVAL_SECONDS = 5.0


class CheckTooSoon(Exception):
    """QCS was asked less than ``CHECK_MIN_INTERVAL_SECONDS`` ago; ``retry_after``: seconds to wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Checked with QCS a moment ago; try again in {max(1, round(retry_after))} s.")
        self.retry_after = retry_after


class CredentialKeeper(LoggingConfigurable):
    """Reads the status of ``~/.qcs`` (large files in a worker thread), and owns the client of the Hub (when there
    is one)."""

    hub = Instance(QCSHubClient)

    def __init__(
        self, *, profile: str | None = None, warning_days: float = REFRESH_TOKEN_WARNING_DAYS, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.profile = profile
        self.warning_days = warning_days
        self.hub = QCSHubClient(parent=self, **({"profile": profile} if profile else {}))
        self._cache: tuple[Any, StoreSnapshot] | None = None
        self._status: tuple[Any, float, dict[str, Any]] | None = None
        self._last_check: float | None = None
        self._checking = False

    def start(self) -> None:
        """While the server starts: from now on whatever reads ~/.qcs first waits for the first pull."""
        if self.hub.available:
            # The Hub keeps the files fresh; QCS clients in kernels (which inherit this) must not write them back:
            # pyQuil's write-back goes through $TMPDIR and fails when the home is on another filesystem.
            os.environ.setdefault("QCS_SECRETS_READ_ONLY", "true")
            self.hub.expect_first_pull()

    def start_background(self) -> None:
        """With the event loop running (the server listens): the first pull, then keep ~/.qcs fresh."""
        if self.hub.available:
            self.hub.start()

    async def ready(self, what: str = "a request") -> None:
        """Wait (bounded) for the first pull from the Hub, so that ``~/.qcs`` is read after it was written."""
        await self.hub.wait_first_pull(what)

    async def status(self, *, owner: bool = True) -> dict[str, Any]:
        from ..credentials import compute_status

        await self.ready("a status request")
        # Show the profile the Hub wrote, unless the admin's setting or QCS_PROFILE_NAME says otherwise.
        store = self._store()
        # The Hub link's state (renewal failing, login ended, caller not the owner) is part of the one state machine.
        hub = self.hub.info(owner=owner)
        snap = await self._snapshot(store)
        key = (self._cache[0] if self._cache else None, json.dumps(hub, sort_keys=True))
        now = time.monotonic()
        if self._status is not None and self._status[0] == key and now - self._status[1] < STATUS_REUSE_SECONDS:
            return self._status[2]
        # A caller this server is shared with gets the state only: compute_status blanks the owner's identity.
        status = compute_status(snap, warning_days=self.warning_days, hub=hub)
        self._status = (key, now, status)
        return status

    def _store(self) -> CredentialStore:
        from ..credentials import CredentialStore

        return CredentialStore(profile=self.profile or self.hub.profile or self.hub.state.profile)

    async def check_with_qcs(self) -> dict[str, Any]:
        """Ask QCS with the current access token, at most once per ``CHECK_MIN_INTERVAL_SECONDS`` (else
        ``CheckTooSoon``). Only ever on request: nothing here runs on its own."""
        from ..credentials.apicheck import check_with_qcs

        await self.ready("a check with QCS")
        now = time.monotonic()
        if self._checking:
            raise CheckTooSoon(1.0)
        if self._last_check is not None and now - self._last_check < CHECK_MIN_INTERVAL_SECONDS:
            raise CheckTooSoon(CHECK_MIN_INTERVAL_SECONDS - (now - self._last_check))
        self._last_check, self._checking = now, True
        store, hub = self._store(), self.hub.available
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, lambda: check_with_qcs(store, hub=hub))
        finally:
            self._checking = False
        self.log.info("qcs-jupyter: checked with QCS: %s (%s)", result.outcome.value, result.http_status or "-")
        return result.to_json()

    async def _snapshot(self, store: CredentialStore) -> StoreSnapshot:
        """Re-read and re-parse the files only when they changed (the panel polls; parsing TOML is the cost)."""
        identity = store.files_identity()
        key = (store.explicit_profile, store.paths, identity)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        # identity[2:]: (inode, mtime, size, mode) of settings.toml, secrets.toml and our metadata, or None.
        if sum(entry[2] for entry in identity[2:] if entry) <= INLINE_READ_MAX_BYTES:
            # The usual ~1 KB: handing it to a worker thread costs more CPU than reading and parsing it here
            # (the stat calls just made block no less than these reads would).
            snap = store.read()
        else:
            snap = await asyncio.get_running_loop().run_in_executor(None, store.read)
        self._cache = (key, snap)
        return snap
