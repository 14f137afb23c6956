"""Kernels and terminals started before the server's first pull from the Hub wait for it (bounded).

The server listens before its first pull of credentials has finished (the pull starts when it listens, so a server
starts as fast as one without this extension). A kernel or a terminal is the first thing that could read
``~/.qcs``: pyQuil and the QCS SDK read the files when a notebook first asks for a client, which can be the
kernel's first line. So the server's own kernel and terminal managers wait for the first pull before they start
one: at most ``QCSHubClient.first_pull_wait`` seconds after the server's start, and not at all once it is over.

Only this server's manager objects are wrapped (never their classes), and only while they exist: a kernel manager
from another extension or a gateway is wrapped the same way, as the server's ``kernel_manager``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .hub_client import QCSHubClient

_MARK = "_qcs_jupyter_waits_for_first_pull"


def hold_kernel_starts(kernel_manager: Any, hub: QCSHubClient) -> bool:
    """``kernel_manager.start_kernel`` waits for the first pull first. False if there is none (or already held)."""
    original = getattr(kernel_manager, "start_kernel", None)
    if original is None or getattr(original, _MARK, False):
        return False

    @functools.wraps(original)
    async def start_kernel(*args: Any, **kwargs: Any) -> Any:
        await hub.wait_first_pull("a kernel start")
        result = original(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    setattr(start_kernel, _MARK, True)
    kernel_manager.start_kernel = start_kernel
    return True


def hold_terminal_starts(terminal_manager: Any, hub: QCSHubClient) -> bool:
    """``terminal_manager.new_terminal`` waits for the first pull first. Terminals are made synchronously, so
    this wait holds up the event loop: only while the first pull runs, at most ``first_pull_wait`` after the
    start (the pull runs in a thread of its own and finishes meanwhile)."""
    original = getattr(terminal_manager, "new_terminal", None)
    if original is None or getattr(original, _MARK, False):
        return False

    @functools.wraps(original)
    def new_terminal(*args: Any, **kwargs: Any) -> Any:
        hub.wait_first_pull_blocking("a terminal start")
        return original(*args, **kwargs)

    setattr(new_terminal, _MARK, True)
    terminal_manager.new_terminal = new_terminal
    return True


def hold_starts(serverapp: Any, hub: QCSHubClient) -> None:
    """Hold this server's kernel and terminal starts until the first pull (when there is a Hub to pull from)."""
    if not hub.available:
        return
    hold_kernel_starts(getattr(serverapp, "kernel_manager", None), hub)
    web_app = getattr(serverapp, "web_app", None)
    settings = getattr(web_app, "settings", None) or {}
    hold_terminal_starts(settings.get("terminal_manager"), hub)
