"""End-to-end stacks: a real OpenID Connect provider (Okta-shaped, https), JupyterHub with QCSAuthenticator,
configurable-http-proxy and local user servers, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.localhub import LocalHub, local_stack, login_with_http

ACCESS_TOKEN_TTL = 20


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@contextlib.contextmanager
def stack(workdir: Path, *, rotate: bool, ttl: int = ACCESS_TOKEN_TTL, **hub_options) -> Iterator[LocalHub]:
    """Short-lived tokens and tight margins, so expiry and refresh happen within a test."""
    options = {"refresh_margin": 8, "auth_refresh_age": 1, "sync_margin": 5, **hub_options}
    with local_stack(workdir, ttl=ttl, rotate=rotate, idp_options={"refresh_token_ttl": 3600}, **options) as hub:
        yield hub


@pytest.fixture(scope="module")
def rotating_hub(tmp_path_factory) -> Iterator[LocalHub]:
    """Refresh-token rotation on (as oidc-provider does for public clients), Hub-managed refresh."""
    with stack(tmp_path_factory.mktemp("rotating"), rotate=True) as hub:
        yield hub


def spawn(hub: LocalHub, user: str):
    """Log in as ``user`` through the IdP form and start their server; returns the logged-in session."""
    session = login_with_http(hub, user)
    session.get(f"{hub.url}/hub/spawn/{user}", timeout=90)
    hub.wait_for_server(user)
    return session


# These tests run real servers in other processes; pytest-jupyter's in-process server cleanup and its
# per-test event loop would fight Playwright's own loop, so they are switched off here.
@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    return None
