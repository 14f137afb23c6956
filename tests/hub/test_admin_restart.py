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
from .test_admin import SERVER_HASH, auth_state, users


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
        # The gauges live in memory: a restarted Hub process starts with none (and has not rebuilt them yet).
        metrics.METRICS._users.clear()
        metrics.METRICS.rebuilt = False
        with running_hub(crypt_key=key, db_url=db_url) as second:
            expected = {"relogin_required": 2, "refresh_expiring": 1, "signed_in": 5}  # ed's timeout: page-only
            deadline = time.monotonic() + 30
            # Only /hub/metrics is read: no admin page, no login, nothing else that would observe a user.
            while (values := gauge_values(second)) != expected and time.monotonic() < deadline:
                time.sleep(0.2)
            assert values == expected
            assert metrics.METRICS.rebuilt
    finally:
        metrics.METRICS._users.clear()


def test_two_hundred_users(capsys):
    """The page and the JSON read every user's encrypted auth_state; measured here, reported, not asserted."""
    now = time.time()
    try:
        with running_hub() as hub:
            hub.add_users(
                {
                    f"user{i:03d}": auth_state(
                        refresh_age_days=i * 0.5,  # 0 to 99.5 days: some warned, some past 90
                        servers={"": {"token_sha256": SERVER_HASH, "started_at": now - 60, "last_pull_at": now - i}},
                    )
                    for i in range(200)
                }
            )
            token = hub.token("admin")
            session = hub.session("admin")
            timings = {}
            for label, fetch in (
                (
                    "json",
                    lambda: requests.get(
                        f"{hub.url}hub/api/qcs/users", headers={"Authorization": f"token {token}"}, timeout=60
                    ),
                ),
                ("page", lambda: session.get(f"{hub.url}hub/qcs/admin", timeout=60)),
            ):
                fetch()  # warm
                started = time.perf_counter()
                for _ in range(3):
                    answer = fetch()
                    assert answer.status_code == 200
                timings[label] = (time.perf_counter() - started) / 3
            doc = requests.get(
                f"{hub.url}hub/api/qcs/users", headers={"Authorization": f"token {token}"}, timeout=60
            ).json()
            page = session.get(f"{hub.url}hub/qcs/admin", timeout=60).text
    finally:
        metrics.METRICS._users.clear()
    # Ages in 0.5-day steps: 83 up to 90 days is the 7-day warning window (83.0 to 89.5: 14 users), 90 days and
    # more must log in again (90.0 to 99.5: 20 users).
    assert doc["summary"]["users"] == 202  # and "admin", and MockHub's "user"
    assert doc["summary"]["warning"] == 14 and doc["summary"]["relogin"] == 20, doc["summary"]
    assert len(re.findall(r'data-qcs-user="user\d{3}"', page)) == 200
    with capsys.disabled():
        print(f"\n200 users: JSON {timings['json'] * 1000:.0f} ms, page {timings['page'] * 1000:.0f} ms per request")
