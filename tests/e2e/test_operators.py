"""Operators, end to end: the QCS metrics at /hub/metrics move as users log in, refresh, fail and log out; the
admin page (Chromium) shows every user's QCS token health and revokes a session."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import pytest
import requests
import tomlkit
from playwright.sync_api import expect, sync_playwright
from prometheus_client.parser import text_string_to_metric_families

from devstack.localhub import LocalHub, local_stack, login_with_http
from qcs_jupyter.hub.metrics import DAY, METRICS_PREFIX

from .browser import launch, new_page, sign_in

SCRAPER_TOKEN = secrets.token_hex(24)
EXTRA_CONFIG = f"""
c.Authenticator.admin_users = {{"opal"}}
c.QCSAuthenticator.refresh_backoff_initial = 1.0
c.QCSAuthenticator.refresh_backoff_max = 2.0
c.JupyterHub.services.append({{"name": "prometheus", "api_token": {SCRAPER_TOKEN!r}}})
c.JupyterHub.load_roles.append({{"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]}})
"""
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # A plain-http IdP: the test restarts it on the same port, and a restarted https IdP would bring a new CA.
    with local_stack(
        tmp_path_factory.mktemp("operators"),
        https=False,
        ttl=20,
        rotate=True,
        idp_options={"refresh_token_ttl": 3600},
        refresh_margin=8,
        auth_refresh_age=1,
        sync_margin=5,
        extra_config=EXTRA_CONFIG,
    ) as hub:
        yield hub


def scrape(hub: LocalHub, token: str = SCRAPER_TOKEN) -> dict[str, float]:
    """Our samples as {'name{label="value"}': value}, read from /hub/metrics like Prometheus does."""
    answer = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30)
    answer.raise_for_status()
    ours = f"{METRICS_PREFIX}_qcs_"
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            if s.name.startswith(ours):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                samples[s.name.removeprefix(ours) + (f"{{{labels}}}" if labels else "")] = s.value
    return samples


def wait_for(hub: LocalHub, what: str, predicate, timeout: float = 60.0, poke=None) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(hub)
        if predicate(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last scrape: {samples}")
        if poke is not None:
            poke()
        time.sleep(0.5)


def session_refresh_token(hub: LocalHub, user: str) -> str:
    doc = tomlkit.parse((hub.home(user) / ".qcs" / "secrets.toml").read_text()).unwrap()
    return doc["credentials"]["default"]["token_payload"]["refresh_token"]


def test_metrics_need_read_metrics(hub):
    assert requests.get(f"{hub.url}/hub/metrics", timeout=30).status_code == 403
    user_session = login_with_http(hub, "ray")  # a logged-in user without read:metrics
    assert user_session.get(f"{hub.url}/hub/metrics", timeout=30).status_code == 403
    samples = scrape(hub)  # the scraper's token (read:metrics only) works
    assert {"logins_total", 'idp_refreshes_total{outcome="timeout"}', "users_relogin_required"} <= set(samples)
    # As the README's prometheus.yml sends it: `authorization: credentials_file:` is an "Authorization: Bearer" header.
    bearer = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"}, timeout=30)
    assert bearer.status_code == 200 and f"{METRICS_PREFIX}_qcs_logins_total" in bearer.text


def test_counters_move_with_login_refresh_failure_and_logout(hub):
    before = scrape(hub)
    session = login_with_http(hub, "mia")
    after_login = wait_for(hub, "a login", lambda s: s["logins_total"] == before["logins_total"] + 1)
    assert after_login["users_signed_in"] >= before["users_signed_in"] + 1

    # The server starts and pulls its credentials; the Hub refreshes at the IdP ahead of each 20 s expiry.
    session.get(f"{hub.url}/hub/spawn/mia", timeout=90)
    hub.wait_for_server("mia")
    running = wait_for(
        hub,
        "handoffs and an IdP refresh",
        lambda s: (
            s['handoffs_total{outcome="ok"}'] > before['handoffs_total{outcome="ok"}']
            and s['idp_refreshes_total{outcome="ok"}'] > before['idp_refreshes_total{outcome="ok"}']
        ),
    )
    assert running['idp_refresh_duration_seconds_count{outcome="ok"}'] == running['idp_refreshes_total{outcome="ok"}']
    assert running['handoff_duration_seconds_sum{outcome="ok"}'] > 0

    # A QCS client in a kernel refreshes through the Hub's issuer: with the session token, and with a bad one.
    issuer_token = f"{hub.url}/hub/api/qcs/issuer/v1/token"
    good = requests.post(
        issuer_token,
        data={
            "grant_type": "refresh_token",
            "client_id": "qcs-public",
            "refresh_token": session_refresh_token(hub, "mia"),
        },
        timeout=30,
    )
    assert good.status_code == 200, good.text
    bad = requests.post(
        issuer_token,
        data={"grant_type": "refresh_token", "client_id": "qcs-public", "refresh_token": "nope"},
        timeout=30,
    )
    assert bad.status_code == 400
    # Anything but one of mia's running servers is refused her credentials, and counted.
    stranger = requests.get(
        f"{hub.url}/hub/api/qcs/credentials/mia", headers={"Authorization": f"token {SCRAPER_TOKEN}"}, timeout=30
    )
    assert stranger.status_code == 403
    held = scrape(hub)
    assert held['handoffs_total{outcome="refused"}'] == running['handoffs_total{outcome="refused"}'] + 1
    assert held['held_client_refreshes_total{outcome="ok"}'] == running['held_client_refreshes_total{outcome="ok"}'] + 1
    assert (
        held['held_client_refreshes_total{outcome="refused"}']
        == running['held_client_refreshes_total{outcome="refused"}'] + 1
    )

    # Another user logs in and out: logging out ends the QCS session, and is counted.
    lou = login_with_http(hub, "lou")
    signed_in = wait_for(hub, "lou's login", lambda s: s["logins_total"] == before["logins_total"] + 2)
    lou.get(f"{hub.url}/hub/logout", headers={"Sec-Fetch-Site": "same-origin"}, timeout=30)  # the logout button
    out = wait_for(hub, "a logout", lambda s: s['logouts_total{by="user"}'] == before['logouts_total{by="user"}'] + 1)
    assert out["users_signed_in"] == signed_in["users_signed_in"] - 1

    def poke():  # a request with mia's cookie makes the Hub check her tokens (auth_refresh_age = 1 s)
        session.get(f"{hub.url}/hub/home", timeout=30, allow_redirects=False)

    # The IdP goes away: refreshes fail as "unreachable"; it comes back with no memory of the grant: "rejected".
    hub.idp.stop()
    try:
        wait_for(
            hub,
            "an unreachable IdP",
            lambda s: (
                s['idp_refreshes_total{outcome="unreachable"}'] > before['idp_refreshes_total{outcome="unreachable"}']
            ),
            poke=poke,
        )
    finally:
        hub.idp.start()
    rejected = wait_for(
        hub,
        "a rejected refresh",
        lambda s: s['idp_refreshes_total{outcome="rejected"}'] > before['idp_refreshes_total{outcome="rejected"}'],
        poke=poke,
    )
    assert rejected["users_relogin_required"] == before["users_relogin_required"] + 1
    # Once the access token has expired, mia's server is told to have her log in again.
    wait_for(
        hub,
        "a handoff answered 'log in again'",
        lambda s: s['handoffs_total{outcome="relogin"}'] > before['handoffs_total{outcome="relogin"}'],
    )
    # She does: counted as a login, and she no longer counts as "must log in again".
    login_with_http(hub, "mia")
    back = wait_for(hub, "mia's new login", lambda s: s["logins_total"] == before["logins_total"] + 3)
    assert back["users_relogin_required"] == before["users_relogin_required"]
    text = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {SCRAPER_TOKEN}"}, timeout=30).text
    assert not re.search(r"\b(mia|lou|ray)\b", text)  # never a user name
    hub.api("DELETE", "/users/mia/server")


def age_refresh_token(hub: LocalHub, user: str, days: float) -> None:
    """Make ``user``'s login ``days`` old, as if they had logged in back then (through the Hub's admin API)."""
    state = hub.auth_state(user)
    state["qcs"]["refresh_token_obtained_at"] = time.time() - days * DAY
    hub.api("PATCH", f"/users/{user}", {"auth_state": state})


def test_admin_page_in_chromium_and_revoke(hub):
    # Users in every state, made here (other tests on this Hub add users of their own, in any order): fresh with
    # a running server (noel), close to 90 days (ines), past them (ugo), logged out (liv).
    noel = login_with_http(hub, "noel")
    noel.get(f"{hub.url}/hub/spawn/noel", timeout=90)
    hub.wait_for_server("noel")
    for user, days in (("ines", 86), ("ugo", 93)):
        login_with_http(hub, user)
        age_refresh_token(hub, user, days)
    login_with_http(hub, "liv").get(f"{hub.url}/hub/logout", headers={"Sec-Fetch-Site": "same-origin"}, timeout=30)
    # Only admins (admin-ui) see the page.
    assert noel.get(f"{hub.url}/hub/qcs/admin", timeout=30).status_code == 403
    logouts = scrape(hub)['logouts_total{by="admin"}']

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser)
        sign_in(page, hub.url, "opal", next_path="/hub/qcs/admin", wait_for="**/hub/qcs/admin**")
        expect(page.locator("h1")).to_have_text("QCS token health")
        expect(page.locator("#jupyterhub-logo")).to_be_visible()  # the Hub's own page.html around it
        rows = page.locator("#qcs-users tbody tr")
        expect(page.locator('tr[data-qcs-user="ugo"]')).to_have_attribute("data-qcs-status", "relogin")
        expect(page.locator('tr[data-qcs-user="ines"]')).to_have_attribute("data-qcs-status", "warning")
        # Problems first: everyone who must log in again (ugo among them), then those inside the warning window
        # (ines), then the rest.
        order = rows.evaluate_all("rows => rows.map(r => [r.dataset.qcsUser, r.dataset.qcsStatus])")
        rank = {"relogin": 0, "warning": 1}
        assert [rank.get(status, 2) for _, status in order] == sorted(rank.get(status, 2) for _, status in order)
        assert order[0][1] == "relogin" and ["ugo", "relogin"] in order and ["ines", "warning"] in order
        noel_row = page.locator('tr[data-qcs-user="noel"]')
        expect(noel_row).to_have_attribute("data-qcs-status", "ok")
        expect(noel_row.locator('[data-qcs-field="servers"]')).to_contain_text("default: pulled")
        expect(noel_row.locator('[data-qcs-field="refresh-age"]')).to_contain_text("0 of 90 days")
        expect(page.locator('tr[data-qcs-user="liv"]')).to_have_attribute("data-qcs-status", "signed_out")
        html = page.content()
        for user in ("noel", "ines", "ugo"):
            state = hub.auth_state(user)
            for key in ("access_token", "refresh_token", "id_token"):
                assert state[key] not in html
            assert "qcsj2." not in html  # no session refresh token either
        # Sorting by a column: a click on "User" orders by name, a second click reverses it.
        page.locator('[data-qcs-sort="name"]').click()
        page.wait_for_url("**sort=name**")
        names = rows.evaluate_all("rows => rows.map(r => r.dataset.qcsUser)")
        assert names == sorted(names)
        page.locator('[data-qcs-sort="name"]').click()
        page.wait_for_url("**sort=-name**")
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.qcsUser)") == sorted(names, reverse=True)
        page.goto(f"{hub.url}/hub/qcs/admin")
        expect(page.locator('[data-qcs-count="relogin"]')).to_have_text(re.compile(r"[1-9]"))
        if os.environ.get("QCS_JUPYTER_SCREENSHOTS"):  # re-take the docs' picture only when asked to
            page.screenshot(path=str(DOCS / "admin-page.png"), full_page=True)

        # Revoke noel's QCS session: a two-step action with a reason.
        noel_row = page.locator('tr[data-qcs-user="noel"]')
        noel_row.get_by_text("Revoke QCS session").click()
        noel_row.locator("input[name=reason]").fill("laptop lost")
        noel_row.get_by_role("button", name="Revoke").click()
        expect(page.locator("[data-qcs-revoked]")).to_contain_text("noel")
        expect(page.locator('tr[data-qcs-user="noel"]')).to_have_attribute("data-qcs-status", "signed_out")
        browser.close()

    state = hub.auth_state("noel")
    assert "refresh_token" not in state and "access_token" not in state and state["qcs"]["logged_out_at"]
    assert "laptop lost" in state["qcs"]["relogin_reason"]
    assert scrape(hub)['logouts_total{by="admin"}'] == logouts + 1
    assert "opal revokes the QCS session of noel (laptop lost)" in hub.log_text()
    # noel's running server is told to have noel log in again; the Hub keeps no QCS token for them.
    token = hub.api("POST", "/users/noel/tokens", {"scopes": ["read:users!user=noel"]})["token"]
    own = requests.get(f"{hub.url}/hub/api/qcs/users", headers={"Authorization": f"token {token}"}, timeout=30).json()
    assert [(row["name"], row["status"], row["signed_in"]) for row in own["users"]] == [("noel", "signed_out", False)]
    hub.api("DELETE", "/users/noel/server")


def test_json_twin_for_scripts(hub):
    login_with_http(hub, "vic")
    age_refresh_token(hub, "vic", 120)  # older than anyone else's on this Hub: first when sorted by age
    rows = hub.api("GET", "/qcs/users?sort=-refresh_age")
    assert rows["sort"] == "-refresh_age" and rows["summary"]["users"] == len(rows["users"])
    ages = [row["refresh_token_age_days"] for row in rows["users"] if row["refresh_token_age_days"] is not None]
    assert ages == sorted(ages, reverse=True) and len(ages) >= 1
    assert rows["users"][0]["name"] == "vic" and rows["users"][0]["refresh_token_age_days"] == pytest.approx(
        120, abs=0.1
    )
    with pytest.raises(Exception, match="400"):
        hub.api("GET", "/qcs/users?sort=token")
