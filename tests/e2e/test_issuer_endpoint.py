"""The Hub's open token endpoint for QCS clients (``/hub/api/qcs/issuer/v1/token``) under abuse, on a real Hub:
every malformed request is ``400`` with an OAuth error (never a 500), a client with too many failures is answered
``429`` with ``Retry-After`` while a valid session token from the same address is still served. (That forged
tokens are refused by their signature before any user is looked up is tested in ``tests/hub/test_session.py``.)"""

from __future__ import annotations

import base64
import socket

import pytest
import requests
from requests.adapters import HTTPAdapter

from .conftest import spawn, stack

FAILURES_PER_MINUTE = 8


class FromAddress(HTTPAdapter):
    """Requests from another loopback address, so each test is its own client for the Hub's limit."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client(address: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", FromAddress(address))
    return session


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    extra = f"c.QCSAuthenticator.issuer_failures_per_minute = {FAILURES_PER_MINUTE}\n"
    with stack(tmp_path_factory.mktemp("issuer"), rotate=False, ttl=600, extra_config=extra) as hub:
        hub.ada = spawn(hub, "ada")
        yield hub


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def bad_requests(good: str) -> dict[str, tuple[bytes, str, int, str]]:
    """name -> (body, content type, status, OAuth error)."""
    prefix, _user, minted, sid, mac = good.split(".")
    form = "application/x-www-form-urlencoded"

    def refresh(token: str) -> bytes:
        return b"grant_type=refresh_token&client_id=x&refresh_token=" + token.encode()

    return {
        "no grant type": (b"refresh_token=" + good.encode(), form, 400, "unsupported_grant_type"),
        "other grant": (b"grant_type=password&username=ada", form, 400, "unsupported_grant_type"),
        "no refresh token": (b"grant_type=refresh_token", form, 400, "invalid_grant"),
        "empty refresh token": (refresh(""), form, 400, "invalid_grant"),
        "non-ascii": (refresh("%C3%A9" * 20), form, 400, "invalid_grant"),
        "invalid utf-8": (refresh("%FF%FE"), form, 400, "invalid_grant"),
        "invalid utf-8 grant": (b"grant_type=%FF", form, 400, "unsupported_grant_type"),
        "nul in the name": (refresh(".".join([prefix, b64("ad\0a"), minted, sid, mac])), form, 400, "invalid_grant"),
        "huge": (refresh("A" * 100_000), form, 400, "invalid_grant"),
        "twice": (refresh(good) + b"&refresh_token=" + good.encode(), form, 400, "invalid_grant"),
        "0.2 format": (refresh("qcsj1." + b64("ada") + "." + "x" * 43), form, 400, "invalid_grant"),
        "signature changed": (refresh(good[:-1] + ("A" if good[-1] != "A" else "B")), form, 400, "invalid_grant"),
        "another user's name": (refresh(".".join([prefix, b64("bob"), minted, sid, mac])), form, 400, "invalid_grant"),
        "json body": (b'{"grant_type": "refresh_token"}', "application/json", 400, "unsupported_grant_type"),
    }


def test_every_bad_request_has_its_answer(hub):
    good = hub.session_token("ada")
    session = client("127.0.0.3")
    url = f"{hub.url}/hub/api/qcs/issuer/v1/token"
    answers = {}
    for name, (body, content_type, _, _) in bad_requests(good).items():
        answer = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
        answers[name] = (answer.status_code, answer.json().get("error"))
        assert good not in answer.text
    expected = {name: (status, error) for name, (_, _, status, error) in bad_requests(good).items()}
    # Past the limit a failure is 429 instead: compare the first FAILURES_PER_MINUTE in full, the rest by limit.
    names = list(expected)
    for name in names[:FAILURES_PER_MINUTE]:
        assert answers[name] == expected[name], name
    for name in names[FAILURES_PER_MINUTE:]:
        assert answers[name] in (expected[name], (429, "slow_down")), name
    assert "Traceback" not in hub.log_text() and " 500 " not in hub.log_text()
    # Control: the good token, from the same address, is answered.
    assert session.post(url, data={"grant_type": "refresh_token", "refresh_token": good}, timeout=30).status_code == 200


def test_too_many_failures_are_answered_429_but_a_valid_token_still_works(hub):
    session = client("127.0.0.2")
    url = f"{hub.url}/hub/api/qcs/issuer/v1/token"
    bad = {"grant_type": "refresh_token", "refresh_token": "qcsj2.guess"}
    statuses = [session.post(url, data=bad, timeout=30) for _ in range(FAILURES_PER_MINUTE + 3)]
    assert [r.status_code for r in statuses[:FAILURES_PER_MINUTE]] == [400] * FAILURES_PER_MINUTE
    limited = statuses[FAILURES_PER_MINUTE:]
    assert all(r.status_code == 429 for r in limited)
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in limited)
    good = {"grant_type": "refresh_token", "refresh_token": hub.session_token("ada")}
    answer = session.post(url, data=good, timeout=30)
    assert answer.status_code == 200 and answer.json()["access_token"]
    # Another address is not limited.
    assert client("127.0.0.4").post(url, data=bad, timeout=30).status_code == 400


def test_loopback_aliases_work_here():
    """The tests above need 127.0.0.x as source addresses (Linux routes all of 127.0.0.0/8 to loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
