"""The status reads the usual small ``~/.qcs`` files on the event loop's thread (a worker thread's hop costs more
than the read) and large ones in a worker thread; both give the same status, and every other line is kept."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from qcs_jupyter.credentials import CredentialStore, TokenSet
from qcs_jupyter.server.keeper import INLINE_READ_MAX_BYTES, CredentialKeeper


@pytest.fixture
def read_threads(monkeypatch) -> list[bool]:
    """Whether each ``CredentialStore.read`` ran on the main thread (the event loop's, in these tests)."""
    seen: list[bool] = []
    original = CredentialStore.read

    def read(self):
        seen.append(threading.current_thread() is threading.main_thread())
        return original(self)

    monkeypatch.setattr(CredentialStore, "read", read)
    return seen


def _status() -> dict:
    return asyncio.run(CredentialKeeper(log=logging.getLogger("test")).status())


def test_small_files_are_read_on_the_event_loop(home, make_jwt, read_threads):
    CredentialStore().install(TokenSet(access_token=make_jwt(3600), refresh_token="refresh-token-value-1"))

    status = _status()

    assert status["usable"] is True and status["state"] == "ok"
    assert read_threads == [True]


def test_large_files_are_read_in_a_worker_thread(home, qcs_dir, make_jwt, read_threads):
    CredentialStore().install(TokenSet(access_token=make_jwt(3600), refresh_token="refresh-token-value-1"))
    settings = qcs_dir / "settings.toml"
    padding = "".join(f"[other_tool_{i}]\nnote = {'x' * 60!r}\n" for i in range(INLINE_READ_MAX_BYTES // 60))
    settings.write_text(settings.read_text() + padding)
    assert settings.stat().st_size > INLINE_READ_MAX_BYTES

    status = _status()

    assert status["usable"] is True and status["state"] == "ok"
    assert read_threads == [False]
    assert settings.read_text().endswith(padding)
