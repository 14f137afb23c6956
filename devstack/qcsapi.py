"""A stand-in for the QCS REST and gRPC APIs on 127.0.0.1 that checks every bearer token at the local IdP.

The real QCS clients (pyQuil, qcs-sdk-python) call it as they would call ``https://api.qcs.rigetti.com`` and
``https://grpc.qcs.rigetti.com``; point ``api_url`` and ``grpc_api_url`` in ``settings.toml``
(``QCSAuthenticator.qcs_api_url``, ``qcs_grpc_api_url``) at :attr:`QCSAPI.url` and :attr:`QCSAPI.grpc_url`.
REST: the quantum processors and each one's instruction set architecture (what ``list_quantum_computers`` and
``get_qc`` read); gRPC: the translation service's Quil-T calibration program (what a ``get_qc`` quantum computer's
``compiler.get_calibration_program()`` reads). Each request's
``Authorization: Bearer`` token is introspected at the IdP (``{issuer}/v1/introspect``, as the API's own
confidential client): an inactive or expired token gets ``401``, which makes the clients refresh once and retry.
Every call is recorded (:attr:`QCSAPI.calls`) with the token's subject, its expiry and a fingerprint of it, never
the token itself, so tests can see when a held client changed tokens.

Without an IdP (``QCSAPI(None)``) it judges a token by its own claims instead: a JWT whose ``exp`` is still ahead
is accepted, unless :meth:`QCSAPI.revoke` named it. Tests make it answer as QCS does when things go wrong:
:meth:`QCSAPI.answer_with` (``401``, ``403``, ``503`` for every request until reset) and :meth:`QCSAPI.stop` (nothing
listens: unreachable).

Example::

    api = QCSAPI(idp, client_id="qcs-api", client_secret=secret)   # the IdP lists that client with
    with api:                                                        # "resource_server": True
        ...  # clients call api.url + "/v1/quantumProcessors"
        print(api.counts())   # {"accepted": 3, "refused": 1}
        api.answer_with(403)  # from now on: "your account lacks access"
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .localidp import LocalIdP, free_port

__all__ = ["QCSAPI", "ApiCall", "fingerprint"]

LOG = logging.getLogger("devstack.qcsapi")


def fingerprint(token: str) -> str:
    """A short, one-way name for a token: enough to tell tokens apart in tests and logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ApiCall:
    """One request the stand-in API answered."""

    at: float  # epoch seconds when the answer was sent
    method: str
    path: str
    status: int
    reason: str  # "ok", or why the token was refused
    subject: str | None  # the token's ``sub``: as the IdP answered, or as the token claims when refused
    token_fp: str | None  # fingerprint(token)
    token_exp: float | None  # the token's ``exp`` (from the same source as ``subject``)
    query: str = ""  # the query string as sent (e.g. ``pageSize=100``)

    @property
    def accepted(self) -> bool:
        return self.status == 200


#: The gRPC method ``compiler.get_calibration_program()`` calls (through qcs-sdk-python's translation client).
CALIBRATIONS = "/services.translation.Translation/GetQuantumProcessorQuilCalibrationProgram"
CALIBRATION_PROGRAM = "DEFCAL RX(pi/2) 0:\n    NOP\n"


def isa(name: str, qubits: int = 3) -> dict[str, Any]:
    """A small instruction set architecture in the QCS API's shape: ``qubits`` in a line, RX/RZ, ISWAP, MEASURE."""
    ts = "2026-01-01T00:00:00Z"
    edges = [[i, i + 1] for i in range(qubits - 1)]

    def op(name: str, sites: list[list[int]], params: tuple[str, ...] = (), fidelity: str | None = None) -> dict:
        return {
            "name": name,
            "node_count": len(sites[0]),
            "parameters": [{"name": p} for p in params],
            "sites": [
                {
                    "node_ids": site,
                    "characteristics": (
                        [{"name": fidelity, "value": 0.99, "error": 0.001, "node_ids": site, "timestamp": ts}]
                        if fidelity
                        else []
                    ),
                }
                for site in sites
            ],
            "characteristics": [],
        }

    singles = [[i] for i in range(qubits)]
    return {
        "name": name,
        "architecture": {
            "family": "Ankaa",
            "nodes": [{"node_id": i} for i in range(qubits)],
            "edges": [{"node_ids": e} for e in edges],
        },
        "instructions": [
            op("RX", singles, ("theta",)),
            op("RZ", singles, ("theta",)),
            op("ISWAP", edges, fidelity="fISWAP"),
            op("MEASURE", singles, fidelity="fRO"),
        ],
        "benchmarks": [],
    }


def _protobuf_string(field: int, text: str) -> bytes:
    """One length-delimited protobuf field: all a ``QuantumProcessorQuilCalibrationProgram`` answer holds."""
    data = text.encode()
    length, varint = len(data), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([field << 3 | 2]) + bytes(varint) + data


class QCSAPI:
    """The stand-in API: ``GET /v1/quantumProcessors`` (what ``list_quantum_processors`` /
    ``list_quantum_computers`` call) answered only for a token the IdP calls active and unexpired.

    ``client_id``/``client_secret`` authenticate the API at the IdP's introspection endpoint; ``processors``
    are the quantum processor ids it lists (``pageSize`` at a time, with a ``nextPageToken`` while more follow).
    ``idp=None``: no IdP; a token is judged by its own (unverified) claims.
    """

    def __init__(
        self,
        idp: LocalIdP | None,
        client_id: str = "",
        client_secret: str = "",
        *,
        processors: tuple[str, ...] = ("Ankaa-9Q-3", "Ankaa-3"),
        host: str = "127.0.0.1",
        port: int | None = None,
        introspection_timeout: float = 10.0,
    ) -> None:
        self.idp = idp
        self.client_id, self.client_secret = client_id, client_secret
        self.processors = tuple(processors)
        self.host = host
        self.port = port or free_port(host)
        self.grpc_port = free_port(host)  # the gRPC stand-in (see ``grpc_url``)
        self.introspection_timeout = introspection_timeout
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._forced: int | None = None
        self._revoked: set[str] = set()
        self._local = threading.local()  # one keep-alive connection to the IdP per server thread
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._grpc: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def grpc_url(self) -> str:
        """The gRPC stand-in: the ``CALIBRATIONS`` method, with the same token checks (``UNAUTHENTICATED``)."""
        return f"http://{self.host}:{self.grpc_port}"

    # -- what tests read ---------------------------------------------------------------------------
    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def counts(self, subject: str | None = None) -> dict[str, int]:
        """Accepted and refused calls (of one token subject when given)."""
        calls = [c for c in self.calls if subject is None or c.subject == subject]
        accepted = sum(c.accepted for c in calls)
        return {"accepted": accepted, "refused": len(calls) - accepted}

    def reset(self) -> None:
        """Forget the calls, the forced answer and the revoked tokens."""
        with self._lock:
            self._calls.clear()
            self._forced = None
            self._revoked.clear()

    def answer_with(self, status: int | None) -> None:
        """Answer every request with ``status`` (401 refused, 403 no access, 5xx down) whatever its token;
        ``None``: judge tokens again."""
        with self._lock:
            self._forced = status

    def revoke(self, token: str) -> None:
        """Refuse ``token`` from now on (without an IdP; with one, revoke it at the IdP)."""
        with self._lock:
            self._revoked.add(fingerprint(token))

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> QCSAPI:
        if self._server is not None:
            raise RuntimeError("the stand-in QCS API is already running")
        api = self

        class Handler(_Handler):
            owner = api

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="qcs-api", daemon=True)
        self._thread.start()
        self._start_grpc()
        return self

    def _start_grpc(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import grpc  # the QCS clients' own dependency (qcs-api-client-common needs it)

        api = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method

                def unary(request: bytes, context) -> bytes:
                    reason, claims, fp = api.check(dict(context.invocation_metadata()).get("authorization"))
                    subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
                    exp = claims.get("exp") if isinstance(claims.get("exp"), (int, float)) else None
                    if reason == "ok" and method != CALIBRATIONS:
                        reason = "not found"
                    status = {"ok": 200, "not found": 404}.get(reason, 401)
                    api._record(ApiCall(time.time(), "RPC", method, status, reason, subject, fp, exp))
                    if status == 401:
                        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"Unauthorized: {reason}")
                    if status == 404:
                        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served by this stand-in")
                    return _protobuf_string(1, CALIBRATION_PROGRAM)

                return grpc.unary_unary_rpc_method_handler(unary)  # raw bytes in and out: no generated code

        self._grpc = grpc.server(ThreadPoolExecutor(8, thread_name_prefix="qcs-api-grpc"), handlers=[Handler()])
        self._grpc.add_insecure_port(f"{self.host}:{self.grpc_port}")  # h2c: the clients speak it to an http URL
        self._grpc.start()

    def stop(self) -> None:
        grpc_server, self._grpc = self._grpc, None
        if grpc_server is not None:
            grpc_server.stop(grace=1).wait(10)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> QCSAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- token checks ------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            parts = urllib.parse.urlsplit(self.idp.issuer)
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    parts.hostname, parts.port, timeout=self.introspection_timeout, context=self.idp.ssl_context()
                )
            else:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.introspection_timeout)
            self._local.conn = conn
        return conn

    def introspect(self, token: str) -> dict[str, Any]:
        """The IdP's introspection answer for ``token`` (RFC 7662), on a kept-alive connection."""
        path = urllib.parse.urlsplit(self.idp.issuer).path + "/v1/introspect"
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        basic = base64.b64encode(
            f"{urllib.parse.quote(self.client_id)}:{urllib.parse.quote(self.client_secret)}".encode()
        ).decode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"}
        for attempt in (1, 2):  # a kept-alive connection the IdP has closed fails once
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RuntimeError(f"the IdP's introspection endpoint answered HTTP {response.status}")
        return json.loads(data)

    def check(self, authorization: str | None) -> tuple[str, dict[str, Any], str | None]:
        """``(reason, claims, fingerprint)``; reason is "ok" only for a token the IdP calls active and that has
        not expired. ``claims`` is the IdP's answer, or for a refused token what it claims (unverified)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "no bearer token", {}, None
        fp = fingerprint(token)
        with self._lock:
            revoked = fp in self._revoked
        if revoked:
            return "token revoked", _claims(token), fp
        if self.idp is None:
            claims = _claims(token)
            exp = claims.get("exp")
            if not isinstance(exp, (int, float)) or exp <= time.time():
                return "token expired or not a JWT", claims, fp
            return "ok", claims, fp
        try:
            info = self.introspect(token)
        except Exception as e:  # the IdP is down: refuse, as a real API cannot check the token either
            return f"introspection failed ({type(e).__name__})", _claims(token), fp
        if not info.get("active"):
            return "token not active", _claims(token), fp
        exp = info.get("exp")
        if not isinstance(exp, (int, float)) or exp <= time.time():
            return "token expired", info, fp
        return "ok", info, fp

    def _record(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)
        LOG.debug(
            "%s %s -> %s (%s) sub=%s token=%s",
            call.method,
            call.path,
            call.status,
            call.reason,
            call.subject,
            call.token_fp,
        )


def _claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT (to label a refused call), or nothing."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class _Handler(BaseHTTPRequestHandler):
    owner: QCSAPI
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' HTTP stacks expect

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("qcs-api: " + format, *args)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        api = self.owner
        reason, claims, fp = api.check(self.headers.get("Authorization"))
        subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        exp = claims.get("exp") if isinstance(claims.get("exp"), (int, float)) else None
        with api._lock:
            forced = api._forced
        if forced is not None:
            status, reason = forced, f"answered {forced} as told"
            code = {401: "unauthorized", 403: "forbidden"}.get(forced, "unavailable")
            answer = ({"code": code, "message": f"{code} (stand-in)", "requestId": fp or "-"}, None)
        elif reason != "ok":
            status = 401
            answer = (
                {"code": "unauthorized", "message": f"Unauthorized: {reason}", "requestId": fp or "-"},
                {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
            )
        elif path == "/v1/quantumProcessors":
            status = 200
            query = urllib.parse.parse_qs(parts.query)
            try:
                size = max(1, int(query.get("pageSize", ["100"])[0]))
                start = int(query.get("pageToken", ["0"])[0] or 0)
            except ValueError:
                size, start = 100, 0
            page = {"quantumProcessors": [{"id": p} for p in api.processors[start : start + size]]}
            if start + size < len(api.processors):
                # Only while more follow: the clients page on while one is present, even an empty one.
                page["nextPageToken"] = str(start + size)
            answer = (page, None)
        elif (
            path.startswith("/v1/quantumProcessors/")
            and path.endswith("/instructionSetArchitecture")
            and path.split("/")[3] in api.processors
        ):
            status = 200
            answer = (isa(path.split("/")[3]), None)
        else:
            status, reason = 404, "not found"
            answer = ({"code": "not_found", "message": f"{path} is not served by this stand-in"}, None)
        # Recorded before the answer leaves: whoever got the answer finds the call.
        api._record(ApiCall(time.time(), "GET", path, status, reason, subject, fp, exp, parts.query))
        self._send(status, *answer)
