"""Run the local Okta-shaped OpenID Connect provider (``devstack/idp/idp.mjs``) from Python.

Used by the README demo and the end-to-end tests. Standard library only, plus ``cryptography`` (the IdP's
signing key) and ``trustme`` when ``https=True`` (a throwaway CA and a server certificate for 127.0.0.1).

Example::

    from devstack.localidp import LocalIdP

    with LocalIdP(tmp_path, https=True, access_token_ttl=20,
                  clients=[{"client_id": "qcs-public",
                            "redirect_uris": ["http://127.0.0.1:8000/hub/oauth_callback"]}]) as idp:
        os.environ["SSL_CERT_FILE"] = str(idp.ca_path)
        print(idp.issuer)            # https://127.0.0.1:PORT/oauth2/default
        print(idp.stats())           # {"token_requests": {...}, "refresh_ok": 0, ...}

Any login name with any password signs in at the IdP's login form; consent is granted
automatically. Claims: ``sub`` = ``preferred_username`` = the login name,
``email`` = ``<login>@example.org``, ``name`` = the login name title-cased.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qcs_jupyter.qcs import QCS_AUDIENCE  # pyQuil 4's credential core refuses a token without it

from .process import LoggedProcess

IDP_DIR = Path(__file__).resolve().parent / "idp"

__all__ = ["IDP_DIR", "QCS_AUDIENCE", "LocalIdP", "LocalIdPError", "ensure_node_modules", "free_port"]


class LocalIdPError(RuntimeError):
    """The IdP could not be installed or started."""


@contextlib.contextmanager
def _install_lock():
    """Serialize ``npm ci`` between processes (e.g. pytest-xdist workers)."""
    lock_path = Path(tempfile.gettempdir()) / "qcs-jupyter-demo-idp-npm.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_node_modules(idp_dir: Path = IDP_DIR, timeout: float = 300, package: str = "oidc-provider") -> None:
    """Run ``npm ci`` in ``idp_dir`` (default ``devstack/idp``) once, if ``package`` is not installed there."""
    marker = idp_dir / "node_modules" / package / "package.json"
    if marker.exists():
        return
    with _install_lock():
        if marker.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise LocalIdPError("npm was not found on PATH; Node.js >= 20 with npm is needed for the local IdP")
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=idp_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0 or not marker.exists():
            raise LocalIdPError(f"npm ci failed in {idp_dir}:\n{proc.stdout[-4000:]}")


def signing_jwk() -> dict[str, str]:
    """A fresh RSA signing key as a private JWK, for one IdP. Made here rather than by Node, whose RSA key generation
    took 0.5 s (median) to 2.3 s per IdP start on an idle 2-core machine, and the tests start many IdPs."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.private_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    public = numbers.public_numbers
    return {
        "kty": "RSA",
        "n": b64(public.n),
        "e": b64(public.e),
        "d": b64(numbers.d),
        "p": b64(numbers.p),
        "q": b64(numbers.q),
        "dp": b64(numbers.dmp1),
        "dq": b64(numbers.dmq1),
        "qi": b64(numbers.iqmp),
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalIdP(LoggedProcess):
    """A local OpenID Connect provider shaped like an Okta authorization server.

    Parameters
    ----------
    workdir:
        Directory for ``config.json``, ``idp.log`` and (with https) ``ca.pem``, ``server.pem``,
        ``server.key``. Created if missing.
    https:
        Serve https with a throwaway CA (needs ``trustme``); point ``SSL_CERT_FILE`` at
        :attr:`ca_path`. qcs-api-client-common >= 0.27 only refreshes against an https issuer.
    issuer_path:
        Path part of the issuer, e.g. ``/oauth2/default`` (Okta's default authorization server).
    access_token_ttl, refresh_token_ttl, id_token_ttl:
        Lifetimes in seconds. Access tokens are RS256 JWTs with ``exp``; expiry has no clock
        tolerance.
    audience:
        ``aud`` of the access tokens; QCS's (``api://qcs``) by default, which pyQuil 4's credential core
        requires.
    rotate_refresh_tokens:
        Issue a new refresh token on every refresh. Reusing a rotated-out refresh token then
        fails with ``invalid_grant`` and revokes the whole grant (oidc-provider behaviour).
    clients:
        ``[{"client_id": ..., "client_secret": ... (omit for a public client, which then uses
        PKCE and token_endpoint_auth_method "none"), "redirect_uris": [...]}]``. Confidential
        clients authenticate with ``client_secret_post`` unless ``"token_endpoint_auth_method":
        "client_secret_basic"`` is given.
    """

    def __init__(
        self,
        workdir: os.PathLike | str,
        https: bool = True,
        issuer_path: str = "/oauth2/default",
        access_token_ttl: int = 3600,
        refresh_token_ttl: int = 30 * 24 * 3600,
        rotate_refresh_tokens: bool = False,
        clients: Iterable[dict[str, Any]] | None = None,
        *,
        audience: str = QCS_AUDIENCE,
        id_token_ttl: int = 3600,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 120.0,  # a hang, not a slow start: 30 s was passed on a loaded 2-core machine
        node: str = "node",
    ) -> None:
        self.workdir = Path(workdir)
        self.https = https
        self.issuer_path = "/" + issuer_path.strip("/") if issuer_path.strip("/") else ""
        self.access_token_ttl = int(access_token_ttl)
        self.refresh_token_ttl = int(refresh_token_ttl)
        self.id_token_ttl = int(id_token_ttl)
        self.rotate_refresh_tokens = bool(rotate_refresh_tokens)
        self.audience = audience
        self.clients = [dict(c) for c in (clients or [])]
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self.node = node
        self.config_path = self.workdir / "config.json"
        super().__init__(self.workdir / "idp.log")
        self.ca_path: Path | None = None
        self._ca: Any = None  # the trustme CA, kept to issue more certificates (e.g. the Hub's)

    # -- addresses --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        """The issuer, exactly as in the discovery document (no trailing slash)."""
        return self.base_url + self.issuer_path

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorize_url(self) -> str:
        return f"{self.issuer}/v1/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/v1/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.issuer}/v1/userinfo"

    @property
    def logout_url(self) -> str:
        return f"{self.issuer}/v1/logout"

    def ca_env(self) -> dict[str, str]:
        """Environment variables that make OpenSSL, Rust (the QCS SDK), ``requests`` and curl
        trust this IdP. ``requests`` prefers ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` from the
        environment over ``Session.verify``, so set them all."""
        if self.ca_path is None:
            return {}
        ca = str(self.ca_path)
        return {"SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, "CURL_CA_BUNDLE": ca}

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ca_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_path))

    # -- lifecycle ----------------------------------------------------------------------------
    def _write_tls(self) -> dict[str, str]:
        try:
            import trustme
        except ImportError as e:  # pragma: no cover
            raise LocalIdPError("https=True needs the 'trustme' package") from e
        ca = self._ca = trustme.CA(organization_name="qcs-jupyter demo IdP CA")
        leaf = ca.issue_cert(self.host, "localhost")
        self.ca_path = self.workdir / "ca.pem"
        cert_path = self.workdir / "server.pem"
        key_path = self.workdir / "server.key"
        ca.cert_pem.write_to_path(str(self.ca_path))
        cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key_path))
        return {"cert": str(cert_path), "key": str(key_path)}

    def issue_cert(self, directory: Path, name: str, *hosts: str) -> tuple[Path, Path]:
        """A certificate for ``hosts`` (default 127.0.0.1 and localhost) from this IdP's throwaway CA, so
        whatever trusts the IdP (``ca_env()``) trusts it too; written as ``name.pem`` and ``name.key``."""
        if self._ca is None:
            raise LocalIdPError("issue_cert needs an https IdP that has been started")
        leaf = self._ca.issue_cert(*(hosts or (self.host, "localhost")))
        cert_path, key_path = Path(directory) / f"{name}.pem", Path(directory) / f"{name}.key"
        cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key_path))
        return cert_path, key_path

    def config(self) -> dict[str, Any]:
        return {
            "jwks": {"keys": [signing_jwk()]},
            "host": self.host,
            "port": self.port,
            "issuer": self.issuer,
            "access_token_ttl": self.access_token_ttl,
            "refresh_token_ttl": self.refresh_token_ttl,
            "id_token_ttl": self.id_token_ttl,
            "rotate_refresh_tokens": self.rotate_refresh_tokens,
            "audience": self.audience,
            "clients": self.clients,
        }

    def start(self) -> LocalIdP:
        if self._proc is not None:
            raise LocalIdPError("already started")
        ensure_node_modules()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        if self.https:
            cfg["tls"] = self._write_tls()
        self.config_path.write_text(json.dumps(cfg, indent=2))
        self._spawn([self.node, "idp.mjs", str(self.config_path)], cwd=IDP_DIR)
        deadline = time.monotonic() + self.startup_timeout
        ready = f"READY {self.issuer}"
        while True:
            if ready in self.log_path.read_text(errors="replace"):
                return self
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self.stop()
                raise LocalIdPError(f"the IdP exited with code {rc} before READY:\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                log = self.log_text()
                self.stop()
                raise LocalIdPError(f"the IdP did not print READY within {self.startup_timeout}s:\n{log[-4000:]}")
            time.sleep(0.05)

    # -- test helpers -------------------------------------------------------------------------
    def _request(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.base_url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """Counts: ``token_requests`` / ``token_ok`` / ``token_failed`` by grant_type,
        ``refresh_ok``, ``refresh_failed``, ``userinfo_ok``, ``userinfo_failed``; and per account (login name)
        under ``by_account`` (see :meth:`account_stats`)."""
        return self._request("GET", "/__stats")

    def account_stats(self, login: str) -> dict[str, Any]:
        """One account's token requests since the last reset: ``token_requests`` by grant_type, ``refresh_ok``,
        ``refresh_failed``. Counts of other users (whose servers refresh meanwhile) are not in it."""
        empty = {"token_requests": {}, "refresh_ok": 0, "refresh_failed": 0}
        return self.stats()["by_account"].get(login, empty)

    def reset_stats(self) -> dict[str, Any]:
        return self._request("POST", "/__reset_stats")

    def login(
        self, client_id: str, redirect_uri: str, username: str, client_secret: str | None = None
    ) -> dict[str, Any]:
        """Log ``username`` in through the login form (authorization code + PKCE, ``offline_access``) as the
        client would, without a browser, and return the token response. ``redirect_uri`` must be registered
        for the client; nothing needs to listen there (the redirect carrying the code is not followed)."""
        import base64
        import hashlib
        import re
        import secrets
        from html import unescape
        from urllib.parse import parse_qs, urljoin, urlsplit

        import requests

        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        with requests.Session() as session:
            session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override verify
            session.verify = str(self.ca_path) if self.ca_path else True
            response = session.get(
                self.authorize_url,
                params={
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": redirect_uri,
                    "scope": "openid offline_access profile email",
                    "state": state,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
                timeout=30,
            )
            form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            if not form or 'name="login"' not in response.text:
                raise LocalIdPError(f"no login form at {response.url} (HTTP {response.status_code})")
            fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', response.text))
            fields.update({"login": username, "password": "any"})
            response = session.post(
                urljoin(response.url, unescape(form.group(1))), data=fields, allow_redirects=False, timeout=30
            )
            for _ in range(10):  # the IdP's own redirects (login, consent) until the one to the client
                location = response.headers.get("location")
                if not location:
                    raise LocalIdPError(f"the login ended at {response.url} (HTTP {response.status_code})")
                location = urljoin(response.url, location)
                if location.startswith(redirect_uri):
                    break
                response = session.get(location, allow_redirects=False, timeout=30)
            else:
                raise LocalIdPError("the login did not redirect back to the client")
            query = parse_qs(urlsplit(location).query)
            if query.get("state") != [state] or "code" not in query:
                raise LocalIdPError(f"the IdP redirected back without a code: {query.get('error')}")
            data = {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "code_verifier": verifier,
            }
            if client_secret:
                data["client_secret"] = client_secret
            response = session.post(self.token_url, data=data, timeout=30)
            if response.status_code != 200:
                raise LocalIdPError(f"the token endpoint answered HTTP {response.status_code}")
            return response.json()
