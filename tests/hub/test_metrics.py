"""QCS metrics: names and prefix as JupyterHub's, outcomes, the token-health gauges over time, no names in labels."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from devstack.localidp import free_port
from qcs_jupyter.hub import metrics
from qcs_jupyter.hub.metrics import DAY, QCSMetrics, classify, outcome_of_error


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def fresh():
    registry = CollectorRegistry()
    return registry, QCSMetrics(registry=registry, namespace="jupyterhub")


def state(*, refresh_age_days: float | None = 1, refresh=True, access=True, **qcs) -> dict:
    now = time.time()
    auth_state = {"qcs": {"access_token_expires_at": now + 600, **qcs}}
    if access:
        auth_state["access_token"] = "access-token-value-xyz"
    if refresh:
        auth_state["refresh_token"] = "refresh-token-value-xyz"
    if refresh_age_days is not None:
        auth_state["qcs"]["refresh_token_obtained_at"] = now - refresh_age_days * DAY
    return auth_state


def test_every_series_exists_at_zero_before_anything_happens(fresh):
    registry, _ = fresh
    samples = scrape(registry)
    for outcome in metrics.IDP_REFRESH_OUTCOMES:
        assert samples[("jupyterhub_qcs_idp_refreshes_total", (("outcome", outcome),))] == 0
        assert samples[("jupyterhub_qcs_idp_refresh_duration_seconds_count", (("outcome", outcome),))] == 0
    for outcome in metrics.HANDOFF_OUTCOMES:
        assert samples[("jupyterhub_qcs_handoffs_total", (("outcome", outcome),))] == 0
    for outcome in metrics.HELD_CLIENT_OUTCOMES:
        assert samples[("jupyterhub_qcs_held_client_refreshes_total", (("outcome", outcome),))] == 0
    for by in ("user", "admin"):
        assert samples[("jupyterhub_qcs_logouts_total", (("by", by),))] == 0
    assert samples[("jupyterhub_qcs_logins_total", ())] == 0
    for gauge in ("refresh_expiring", "relogin_required", "signed_in"):
        assert samples[(f"jupyterhub_qcs_users_{gauge}", ())] == 0


def test_events_move_counters_and_histograms(fresh):
    registry, m = fresh
    m.idp_refresh("ok", 0.2)
    m.idp_refresh("ok", 0.3)
    m.idp_refresh("timeout", 10.0)
    m.handoff("ok", 0.004)
    m.handoff("relogin", 0.002)
    m.held_client_refresh("refused")
    m.held_client_refresh("ok")
    m.login()
    m.logout()
    m.logout(by="admin")
    samples = scrape(registry)
    assert samples[("jupyterhub_qcs_idp_refreshes_total", (("outcome", "ok"),))] == 2
    assert samples[("jupyterhub_qcs_idp_refreshes_total", (("outcome", "timeout"),))] == 1
    assert samples[("jupyterhub_qcs_idp_refresh_duration_seconds_sum", (("outcome", "ok"),))] == pytest.approx(0.5)
    assert samples[("jupyterhub_qcs_idp_refresh_duration_seconds_bucket", (("le", "0.25"), ("outcome", "ok")))] == 1
    assert samples[("jupyterhub_qcs_handoffs_total", (("outcome", "relogin"),))] == 1
    assert samples[("jupyterhub_qcs_handoff_duration_seconds_count", (("outcome", "ok"),))] == 1
    assert samples[("jupyterhub_qcs_held_client_refreshes_total", (("outcome", "refused"),))] == 1
    assert samples[("jupyterhub_qcs_held_client_refreshes_total", (("outcome", "ok"),))] == 1
    assert samples[("jupyterhub_qcs_logins_total", ())] == 1
    assert samples[("jupyterhub_qcs_logouts_total", (("by", "user"),))] == 1
    assert samples[("jupyterhub_qcs_logouts_total", (("by", "admin"),))] == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda m: m.idp_refresh("failed", 1), "unknown IdP refresh outcome 'failed'", id="idp"),
        pytest.param(lambda m: m.handoff("403", 1), "unknown handoff outcome '403'", id="handoff"),
        pytest.param(lambda m: m.held_client_refresh("nope"), "unknown held-client refresh outcome", id="held"),
        pytest.param(lambda m: m.logout(by="ada"), "unknown logout initiator outcome 'ada'", id="logout"),
    ],
)
def test_unknown_outcomes_are_refused_with_the_allowed_ones(fresh, call, message):
    _, m = fresh
    with pytest.raises(ValueError, match=message) as e:
        call(m)
    assert "expected one of" in str(e.value)


# Each case builds its auth_state when the test runs (a lambda), never at collection: a suite that takes longer
# than a token's lifetime must not turn "still valid" into "expired".
@pytest.mark.parametrize(
    ("make_state", "expected"),
    [
        pytest.param(lambda: None, "signed_out", id="no-auth-state"),
        pytest.param(lambda: state(refresh_age_days=1), "ok", id="fresh-login"),
        pytest.param(lambda: state(refresh_age_days=83.5), "warning", id="inside-7-day-window"),
        pytest.param(lambda: state(refresh_age_days=90.5), "relogin", id="past-90-days"),
        pytest.param(lambda: state(last_refresh_outcome="rejected", refresh=False), "relogin", id="idp-refused"),
        pytest.param(lambda: state(last_refresh_outcome="unreachable"), "ok", id="idp-down-is-not-relogin"),
        pytest.param(
            lambda: state(refresh=False, refresh_age_days=None, access_token_expires_at=time.time() - 5),
            "relogin",
            id="no-refresh-token-expired",
        ),
        pytest.param(lambda: state(refresh=False, refresh_age_days=None), "ok", id="no-refresh-token-still-valid"),
        pytest.param(
            lambda: state(refresh=False, access=False, logged_out_at=time.time()),
            "signed_out",
            id="logged-out-or-revoked",
        ),
    ],
)
def test_classify(make_state, expected):
    assert classify(make_state()).state(time.time()) == expected


def test_gauges_count_users_and_follow_the_clock(fresh):
    registry, m = fresh
    m.observe_auth_state("ada@example.org", state(refresh_age_days=1))
    m.observe_auth_state("bob@example.org", state(refresh_age_days=84))
    m.observe_auth_state("cy@example.org", state(refresh_age_days=91))
    m.observe_auth_state("di@example.org", state(refresh=False, access=False, logged_out_at=time.time()))
    m.user_health("ed@example.org", relogin=True)
    samples = scrape(registry)
    assert samples[("jupyterhub_qcs_users_refresh_expiring", ())] == 1
    assert samples[("jupyterhub_qcs_users_relogin_required", ())] == 2
    assert samples[("jupyterhub_qcs_users_signed_in", ())] == 4
    # Seven days later nobody touched anything: ada is fine, bob is past 90 days.
    later = time.time() + 7 * DAY
    assert m.health_states(later) == {"ok": 1, "warning": 0, "relogin": 3, "signed_out": 1}
    # bob logs in again; cy is deleted.
    m.observe_auth_state("bob@example.org", state(refresh_age_days=0))
    m.forget_user("cy@example.org")
    assert m.health_states() == {"ok": 2, "warning": 0, "relogin": 1, "signed_out": 1}


def test_no_user_name_or_token_in_the_exposition(fresh):
    registry, m = fresh
    for i in range(5):
        m.observe_auth_state(f"secret-user-{i}@example.org", state(refresh_age_days=10 * i))
    m.user_health("another-secret-user", warning=True)
    text = generate_latest(registry).decode()
    assert "secret-user" not in text and "example.org" not in text
    assert "token-value" not in text
    labels = {k for family in text_string_to_metric_families(text) for s in family.samples for k in s.labels}
    assert labels <= {"outcome", "by", "le"}


class FakeUser:
    """The two things rebuild_from_users uses of a JupyterHub User: its name and its auth_state."""

    def __init__(self, name, auth_state, delay=0.0):
        self.name, self._state, self._delay = name, auth_state, delay

    async def get_auth_state(self):
        await asyncio.sleep(self._delay)
        return self._state


def test_rebuild_from_users_keeps_what_an_event_observed_meanwhile(fresh):
    _, m = fresh

    async def scenario():
        users = [
            FakeUser("ada", state(refresh_age_days=1)),
            FakeUser("bob", state(refresh_age_days=85)),
            FakeUser("cy", state(refresh_age_days=95), delay=0.05),
        ]
        rebuild = asyncio.ensure_future(m.rebuild_from_users(users))
        await asyncio.sleep(0.01)
        m.observe_auth_state("cy", state(refresh_age_days=0))  # cy logged in again while we were reading
        return await rebuild

    assert asyncio.run(scenario()) == 3
    assert m.rebuilt
    assert m.health_states() == {"ok": 2, "warning": 1, "relogin": 0, "signed_out": 0}


def test_rebuild_leaves_alone_what_events_said_while_it_ran(fresh):
    """A user logged in, deleted or judged by an event while the rebuild read the database keeps what the event
    said, whichever batch of the rebuild carries them; the others take the rebuilt value."""
    _, m = fresh
    m.know_user("ada")  # known at startup, never observed: the rebuild's value wins

    async def batches():
        yield [("ada", classify(state(refresh_age_days=1))), ("bob", classify(state(refresh_age_days=85)))]
        m.forget_user("cy")  # deleted while the rebuild ran
        m.user_health("dee", relogin=True)
        await asyncio.sleep(0)
        yield [("cy", classify(state(refresh_age_days=1))), ("dee", classify(state(refresh_age_days=1)))]

    assert asyncio.run(m.rebuild(batches())) == 4
    assert m.rebuilt
    assert m.health("cy") is None
    assert m.health("dee").relogin
    assert m.health_states() == {"ok": 1, "warning": 1, "relogin": 1, "signed_out": 0}
    m.observe_auth_state("cy", state(refresh_age_days=1))  # after the rebuild events are recorded as before
    assert m.health_states()["ok"] == 2


def test_rebuild_keeps_a_login_observed_before_it_started(fresh):
    """A login is observed just before its auth_state is saved: a rebuild that starts after the login and reads
    the user's row before the save (no tokens yet) must not count them as signed out."""
    _, m = fresh
    m.observe_auth_state("mia", state(refresh_age_days=0))
    m.know_user("mia")  # the Hub then creates her row

    async def batches():
        yield [("mia", classify(None)), ("ray", classify(state(refresh_age_days=1)))]

    assert asyncio.run(m.rebuild(batches())) == 2
    assert m.health_states() == {"ok": 2, "warning": 0, "relogin": 0, "signed_out": 0}


def test_prefix_follows_jupyterhub_metrics_prefix():
    code = (
        "import json; from prometheus_client import REGISTRY, generate_latest\n"
        "import jupyterhub.metrics as jm; from qcs_jupyter.hub import metrics as qm\n"
        "text = generate_latest(REGISTRY).decode()\n"
        "print(json.dumps([jm.metrics_prefix, qm.METRICS_PREFIX, 'myhub_qcs_idp_refreshes_total' in text,"
        " 'myhub_request_duration_seconds' in text, 'jupyterhub_qcs' in text]))\n"
    )
    env = {**os.environ, "JUPYTERHUB_METRICS_PREFIX": "myhub"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["myhub", "myhub", True, True, False]


def test_outcome_of_real_network_errors():
    """A refused connection is "unreachable"; a server that accepts and never answers is "timeout"."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])  # accept and say nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    async def fetch(url):
        try:
            await AsyncHTTPClient().fetch(url, request_timeout=0.5, connect_timeout=0.5)
        except (HTTPClientError, OSError) as e:
            return e
        raise AssertionError("the request should have failed")

    try:
        refused = asyncio.run(fetch(f"http://127.0.0.1:{free_port()}/v1/token"))
        slow = asyncio.run(fetch(f"http://127.0.0.1:{silent.getsockname()[1]}/v1/token"))
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        silent.close()
    assert outcome_of_error(refused) == "unreachable"
    assert outcome_of_error(slow) == "timeout"
    assert outcome_of_error(asyncio.TimeoutError()) == "timeout"


def test_docs_metrics_table_names_every_metric(fresh):
    """The docs' metrics table (docs/operate/metrics.md) and the registry list the same metrics."""
    section = (Path(__file__).resolve().parents[2] / "docs" / "operate" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `jupyterhub_(qcs_[a-z_]+)`", section, flags=re.M))
    registry, _ = fresh
    exported = {
        family.name.removeprefix("jupyterhub_") + ("_total" if family.type == "counter" else "")
        for family in registry.collect()
    }
    assert documented == exported
