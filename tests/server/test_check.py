"""``POST qcs-jupyter/check`` ("Check with QCS") against a real jupyter-server and the stand-in QCS API.

The stand-in (``devstack.qcsapi.QCSAPI`` without an IdP) accepts an unexpired JWT, and is told per test to answer
as QCS does when things go wrong: 401, 403, 503, a redirect, or nothing at all (stopped).
"""

from __future__ import annotations

import json
import time

import pytest
import tornado.httpclient

from devstack.localidp import free_port
from devstack.qcsapi import QCSAPI, fingerprint
from qcs_jupyter.credentials import CredentialStore, TokenSet
from qcs_jupyter.credentials.apicheck import PAGE_SIZE, check_with_qcs
from qcs_jupyter.server import keeper


@pytest.fixture
def api():
    with QCSAPI(None, processors=("Ankaa-9Q-3", "Ankaa-3")) as api:
        yield api


@pytest.fixture
def server_home(home, jp_environ):
    return home


def install(token_response, api_url: str, **kwargs) -> dict:
    tokens = token_response(**kwargs)
    CredentialStore().install(TokenSet.from_response(tokens), api_url=api_url)
    return tokens


async def check(jp_fetch) -> tuple[int, dict, str]:
    try:
        response = await jp_fetch("qcs-jupyter", "check", method="POST", body=b"")
    except tornado.httpclient.HTTPClientError as e:
        response = e.response
    body = response.body.decode()
    return response.code, json.loads(body), body


def unchanged(api):
    """The stand-in as it starts: two processors, tokens judged by their claims."""


def arrange_many(api):
    api.processors = tuple(f"QPU-{i}" for i in range(PAGE_SIZE + 5))


def arrange_none(api):
    api.processors = ()


@pytest.mark.parametrize(
    ("arrange", "outcome", "http_status", "processors", "words"),
    [
        pytest.param(unchanged, "accepted", 200, 2, "you can see 2 quantum processors", id="accepted"),
        pytest.param(arrange_many, "accepted", 200, PAGE_SIZE, f"at least {PAGE_SIZE} quantum processors", id="more"),
        pytest.param(arrange_none, "accepted", 200, 0, "lists no quantum processors", id="none-listed"),
        pytest.param(lambda api: api.answer_with(401), "refused", 401, None, "refused the access token", id="401"),
        pytest.param(lambda api: api.answer_with(403), "forbidden", 403, None, "lacks access", id="403"),
        pytest.param(lambda api: api.answer_with(503), "error", 503, None, "HTTP 503", id="503"),
        pytest.param(lambda api: api.answer_with(302), "error", 302, None, "not followed", id="redirect"),
        pytest.param(lambda api: api.stop(), "unreachable", None, None, "could not be reached", id="unreachable"),
    ],
)
async def test_each_answer_of_qcs_in_plain_words(
    server_home, jp_fetch, api, token_response, arrange, outcome, http_status, processors, words
):
    tokens = install(token_response, api.url)
    arrange(api)
    code, result, body = await check(jp_fetch)
    assert code == 200
    assert result["outcome"] == outcome and result["http_status"] == http_status
    assert result["processors"] == processors and words in result["message"]
    assert result["api_url"] == api.url and result["profile"] == "default"
    assert result["more_processors"] is (outcome == "accepted" and processors == PAGE_SIZE)
    assert (result["action"] is None) is (outcome == "accepted")
    for key in ("access_token", "refresh_token", "id_token"):
        assert tokens[key] not in body
    if outcome != "unreachable":
        # What a QCS client asks first, with the file's access token: one page of the processors.
        (call,) = api.calls
        assert (call.method, call.path, call.query) == ("GET", "/v1/quantumProcessors", f"pageSize={PAGE_SIZE}")
        assert call.token_fp == fingerprint(tokens["access_token"])


async def test_a_revoked_token_is_refused_with_log_in_again(server_home, jp_fetch, api, token_response):
    tokens = install(token_response, api.url)
    api.revoke(tokens["access_token"])
    code, result, _ = await check(jp_fetch)
    assert code == 200 and result["outcome"] == "refused" and result["http_status"] == 401
    assert "qcs-jupyter install" in result["action"]  # no Hub here: a new token from the QCS tokens page


@pytest.mark.parametrize(
    ("arrange", "words"),
    [
        pytest.param(lambda tr, jwt, url: install(tr, url, access_token=jwt(-60)), "has expired", id="expired"),
        pytest.param(lambda tr, jwt, url: None, "no usable access token", id="no-credentials"),
    ],
)
async def test_not_asked_without_a_token_qcs_could_accept(
    server_home, jp_fetch, api, token_response, make_jwt, arrange, words
):
    arrange(token_response, make_jwt, api.url)
    code, result, _ = await check(jp_fetch)
    assert code == 200 and result["outcome"] == "not_checked" and words in result["message"]
    assert result["http_status"] is None and result["elapsed_ms"] is None
    assert api.calls == []  # QCS was not asked


async def test_at_most_once_per_few_seconds(server_home, jp_fetch, api, token_response, monkeypatch):
    install(token_response, api.url)
    code, first, _ = await check(jp_fetch)
    assert code == 200 and first["outcome"] == "accepted"
    code, again, _ = await check(jp_fetch)  # at once: refused, with when to come back
    assert code == 429 and "try again in" in again["message"] and 0 < again["retry_after"] <= 5
    assert len(api.calls) == 1
    monkeypatch.setattr(keeper, "CHECK_MIN_INTERVAL_SECONDS", 0.2)
    time.sleep(0.25)
    code, third, _ = await check(jp_fetch)
    assert code == 200 and third["outcome"] == "accepted" and len(api.calls) == 2


async def test_retry_after_header(server_home, jp_fetch, api, token_response):
    install(token_response, api.url)
    await check(jp_fetch)
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("qcs-jupyter", "check", method="POST", body=b"")
    assert info.value.code == 429 and 1 <= int(info.value.response.headers["Retry-After"]) <= 5


async def test_never_asked_by_reading_the_status(server_home, jp_fetch, api, token_response):
    """Never automatic: the panel polls the status, which never reaches QCS."""
    install(token_response, api.url)
    for _ in range(3):
        await jp_fetch("qcs-jupyter", "status")
    assert api.calls == []


async def test_check_needs_credentials_even_with_a_matching_xsrf_pair(server_home, http_server_client):
    response = await http_server_client.fetch(
        "/qcs-jupyter/check",
        method="POST",
        body=b"",
        headers={"Cookie": "_xsrf=abc", "X-XSRFToken": "abc"},
        raise_error=False,
        follow_redirects=False,
    )
    assert response.code in (401, 403)


async def test_get_is_not_a_check(server_home, jp_fetch, api, token_response):
    install(token_response, api.url)
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("qcs-jupyter", "check", method="GET")
    assert info.value.code == 405 and api.calls == []


# --- the function itself (the CLI uses it too) ------------------------------------------------------------------
def test_the_clients_api_url_variable_wins(home, api, token_response, monkeypatch):
    install(token_response, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("QCS_SETTINGS_APPLICATIONS_API_URL", api.url)
    result = check_with_qcs()
    assert result.outcome.value == "accepted" and result.api_url == api.url


@pytest.mark.parametrize("bad", ["ftp://qcs.example", "http://user:pw@127.0.0.1:1", "not a url"])
def test_an_api_url_that_is_no_http_url_is_not_asked(home, token_response, bad):
    install(token_response, bad)
    result = check_with_qcs()
    assert result.outcome.value == "not_checked" and result.api_url is None
    assert "pw" not in result.message


def test_hub_advice_differs(home, api, token_response):
    install(token_response, api.url)
    api.answer_with(401)
    assert "Log in again" in check_with_qcs(hub=True).action
