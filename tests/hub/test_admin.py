"""The QCS admin page and its JSON twin: rows from auth_state, problems first, sorting, scopes, no token values.

Rows and sorting are checked as functions; the handlers run in JupyterHub's own test Hub (``MockHub``, with its
real proxy, database, encrypted auth_state, cookies, XSRF and scopes) in a thread, reached over HTTP. The revoke
that really ends a session runs end to end in ``tests/e2e/test_operators.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from qcs_jupyter.hub import admin, metrics
from qcs_jupyter.hub.admin import parse_sort, public_row, sort_names, user_row
from qcs_jupyter.hub.metrics import DAY

from .mockhub import HubInThread, running_hub

ACCESS = "access-token-VALUE-never-shown"
REFRESH = "refresh-token-VALUE-never-shown"
SESSION = "qcsj1.c2Vzc2lvbg.session-VALUE-never-shown"
SERVER_HASH = "f" * 64


def auth_state(
    *,
    refresh_age_days: float | None = 2,
    access_left: float = 1800,
    refresh: bool = True,
    access: bool = True,
    servers: dict | None = None,
    **qcs,
) -> dict:
    now = time.time()
    state = {
        "id_token": "id-token-VALUE-never-shown",
        "scope": ["openid", "offline_access"],
        "qcs": {
            "access_token_obtained_at": now - 60,
            "access_token_expires_at": now + access_left,
            "refresh_token_obtained_at": None if refresh_age_days is None else now - refresh_age_days * DAY,
            "last_refresh_at": now - 120,
            "last_refresh_outcome": "ok",
            "servers": servers or {},
            "session_refresh_token": SESSION,
            "logged_out_at": None,
            **qcs,
        },
    }
    if access:
        state["access_token"] = ACCESS
    if refresh:
        state["refresh_token"] = REFRESH
    return state


#: name -> the status its auth_state (from ``users()``) must show
EXPECTED = {
    "ada": "ok",
    "bob": "warning",
    "cy": "relogin",
    "di": "relogin",
    "ed": "warning",
    "fay": "signed_out",
    "gus": "never",
}


def users(now: float | None = None) -> dict[str, dict | None]:
    """One user per status, their times taken from ``now`` (the time of the test, never of the collection)."""
    now = time.time() if now is None else now
    return {
        "ada": auth_state(
            servers={"": {"token_sha256": SERVER_HASH, "started_at": now - 600, "last_pull_at": now - 30}}
        ),
        "bob": auth_state(refresh_age_days=85),
        "cy": auth_state(refresh=False, last_refresh_outcome="rejected"),
        "di": auth_state(refresh_age_days=92),
        "ed": auth_state(last_refresh_outcome="timeout"),
        "fay": auth_state(refresh=False, access=False, logged_out_at=now - 3600),
        "gus": None,
    }


# --- rows, as functions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(EXPECTED))
def test_user_row_status(name):
    expected = EXPECTED[name]
    row = user_row(name, users()[name])
    assert row["status"] == expected
    assert bool(row["problems"]) is (expected in ("relogin", "warning"))
    text = json.dumps(public_row(row))
    for secret in (ACCESS, REFRESH, SESSION, SERVER_HASH, "id-token-VALUE"):
        assert secret not in text


def test_user_row_fields():
    now = time.time()
    row = user_row(
        "ada",
        auth_state(
            refresh_age_days=10,
            access_left=1800,
            servers={
                "": {"token_sha256": SERVER_HASH, "started_at": now - 600, "last_pull_at": now - 30},
                "gpu": {"token_sha256": SERVER_HASH, "started_at": now - 60, "last_pull_at": None},
            },
        ),
        now=now,
        running={"": True},
    )
    assert row["signed_in"] is True and row["access_token_expired"] is False
    assert row["access_token_expires"] == "in 30 min"
    assert row["refresh_token_age_days"] == pytest.approx(10, abs=0.01)
    assert row["refresh_token_max_age_days"] == 90
    assert row["last_refresh_outcome"] == "ok" and row["last_refresh"] == "2 min ago"
    assert [(s["name"], s["running"], s["last_pull"]) for s in row["servers"]] == [
        ("", True, "30 s ago"),
        ("gpu", False, "never"),
    ]
    public = public_row(row)
    assert public["servers"][0]["last_pull_at"].endswith("Z") and "last_pull" not in public["servers"][0]
    assert "status_label" not in public and "token_sha256" not in json.dumps(public)


def test_problems_say_what_to_do():
    states = users()
    rejected = user_row("cy", states["cy"])["problems"]
    assert any("refused the refresh token" in p and "must log in again" in p for p in rejected)
    old = user_row("di", states["di"])["problems"]
    assert any("92 days old" in p and "last 90 days" in p for p in old)
    soon = user_row("bob", states["bob"])["problems"]
    assert any("expires in 5 d" in p and "should log in again" in p for p in soon)
    down = user_row("ed", states["ed"])["problems"]
    assert any("timed out" in p and "retries" in p for p in down)


def test_warning_window_follows_the_authenticator_settings():
    state = auth_state(refresh_age_days=20)
    assert user_row("x", state)["status"] == "ok"
    assert user_row("x", state, max_age_days=30, warning_days=14)["status"] == "warning"
    assert user_row("x", state, max_age_days=14)["status"] == "relogin"


def sort(key: str = "status") -> list[str]:
    """The listing's order of ``users()`` for ``sort=key``, from their health as the Hub keeps it in memory."""
    now = time.time()
    healths = {name: metrics.classify(state) for name, state in users().items()}
    column, descending = parse_sort(key)
    return sort_names(list(healths), column, descending, lambda n: (healths[n], healths[n].page_state(now)), now)


def test_sorting_problems_first_then_by_column():
    assert sort() == ["cy", "di", "bob", "ed", "ada", "fay", "gus"]
    assert sort("-name") == ["gus", "fay", "ed", "di", "cy", "bob", "ada"]
    # Oldest refresh token first; ties by name; no refresh token (cy, fay, gus) last, by name.
    assert sort("-refresh_age") == ["di", "bob", "ada", "ed", "cy", "fay", "gus"]
    assert sort("last_pull")[0] == "ada"


@pytest.mark.parametrize("bad", ["bogus", "-", "status;drop"])
def test_bad_sort_is_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match="sort must be one of status, name, access_expires"):
        parse_sort(bad)


# --- the handlers in JupyterHub's test Hub ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub() -> Iterator[HubInThread]:
    """A Hub holding exactly the users of ``users()``, a plain user ``ann`` and the admin (nothing else)."""
    with running_hub() as running:
        running.add_users(users())
        running.add_users({"ann": None})  # a plain user, not an admin
        yield running


def statuses(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-qcs-user="([^"]+)"\s+data-qcs-status="([^"]+)"', html)


def test_page_needs_a_login_and_admin_ui(hub):
    anonymous = requests.get(f"{hub.url}hub/qcs/admin", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/hub/login" in anonymous.headers["Location"]
    plain = hub.session("ann").get(f"{hub.url}hub/qcs/admin", timeout=30)
    assert plain.status_code == 403


def test_page_lists_problems_first_and_never_a_token(hub):
    page = hub.session("admin").get(f"{hub.url}hub/qcs/admin", timeout=30)
    assert page.status_code == 200, page.text[-2000:]
    html = page.text
    assert 'id="jupyterhub-logo"' in html and "<title>QCS token health</title>" in html  # the Hub's page.html
    rows = statuses(html)
    assert rows[:5] == [("cy", "relogin"), ("di", "relogin"), ("bob", "warning"), ("ed", "warning"), ("ada", "ok")]
    assert {name for name, _ in rows} == set(EXPECTED) | {"ann", "admin", "user"}  # "user": MockHub's own
    assert re.search(r'data-qcs-count="relogin">2<', html) and re.search(r'data-qcs-count="warning">2<', html)
    for secret in (ACCESS, REFRESH, SESSION, SERVER_HASH, "id-token-VALUE"):
        assert secret not in html
    # The revoke action is offered to users with a session, with the Hub's XSRF token.
    assert html.count("Revoke QCS session") == 5  # ada, bob, cy, di, ed (not fay, gus, ann, admin)
    assert re.search(r'name="_xsrf" value="[^"]+"', html)
    assert 'aria-sort="ascending"' in html and 'href="?sort=-status"' in html


def test_page_sorts_and_refuses_a_bad_sort(hub):
    session = hub.session("admin")
    names = [n for n, _ in statuses(session.get(f"{hub.url}hub/qcs/admin?sort=-name", timeout=30).text)]
    assert names == sorted(names, reverse=True)
    bad = session.get(f"{hub.url}hub/qcs/admin?sort=password", timeout=30)
    assert bad.status_code == 400 and "sort must be one of" in bad.text


def test_json_twin_scopes_and_content(hub):
    url = f"{hub.url}hub/api/qcs/users"
    everyone = requests.get(url, headers={"Authorization": f"token {hub.token('admin')}"}, timeout=30)
    assert everyone.status_code == 200 and everyone.headers["Content-Type"].startswith("application/json")
    doc = everyone.json()
    assert doc["sort"] == "status" and doc["refresh_token_max_age_days"] == 90
    assert doc["summary"]["relogin"] == 2 and doc["summary"]["warning"] == 2 and doc["summary"]["never"] >= 3
    by_name = {row["name"]: row for row in doc["users"]}
    assert {name: by_name[name]["status"] for name in EXPECTED} == EXPECTED
    assert by_name["ada"]["servers"][0]["name"] == "" and by_name["ada"]["servers"][0]["last_pull_at"].endswith("Z")
    for secret in (ACCESS, REFRESH, SESSION, SERVER_HASH, "id-token-VALUE"):
        assert secret not in everyone.text
    # A user's own token (scope "self") reads only their own row.
    own = requests.get(url, headers={"Authorization": f"token {hub.token('ada')}"}, timeout=30).json()
    assert [row["name"] for row in own["users"]] == ["ada"]
    # Without read:users: refused.
    metrics_only = hub.token("admin", ["read:metrics"])
    refused = requests.get(url, headers={"Authorization": f"token {metrics_only}"}, timeout=30)
    assert refused.status_code == 403
    bad = requests.get(url, params={"sort": "x"}, headers={"Authorization": f"token {hub.token('admin')}"}, timeout=30)
    assert bad.status_code == 400 and "sort must be one of" in bad.json()["message"]


@pytest.mark.parametrize(
    ("who", "scopes", "user", "body", "status", "message"),
    [
        pytest.param("admin", ["read:users"], "ada", {}, 403, "needs the scope admin:users", id="no-admin-users"),
        pytest.param("admin", None, "nobody", {}, 404, "No such user", id="unknown-user"),
        pytest.param("ada", None, "bob", {}, 404, "No such user", id="other-user-invisible"),
        pytest.param("admin", None, "ada", b"not json", 400, "must be JSON", id="bad-body"),
        pytest.param("admin", None, "ada", {"reason": 5}, 400, "optional string", id="reason-not-string"),
        pytest.param("admin", None, "ada", {"reason": "left"}, 501, "cannot revoke QCS sessions", id="no-revoke"),
    ],
)
def test_revoke_api_refusals(hub, who, scopes, user, body, status, message):
    data = body if isinstance(body, bytes) else json.dumps(body)
    answer = requests.post(
        f"{hub.url}hub/api/qcs/users/{user}/revoke",
        data=data,
        headers={"Authorization": f"token {hub.token(who, scopes)}"},
        timeout=30,
    )
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]


def test_revoke_form_needs_admin_ui_and_xsrf(hub):
    url = f"{hub.url}hub/qcs/admin"
    plain = hub.session("ann")
    assert plain.post(url, data={"user": "ada"}, timeout=30).status_code == 403
    admin = hub.session("admin")
    assert admin.post(url, data={"user": "ada"}, timeout=30).status_code == 403  # no _xsrf
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', admin.get(url, timeout=30).text).group(1)
    missing = admin.post(url, data={"_xsrf": xsrf, "user": ""}, timeout=30)
    assert missing.status_code == 400 and "needs a user name" in missing.text
    answer = admin.post(url, data={"_xsrf": xsrf, "user": "ada", "reason": "test"}, timeout=30)
    assert answer.status_code == 501 and "cannot revoke QCS sessions" in answer.text


def test_metrics_show_the_gauges_at_hub_metrics(hub):
    """The gauges count what the Hub saw of every user's auth_state (the rebuild after a restart:
    tests/hub/test_admin_restart.py)."""
    text = requests.get(
        f"{hub.url}hub/metrics", headers={"Authorization": f"token {hub.token('admin', ['read:metrics'])}"}, timeout=30
    ).text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
    prefix = metrics.METRICS_PREFIX
    assert samples[f"{prefix}_qcs_users_relogin_required"] == 2
    assert samples[f"{prefix}_qcs_users_refresh_expiring"] == 1  # ed's IdP timeout is a page warning only
    assert samples[f"{prefix}_qcs_users_signed_in"] == 5
    assert f'{prefix}_qcs_idp_refreshes_total{{outcome="timeout"}}' in text
    assert "ada" not in re.sub(r"^#.*$", "", text, flags=re.M)  # no user name in any sample


def test_a_state_changed_around_the_authenticator_is_listed_as_stored(hub):
    """An admin's PATCH of auth_state (JupyterHub's REST API) is not seen by the authenticator: the page reads
    its rows afresh and orders them again when what it read differs from what was kept in memory."""
    token = hub.token("admin")
    hub.add_users({"zoe": auth_state(refresh_age_days=1)})  # seen by the Hub: ok
    before = statuses(hub.session("admin").get(f"{hub.url}hub/qcs/admin", timeout=30).text)
    assert ("zoe", "ok") in before  # (this also waits for the Hub's first rebuild from the database)
    patched = requests.patch(
        f"{hub.url}hub/api/users/zoe",
        json={"auth_state": auth_state(refresh_age_days=95)},  # past 90 days: must log in again
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert patched.status_code == 200, patched.text
    try:
        rows = statuses(hub.session("admin").get(f"{hub.url}hub/qcs/admin", timeout=30).text)
        assert ("zoe", "relogin") in rows
        first_ok = next(i for i, (_, status) in enumerate(rows) if status not in ("relogin",))
        assert rows.index(("zoe", "relogin")) < first_ok  # problems first, zoe among them
    finally:
        requests.delete(f"{hub.url}hub/api/users/zoe", headers={"Authorization": f"token {token}"}, timeout=30)


def test_stored_health_reads_every_user_in_batches_off_the_event_loop(tmp_path):
    """The rebuild after a restart: every user's health from the database, a batch per query, decrypted and
    classified in JupyterHub's encryption thread pool; a state that cannot be decrypted counts as none."""
    from jupyterhub import orm
    from jupyterhub.crypto import CryptKeeper

    keeper = CryptKeeper.instance()
    saved = keeper.keys
    keeper.keys = [os.urandom(32)]
    try:
        db = orm.new_session_factory(f"sqlite:///{tmp_path / 'hub.sqlite'}")()
        ages = {f"user{i:02d}": i * 10 + 5 for i in range(10)}  # 5 to 95 days: ok, warning, relogin
        for name, age in ages.items():
            encrypted = keeper.fernet.encrypt(json.dumps(auth_state(refresh_age_days=age)).encode())
            db.add(orm.User(name=name, encrypted_auth_state=encrypted))
        db.add(orm.User(name="none"))
        db.add(orm.User(name="garbled", encrypted_auth_state=b"not-a-fernet-token"))
        db.commit()

        async def read() -> list[list[tuple[str, metrics.Health]]]:
            loop_thread = threading.get_ident()
            threads = set()
            classify = admin._classify_stored

            def spy(*args):
                threads.add(threading.get_ident())
                return classify(*args)

            admin._classify_stored = spy
            try:
                return [b async for b in admin.stored_health(db, max_age_days=90, warning_days=7, batch=4)], (
                    loop_thread not in threads
                )
            finally:
                admin._classify_stored = classify

        batches, off_loop = asyncio.run(read())
        assert off_loop
        assert [len(b) for b in batches] == [4, 4, 4]
        health = dict(pair for batch in batches for pair in batch)
        now = time.time()
        assert {name: health[name].state(now) for name in ages} == {
            **{f"user{i:02d}": "ok" for i in range(8)},
            "user08": "warning",
            "user09": "relogin",
        }
        assert health["none"] == metrics.Health() and health["garbled"] == metrics.Health()
        db.close()
    finally:
        keeper.keys = saved


class _App:
    http_server = object()  # the Hub serves
    db = None


class _Authenticator:
    enable_auth_state = True

    def __init__(self, freeze: bool) -> None:
        self.parent, self.freeze_startup_objects = _App(), freeze
        self.log = logging.getLogger("test")


@pytest.mark.parametrize("freeze", [True, False])
def test_the_startup_heap_is_frozen_once_the_hub_serves_if_configured(monkeypatch, freeze):
    calls = []
    monkeypatch.setattr(admin.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(metrics.METRICS, "rebuilt", True)  # nothing to rebuild here

    async def scenario():
        admin.schedule_rebuild(_Authenticator(freeze), poll=0.01)
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert calls == (["freeze"] if freeze else [])
