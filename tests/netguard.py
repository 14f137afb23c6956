"""No test reaches beyond loopback: an audit hook refuses every connection, datagram and name lookup for an
address outside 127.0.0.0/8 and ::1, and records it, so a test that would call QCS's real issuer (or any other
host) fails loudly instead of passing on a swallowed connection error.

The test process installs it from ``tests/conftest.py``; the Python processes the tests start (the Hub, user
servers, kernels, the QCS clients' venvs) get it through a generated ``sitecustomize`` on ``PYTHONPATH``, and write
what they were refused to a shared log the test process reads. Standard library only: this file is also the body
of that ``sitecustomize``, run by other interpreters.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

#: Where the address was refused, e.g. "pid 123 (python -m jupyterhub): connect 203.0.113.5:443".
VIOLATIONS: list[str] = []
_LOG: str | None = None
#: This machine's own name: looking it up (JupyterHub's internal TLS asks getfqdn) stays on the machine.
_OWN_NAMES = {socket.gethostname().lower(), "localhost"}


class NetworkGuardError(ConnectionRefusedError):
    """A test tried to reach an address beyond loopback."""


def is_loopback(host: object, *, lookup: bool = False) -> bool:
    """An address on loopback (or, for a name ``lookup``, this machine's own name)."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return True  # not an address we can judge (the call fails on its own)
    name = host.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name in ("", "localhost") or name.endswith(".localhost") or (lookup and name in _OWN_NAMES):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # a name to look up: the lookup itself leaves the machine
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> None:
    argv = " ".join(sys.argv[:3])[:120]
    entry = f"pid {os.getpid()} ({argv}): {what}"
    VIOLATIONS.append(entry)
    if _LOG:
        try:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(entry.replace("\n", " ") + "\n")
        except OSError:
            pass
    raise NetworkGuardError(f"the tests reach only loopback addresses; refused: {what}")


def _hook(event: str, args: tuple) -> None:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        if event == "socket.sendmsg":
            sock, address = args[0], args[-1]
        else:
            sock, address = args[0], args[1]
        inet = getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
        if inet and not is_loopback(address[0]):
            _refuse(f"{event.split('.')[1]} {address[0]}:{address[1]}")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        if not is_loopback(args[0], lookup=True):
            _refuse(f"{event.split('.')[1]} {args[0]!r}")
    elif event == "socket.gethostbyaddr" and not is_loopback(args[0], lookup=True):
        _refuse(f"gethostbyaddr {args[0]!r}")


def install(log: str | None = None) -> None:
    """Install the hook in this process (once; audit hooks cannot be removed). ``log``: a file to append
    refusals to, for processes whose refusals another process checks."""
    global _LOG
    _LOG = log
    if not getattr(sys, "_qcs_jupyter_netguard", False):
        sys.addaudithook(_hook)
        sys._qcs_jupyter_netguard = True


def sitecustomize_source(log: str) -> str:
    """The text of a ``sitecustomize.py`` that installs this guard in every Python started with its directory on
    ``PYTHONPATH``, logging to ``log``, then runs the interpreter's own ``sitecustomize`` if it has one."""
    with open(__file__, encoding="utf-8") as f:
        source = f.read()
    return f"""{source}

install({log!r})


def _chain() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", [entry or "."])
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return


_chain()
"""
