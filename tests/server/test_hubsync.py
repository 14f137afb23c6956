"""HubLink scheduling: ahead of expiry when healthy, bounded backoff when not."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from qcs_jupyter.server.hubsync import HubLink

ENV = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
    "JUPYTERHUB_API_TOKEN": "t",
    "JUPYTERHUB_USER": "ada",
    "JUPYTERHUB_BASE_URL": "/",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/ada/",
}


def link(**env) -> HubLink:
    return HubLink(
        {**ENV, **env}, profile=None, log=logging.getLogger("test"), margin=120, min_interval=5, max_interval=1800
    )


@pytest.mark.parametrize(
    ("lifetime", "left", "expected"),
    [
        pytest.param(1200, 1200, 1200 - 120, id="pulls-2-min-early"),
        pytest.param(20, 20, 20 - 20 / 3, id="short-token-margin-capped-at-a-third"),
        pytest.param(3600, 60, 5, id="nearly-expired-waits-min-interval"),
        pytest.param(86400, 86400, 1800, id="long-token-capped-at-max-interval"),
    ],
)
def test_next_delay_ahead_of_expiry(lifetime, left, expected):
    hub = link()
    now = datetime.now(timezone.utc)
    hub.state.last_sync = now - timedelta(seconds=lifetime - left)
    hub.state.access_token_expires_at = now + timedelta(seconds=left)
    assert hub.next_delay(now.timestamp()) == pytest.approx(expected, abs=0.01)


def test_failures_back_off_and_are_bounded():
    hub = link()
    delays = []
    for _ in range(10):
        hub.pull_blocking()  # nothing listens on port 1
        delays.append(hub.next_delay())
    assert delays[:4] == [10, 20, 40, 80] and max(delays) <= 320
    assert "JupyterHub did not answer" in hub.state.last_sync_error


@pytest.mark.parametrize(
    ("server", "url"),
    [
        pytest.param("", "/hub/spawn/ada?next=%2Fuser%2Fada%2Flab", id="default-server"),
        pytest.param("gpu", "/hub/spawn/ada/gpu?next=%2Fuser%2Fada%2Fgpu%2Flab", id="named-server"),
    ],
)
def test_spawn_url(server, url):
    prefix = f"/user/ada/{server}/" if server else "/user/ada/"
    assert link(JUPYTERHUB_SERVER_NAME=server, JUPYTERHUB_SERVICE_PREFIX=prefix).spawn_url == url


def test_without_hub_everything_is_off_with_a_reason():
    hub = HubLink({}, profile=None, log=logging.getLogger("test"))
    info = hub.info()
    assert not hub.available and info["restart_available"] is False and "JupyterHub" in info["reason"]
