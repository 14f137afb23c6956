"""The server's view of the user's credentials: status of ``~/.qcs`` plus the state of the Hub link."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..credentials import CredentialStore, read_status


class ServerCredentials:
    """Reads the status off the event loop; knows whether a Hub is there to refresh or restart through."""

    def __init__(
        self, *, profile: str | None = None, warning_days: float = 7.0, env: dict[str, str] | None = None
    ) -> None:
        env = dict(os.environ if env is None else env)
        self.store = CredentialStore(profile=profile)
        self.warning_days = warning_days
        self.hub_api_url = env.get("JUPYTERHUB_API_URL")

    def hub_info(self) -> dict[str, Any]:
        available = bool(self.hub_api_url)
        return {
            "available": available,
            "last_sync": None,
            "last_sync_error": None,
            "refresh_available": False,
            "restart_available": False,
            "spawn_url": None,
            "reason": None if available else "Not running under JupyterHub: restart and refresh happen through a Hub.",
        }

    async def status(self) -> dict[str, Any]:
        status = await asyncio.get_running_loop().run_in_executor(
            None, lambda: read_status(self.store, warning_days=self.warning_days)
        )
        status["hub"] = self.hub_info()
        return status
