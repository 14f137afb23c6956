"""Small helpers shared by tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make a directory unwritable, even for root (which ignores modes): chmod, plus the immutable flag."""
    directory.chmod(0o500)
    immutable = False
    if os.geteuid() == 0:
        immutable = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False).returncode == 0
        if not immutable:
            directory.chmod(0o700)
            pytest.skip("running as root on a filesystem without chattr +i: cannot make a directory read-only")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(0o700)
