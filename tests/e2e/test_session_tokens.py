"""Session refresh tokens are bounded in time, measured with both real QCS clients held in kernels.

The Hub mints a new session token every ``session_token_rotation`` seconds and each lives
``session_token_lifetime`` seconds (here 15 and 45, instead of 1 and 20 hours). A copy of ``secrets.toml`` taken
at the start stops working when its token's lifetime ends, while servers keep running; a QCS client held in a
kernel keeps working well past that lifetime, because every refresh answer at the Hub's issuer carries the
session's newest token and the clients keep it (pyQuil 4.22's core and qcs-sdk-python 0.31's alike, in memory:
with ``QCS_SECRETS_READ_ONLY`` neither writes it to the file).
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

from .conftest import spawn, stack
from .kernels import PYQUIL, QCS_SDK, Kernel
from .test_held_clients import COMMON, SETUP, accepted_tokens

TTL = 10
LIFETIME, ROTATION = 45, 15
USERS = {PYQUIL: "ada", QCS_SDK: "bob"}
EXTRA = f"""
c.QCSAuthenticator.session_token_lifetime = {LIFETIME}
c.QCSAuthenticator.session_token_rotation = {ROTATION}
"""


def refresh_with(hub, token: str) -> requests.Response:
    form = {"grant_type": "refresh_token", "client_id": "qcs-public", "refresh_token": token}
    return requests.post(f"{hub.url}/hub/api/qcs/issuer/v1/token", data=form, timeout=30, verify=str(hub.idp.ca_path))


def hold(hub, kernel: Kernel, user: str, until: float) -> list[dict]:
    """Load one client in the kernel as a notebook does and call the API every second until ``until``."""
    kernel.run(f"MARK = '@@result '\nSETUP = {SETUP[kernel.kernel_name]!r}\n" + SETUP[kernel.kernel_name])
    kernel.call(COMMON)
    probes = []
    while time.time() < until:
        probes.append(kernel.call("report(probe())"))
        time.sleep(1.0)
    return probes


@pytest.mark.timeout(420)
def test_a_copy_dies_with_its_lifetime_while_held_clients_keep_working(tmp_path):
    with stack(
        tmp_path, rotate=True, ttl=TTL, hub_https=True, qcs_api=True, client_kernels=True, extra_config=EXTRA
    ) as hub:
        with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
            sessions = dict(zip(USERS.values(), pool.map(lambda u: spawn(hub, u), USERS.values()), strict=True))
        copies = {user: hub.session_token(user) for user in USERS.values()}  # what a copy of secrets.toml holds
        copied_at = time.time()
        minted = {user: int(token.split(".")[2]) for user, token in copies.items()}
        for user, token in copies.items():
            assert refresh_with(hub, token).status_code == 200, f"{user}: the copy works at first"

        # Hold each client until every copy's lifetime has ended, and two access-token lifetimes more.
        until = max(minted.values()) + LIFETIME + 2 * TTL + 2
        with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
            kernels = {name: Kernel(hub, user, sessions[user], name, timeout=90) for name, user in USERS.items()}
            try:
                list(pool.map(lambda k: k.start(), kernels.values()))
                runs = dict(
                    zip(kernels, pool.map(lambda i: hold(hub, i[1], USERS[i[0]], until), kernels.items()), strict=True)
                )
            finally:
                for kernel in kernels.values():
                    kernel.shutdown()

        for name, probes in runs.items():
            user = USERS[name]
            dead_at = minted[user] + LIFETIME
            failed = [p for p in probes if p["error"] or not p["names"]]
            assert not failed, f"{name}: API calls failed: {failed[:3]}"
            late = [p for p in probes if p["at"] > dead_at + TTL]
            assert late, f"{name}: no call after the first session token's lifetime"
            # The client really refreshed after its first session token was dead: an access token that expired
            # after that moment was accepted by the API.
            assert any(exp > dead_at for _, exp in accepted_tokens(hub, user)), name
            # The copy, taken at the start from the same file, is refused now, though the server still runs.
            refused = refresh_with(hub, copies[user])
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
            assert hub.api("GET", f"/users/{user}")["servers"][""]["ready"]
            # The file's current token works (servers rewrite it as tokens rotate).
            assert hub.session_token(user) != copies[user]
            assert refresh_with(hub, hub.session_token(user)).status_code == 200
        assert time.time() - copied_at >= LIFETIME
