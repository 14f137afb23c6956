"""The loopback guard (tests/netguard.py) every test runs under: loopback passes, anything else is refused and
recorded, in this process and in the Python processes the tests start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests import netguard


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", True),  # noqa: S104 - an address to judge, not one to bind
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("auth.qcs.rigetti.com", False),
        ("idp.example", False),
    ],
)
def test_what_counts_as_loopback(host, loopback):
    assert netguard.is_loopback(host) is loopback


def test_this_machines_own_name_may_be_looked_up_not_connected_to():
    name = socket.gethostname()
    assert netguard.is_loopback(name, lookup=True)
    assert not netguard.is_loopback("auth.qcs.rigetti.com", lookup=True)


def test_a_connect_beyond_loopback_is_refused_and_recorded():
    before = len(netguard.VIOLATIONS)
    with socket.socket() as s, pytest.raises(netguard.NetworkGuardError, match=r"192\.0\.2\.1:443"):
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed
    assert "connect 192.0.2.1:443" in netguard.VIOLATIONS[-1]
    del netguard.VIOLATIONS[before:]  # expected here: not a refusal for the fixture to fail this test on


def test_child_pythons_are_guarded_too():
    code = "import socket\ntry:\n    socket.getaddrinfo('auth.qcs.rigetti.com', 443)\nexcept OSError as e:\n    print(type(e).__name__)"
    log = netguard_log()
    size = log.stat().st_size
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.stdout.strip() == "NetworkGuardError", done.stdout + done.stderr
    logged = log.read_text()[size:]
    assert "getaddrinfo 'auth.qcs.rigetti.com'" in logged
    with log.open("r+") as f:  # expected here: take it back out of the log the session checks
        f.truncate(size)


def netguard_log():
    from pathlib import Path

    (entry,) = [p for p in os.environ["PYTHONPATH"].split(os.pathsep) if "netguard" in p]
    return Path(entry) / "refused.log"
