"""The admin page with Hubs of their own: the gauges rebuilt after a Hub restart (from the database alone, before any
page is read), and a Hub of two hundred users. Each test starts and stops its own ``MockHub`` (see
``tests/hub/mockhub.py``), so no other test sees these users."""

from __future__ import annotations

import os
import re
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from qcs_jupyter.hub import metrics

from .mockhub import running_hub
from .test_admin import auth_state, users


def gauge_values(hub) -> dict[str, float]:
    token = hub.token("admin", ["read:metrics"])
    text = requests.get(f"{hub.url}hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30).text
    prefix = f"{metrics.METRICS_PREFIX}_qcs_users_"
    return {
        s.name.removeprefix(prefix): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefix)
    }


def test_gauges_are_rebuilt_from_the_database_after_a_restart(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    key = os.urandom(32)
    try:
        with running_hub(crypt_key=key, db_url=db_url) as first:
            first.add_users(users())
        # The gauges live in memory: a restarted Hub process starts with none (HubInThread resets them) and
        # rebuilds them from the database once it serves.
        with running_hub(crypt_key=key, db_url=db_url) as second:
            expected = {"relogin_required": 2, "refresh_expiring": 1, "signed_in": 5}  # ed's timeout: page-only
            deadline = time.monotonic() + 30
            # Only /hub/metrics is read: no admin page, no login, nothing else that would observe a user.
            while (values := gauge_values(second)) != expected and time.monotonic() < deadline:
                time.sleep(0.2)
            assert values == expected
            assert metrics.METRICS.rebuilt
    finally:
        metrics.METRICS.reset()


def test_two_hundred_users_a_page_at_a_time(capsys):
    """Two hundred users, paged as JupyterHub pages its lists: every user on exactly one page, filters and sorts
    over all of them, bad paging refused. Timings are reported, not asserted (the benchmarks judge speed)."""
    now = time.time()
    try:
        with running_hub() as hub:
            hub.add_users(
                {
                    f"user{i:03d}": auth_state(
                        refresh_age_days=i * 0.5,  # 0 to 99.5 days: some warned, some past 90
                        servers={"": {"started_at": now - 60, "last_pull_at": now - i}},
                    )
                    for i in range(200)
                }
            )
            token = hub.token("admin")
            session = hub.session("admin")

            def api(query: str = "") -> requests.Response:
                return requests.get(
                    f"{hub.url}hub/api/qcs/users{query}", headers={"Authorization": f"token {token}"}, timeout=60
                )

            timings = {}
            for label, fetch in (("json", api), ("page", lambda: session.get(f"{hub.url}hub/qcs/admin", timeout=60))):
                fetch()  # warm
                started = time.perf_counter()
                for _ in range(3):
                    assert fetch().status_code == 200
                timings[label] = (time.perf_counter() - started) / 3
            first = api().json()
            pages, offset = [], 0
            while offset is not None:
                doc = api(f"?sort=name&limit=64&offset={offset}").json()
                pages.append(doc)
                offset = doc["next_offset"]
            relogin = api("?state=relogin&sort=-refresh_age").json()
            html = session.get(f"{hub.url}hub/qcs/admin", timeout=60).text
            second_page = session.get(f"{hub.url}hub/qcs/admin?offset=50", timeout=60).text
            refused = {q: api(q) for q in ("?limit=0", "?limit=501", "?offset=-1", "?offset=x", "?state=bogus")}
    finally:
        metrics.METRICS.reset()
    # Ages in 0.5-day steps: 83 up to 90 days is the 7-day warning window (83.0 to 89.5: 14 users), 90 days and
    # more must log in again (90.0 to 99.5: 20 users).
    assert first["summary"]["users"] == 202 and first["total"] == 202  # and "admin", and MockHub's "user"
    assert first["summary"]["warning"] == 14 and first["summary"]["relogin"] == 20, first["summary"]
    assert len(first["users"]) == 50 and first["limit"] == 50 and first["next_offset"] == 50
    names = [u["name"] for doc in pages for u in doc["users"]]
    assert len(pages) == 4 and names == sorted(names, key=str.lower) and len(set(names)) == 202
    assert relogin["total"] == 20 and {u["status"] for u in relogin["users"]} == {"relogin"}
    ages = [u["refresh_token_age_days"] for u in relogin["users"]]
    assert ages == sorted(ages, reverse=True) and ages[0] == 99.5
    assert len(re.findall(r'data-qcs-user="user\d{3}"', html)) == 50
    assert "users 1 to 50 of 202" in html and 'data-qcs-page="next"' in html and 'data-qcs-page="previous"' not in html
    assert "users 51 to 100 of 202" in second_page and 'data-qcs-page="previous"' in second_page
    for query, answer in refused.items():
        assert answer.status_code == 400, query
    with capsys.disabled():
        print(f"\n200 users: JSON {timings['json'] * 1000:.0f} ms, page {timings['page'] * 1000:.0f} ms per request")
