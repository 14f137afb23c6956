"""The server's view of the user's credentials: status of ``~/.qcs`` plus the state of the Hub link."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

from ..credentials import CredentialStore, StoreSnapshot, compute_status
from .hubsync import HubLink


class ServerCredentials:
    """Reads the status off the event loop, and owns the link to the Hub (when there is one)."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        warning_days: float = 7.0,
        env: Mapping[str, str] | None = None,
        log: logging.Logger | None = None,
        hub_options: dict[str, float] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.profile = profile
        self.warning_days = warning_days
        self.hub = HubLink(env, profile=profile, log=log or logging.getLogger(__name__), **(hub_options or {}))
        self._cache: tuple[Any, StoreSnapshot] | None = None

    def start(self) -> None:
        """Pull once before the server listens, so ~/.qcs is there before the first notebook; then keep it fresh."""
        if self.hub.available:
            self.hub.pull_blocking()

    def start_background(self) -> None:
        if self.hub.available:
            self.hub.start()

    async def status(self) -> dict[str, Any]:
        # Show the profile the Hub wrote, unless the admin's setting or QCS_PROFILE_NAME says otherwise.
        store = CredentialStore(profile=self.profile or self.hub.profile or self.hub.state.profile)
        status = compute_status(await self._snapshot(store), warning_days=self.warning_days)
        status["hub"] = self.hub.info()
        return status

    async def _snapshot(self, store: CredentialStore) -> StoreSnapshot:
        """Re-read and re-parse the files only when they changed (the panel polls; parsing TOML is the cost)."""
        key = (store.explicit_profile, store.paths, store.files_identity())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        snap = await asyncio.get_running_loop().run_in_executor(None, store.read)
        self._cache = (key, snap)
        return snap
