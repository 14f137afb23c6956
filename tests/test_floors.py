"""The dependency floors: no version the package allows has a known hole it is exposed to, or lacks an API it calls.

Each floor is stated here with its reason, checked against pyproject.toml; ``scripts/test-lowest.sh`` (run by
``scripts/test.sh``, so by CI) runs the Hub, server and credentials tests with every floor pinned.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

#: name -> (where, floor, why)
FLOORS = {
    "jupyter-server": ("dependencies", "2.14.1", "CVE-2023-39968, CVE-2023-40170, CVE-2023-49080, CVE-2024-35178"),
    "tornado": ("dependencies", "6.5", "CVE-2025-47287; the Hub and the server extension both run on it"),
    "filelock": ("dependencies", "3.20.3", "earlier versions follow a symlinked lock file"),
    "tomli": ("dependencies", "2.3.1", "compiled wheels (2.2); a bound on key parts against quadratic time (2.3.1)"),
    "jupyterhub": ("hub", "6.1", "Authenticator.reconcile_auth_state_hook (6.1); CVE-2024-41942 (5.1)"),
    "oauthenticator": ("hub", "17.3", "refresh_user_hook (17.3), build_refresh_token_request_params (17.2)"),
    "cryptography": ("hub", "42.0.4", "JupyterHub encrypts auth_state with it; CVE-2023-50782, CVE-2024-26130"),
}


def _requirements(where: str) -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] if where == "dependencies" else project["optional-dependencies"][where]
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def test_the_floors_are_the_stated_ones():
    found = {}
    for name, (where, _floor, _why) in FLOORS.items():
        req = _requirements(where).get(name)
        assert req is not None, f"{name} is missing from [{where}]"
        found[name] = sorted(s.version for s in req.specifier if s.operator == ">=")
    assert found == {name: [floor] for name, (_, floor, _) in FLOORS.items()}


def test_the_test_extra_allows_nothing_below_the_hub_floors():
    test, hub = _requirements("test"), _requirements("hub")
    for name in ("jupyterhub", "oauthenticator"):
        assert str(test[name].specifier) == str(hub[name].specifier), name


def test_ci_runs_the_lowest_versions():
    script = (ROOT / "scripts" / "test-lowest.sh").read_text()
    assert "constraints" in script and "tests/hub" in script and "tests/server" in script
    assert "scripts/test-lowest.sh" in (ROOT / "scripts" / "test.sh").read_text()
