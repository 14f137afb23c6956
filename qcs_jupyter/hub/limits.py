"""A bound on failed attempts per client at the Hub's open endpoints (the issuer's token endpoint)."""

from __future__ import annotations

import time
from collections import OrderedDict


class FailureLimiter:
    """Counts failures per client in fixed windows; a client over the limit waits until its window ends.

    Memory is bounded: at most ``max_clients`` clients are remembered, the least recently seen forgotten first.
    """

    def __init__(self, limit: int, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()  # client -> (window start, failures)

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds the client must wait before its next failure is answered, 0 when it is not limited."""
        now = time.monotonic() if now is None else now
        start, failures = self._clients.get(client, (now, 0))
        if failures < self.limit or now >= start + self.window:
            return 0.0
        return start + self.window - now

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        start, failures = self._clients.pop(client, (now, 0))
        if now >= start + self.window:
            start, failures = now, 0
        self._clients[client] = (start, failures + 1)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
