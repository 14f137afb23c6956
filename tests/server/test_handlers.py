"""The server extension's REST API, against a real jupyter-server."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient

from qcs_jupyter.credentials import CredentialStore, TokenSet


@pytest.fixture
def server_home(home, jp_environ):
    return home


async def test_status_without_credentials(server_home, jp_fetch):
    response = await jp_fetch("qcs-jupyter", "status")
    assert response.code == 200
    assert response.headers["Cache-Control"] == "no-store"
    status = json.loads(response.body)
    assert status["state"] == "missing" and not status["usable"]
    assert status["hub"]["available"] is False and "JupyterHub" in status["hub"]["reason"]


async def test_status_with_credentials_never_leaks_tokens(server_home, jp_fetch, token_response):
    tokens = token_response()
    CredentialStore().install(TokenSet.from_response(tokens))
    response = await jp_fetch("qcs-jupyter", "status")
    body = response.body.decode()
    status = json.loads(body)
    assert status["state"] == "ok" and status["identity"]["email"] == "ada@example.org"
    for key in ("access_token", "refresh_token", "id_token"):
        assert tokens[key] not in body


async def test_every_route_requires_authentication(
    server_home, jp_serverapp, jp_fetch, http_server_client, jp_base_url
):
    """Like extension-template's check_auth: no route of ours answers a request without credentials."""
    ours = [
        spec for spec in jp_serverapp.web_app.default_router.rules for spec in getattr(spec.target, "rules", [spec])
    ]
    paths = sorted({r.matcher.regex.pattern.rstrip("$") for r in ours if "qcs-jupyter" in r.matcher.regex.pattern})
    assert paths, "the extension registered no routes"
    for path in paths:
        for method, body in (("GET", None), ("POST", b"{}")):
            try:
                response = await http_server_client.fetch(
                    path, method=method, body=body, raise_error=False, follow_redirects=False
                )
                code = response.code
            except tornado.httpclient.HTTPClientError as e:
                code = e.code
            assert code in (302, 401, 403, 405), f"{method} {path} answered {code} without credentials"


async def test_status_follows_file_changes(server_home, jp_fetch, token_response):
    """The server caches parsed files by identity; every change on disk still shows at once."""
    CredentialStore().install(TokenSet.from_response(token_response(exp_in=600)))
    first = json.loads((await jp_fetch("qcs-jupyter", "status")).body)
    again = json.loads((await jp_fetch("qcs-jupyter", "status")).body)
    assert first["access_token"]["expires_at"] == again["access_token"]["expires_at"]
    CredentialStore().install(TokenSet.from_response(token_response(exp_in=7200)))  # atomic replace
    second = json.loads((await jp_fetch("qcs-jupyter", "status")).body)
    assert second["access_token"]["expires_at"] > first["access_token"]["expires_at"]
    secrets = server_home / ".qcs" / "secrets.toml"
    with secrets.open("a") as fh:  # edited in place, same inode
        fh.write("[broken\n")
    third = json.loads((await jp_fetch("qcs-jupyter", "status")).body)
    assert third["state"] == "error" and any(p["code"] == "file_corrupt" for p in third["problems"])


async def test_posts_need_credentials_even_with_a_matching_xsrf_pair(server_home, jp_serverapp, http_server_client):
    """XSRF alone must not get through: a missing @authenticated would show here (the XSRF check answers first
    for requests without a matching pair)."""
    for action in ("refresh", "restart"):
        response = await http_server_client.fetch(
            f"/qcs-jupyter/{action}",
            method="POST",
            body=b"",
            headers={"Cookie": "_xsrf=abc", "X-XSRFToken": "abc"},
            raise_error=False,
            follow_redirects=False,
        )
        assert response.code in (401, 403), (action, response.code)


async def test_status_is_not_user_activity(server_home, jp_serverapp, jp_fetch):
    """An open panel polls the status; that must not keep an idle server from being culled."""
    settings = jp_serverapp.web_app.settings
    await jp_fetch("api", "contents")  # control: an ordinary API call is activity
    after_control = settings.get("api_last_activity")
    assert after_control is not None
    for _ in range(3):
        await jp_fetch("qcs-jupyter", "status")
    assert settings.get("api_last_activity") == after_control
