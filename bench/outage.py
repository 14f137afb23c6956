"""P8: IdP token calls per user per minute during a 5-minute IdP outage, while 100 users' servers and browsers
keep calling the Hub. Goal: <= 1 (the worst user).

One local stack (IdP with short-lived access tokens, QCS Hub with ``auth_refresh_age=1``, so every browser
request asks the authenticator). All users log in through the IdP form; the first few get a real server, which
pulls its credentials from the Hub on its own (every ``sync_min_interval`` once the token is past due). Then the
IdP process is stopped and a stand-in takes its address (same port, same certificate) answering every request
with 503, as a load balancer with no healthy IdP behind it does; the stand-in counts the token calls and tells
users apart by a one-way fingerprint of the refresh token sent (never kept or shown as such). During the outage:

- browsers: every user's logged-in session calls ``GET /hub/api/user`` every ``period`` seconds;
- servers: besides the real servers' own pulls, each real server's token calls the credential route every
  ``period`` seconds, alternating ``GET`` (a pull) and ``POST`` ("Refresh now", a forced refresh).

Every call must be answered 200 (the Hub keeps the current tokens; it does not log anyone out for an IdP
outage; a browser call on a keep-alive connection the proxy had just closed is sent again once, as browsers do,
and counted); any other answer fails the figure, and so does a user who never tried to refresh (the outage would
not have been exercised). The Hub's own count (``/hub/metrics``, ``..._qcs_idp_refreshes_total``) and its log
lines ("could not refresh the tokens of") are reported beside the stand-in's count.

``--quick`` runs the same at 1/5 of the time: 20 users, a 60 s outage, the Hub's backoff set to 6 s doubling to
60 s (instead of 30 s to 300 s), token lifetime and call periods shortened alike; the figure is then per user per
five-times-shortened minute. Every loop is bounded by the outage's end; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.server
import re
import secrets
import ssl
import statistics
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from qcs_jupyter.handoff import CREDENTIALS_ROUTE

from .common import Figure, Goal, Options, summary
from .stacks import LocalHub, LocalIdP, hub_api_url, login_with_http, qcs_stack, server_token, start_server

GOAL = Goal("<=", 1.0)
_METRIC = re.compile(r'^\w+?_(qcs_idp_refreshes|qcs_handoffs)_total\{outcome="(\w+)"\} ([0-9.eE+]+)$', re.M)
_HUB_FAILED = "could not refresh the tokens of"


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class IdPStandIn:
    """What answers at a stopped IdP's address: 503 to every request, over TLS with the IdP's certificate.

    Counts what arrives: token calls (``POST`` to the token endpoint) with their time and the fingerprint of the
    refresh token, and anything else by method and path.
    """

    def __init__(self, idp: LocalIdP) -> None:
        self.idp = idp
        self.token_path = urlsplit(idp.token_url).path
        self.token_calls: list[tuple[float, str | None]] = []
        self.other_calls: Counter[str] = Counter()
        self.tls_failures = 0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = b'{"error": "temporarily_unavailable"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                path = urlsplit(self.path).path
                with stand_in._lock:
                    if path == stand_in.token_path:
                        refresh = (form.get("refresh_token") or [None])[0]
                        stand_in.token_calls.append((time.time(), _fingerprint(refresh) if refresh else None))
                    else:
                        stand_in.other_calls[f"POST {path}"] += 1
                self._answer()

            def do_GET(self) -> None:
                with stand_in._lock:
                    stand_in.other_calls[f"GET {urlsplit(self.path).path}"] += 1
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> IdPStandIn:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.idp.workdir / "server.pem", self.idp.workdir / "server.key")
        stand_in = self

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                # The TLS handshake in the request's own thread, so a slow client does not hold up accept().
                request.settimeout(10)
                try:
                    request = context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    with stand_in._lock:
                        stand_in.tls_failures += 1
                    return
                super().finish_request(request, client_address)

        deadline = time.monotonic() + 10
        while True:  # the stopped IdP's port may take a moment to be free again
            try:
                self._server = Server((self.idp.host, self.idp.port), self._handler())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="idp-stand-in"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> IdPStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def hub_counts(hub: LocalHub, token: str) -> dict[str, float]:
    """The Hub's IdP refreshes and credential handoffs by outcome (``refreshes_ok``, ``handoffs_ok``, ...), from
    its ``/hub/metrics``."""
    response = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30)
    response.raise_for_status()
    names = {"qcs_idp_refreshes": "refreshes", "qcs_handoffs": "handoffs"}
    return {f"{names[metric]}_{outcome}": float(value) for metric, outcome, value in _METRIC.findall(response.text)}


def backoff_bound(outage_s: float, initial: float, maximum: float) -> int:
    """Most refresh attempts one user can make in ``outage_s`` when the first comes at once and each failure
    waits ``initial`` seconds, doubling up to ``maximum``: what the Hub's backoff allows at most."""
    attempts, at, wait = 0, 0.0, initial
    while at <= outage_s:
        attempts += 1
        at += wait
        wait = min(maximum, wait * 2)
    return attempts


class Callers:
    """The browsers and servers that keep calling during the outage; every answer's status is tallied."""

    def __init__(self, hub: LocalHub, sessions: dict[str, requests.Session], servers: dict[str, str]) -> None:
        self.hub, self.sessions, self.servers = hub, sessions, servers
        self.answers: dict[str, Counter[str]] = {
            "browser": Counter(),
            "server_pull": Counter(),
            "server_force": Counter(),
        }
        self.latency: list[float] = []
        self.first_bad: list[str] = []
        self.retries = 0
        self._lock = threading.Lock()

    def _tally(self, kind: str, name: str, started: float, status: str) -> None:
        with self._lock:
            self.answers[kind][status] += 1
            self.latency.append(time.perf_counter() - started)
            if status != "200" and len(self.first_bad) < 10:
                self.first_bad.append(f"{kind} {name}: {status}")

    def browser(self, name: str) -> None:
        started = time.perf_counter()
        url = f"{self.hub.url}/hub/api/user"
        try:
            try:
                status = str(self.sessions[name].get(url, timeout=30).status_code)
            except requests.ConnectionError:
                # The proxy closes idle keep-alive connections (after 5 s); a browser that sent its request on
                # one just then sends it again on a new connection. Counted, and a second failure counts.
                with self._lock:
                    self.retries += 1
                status = str(self.sessions[name].get(url, timeout=30).status_code)
        except requests.RequestException as e:
            status = f"{type(e).__name__}: {str(e)[:120]}"
        self._tally("browser", name, started, status)

    def server(self, name: str, force: bool) -> None:
        started = time.perf_counter()
        url = f"{hub_api_url(self.hub)}{CREDENTIALS_ROUTE}/{name}"
        headers = {"Authorization": f"token {self.servers[name]}"}
        try:
            with requests.Session() as session:
                session.trust_env = False
                response = session.request("POST" if force else "GET", url, headers=headers, timeout=30)
            status = str(response.status_code)
        except requests.RequestException as e:
            status = f"{type(e).__name__}: {str(e)[:120]}"
        self._tally("server_force" if force else "server_pull", name, started, status)

    def run(self, seconds: float, period: float, threads: int) -> int:
        """Every ``period`` s: each browser calls once, each server once (pull and forced refresh in turn)."""
        end = time.monotonic() + seconds
        rounds = 0
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for i in range(int(seconds / period) + 1):
                started = time.monotonic()
                if started >= end:
                    break
                jobs = [pool.submit(self.browser, name) for name in self.sessions]
                jobs += [pool.submit(self.server, name, i % 2 == 1) for name in self.servers]
                concurrent.futures.wait(jobs, timeout=max(1.0, end - started + 30))
                rounds += 1
                time.sleep(max(0.0, min(period - (time.monotonic() - started), end - time.monotonic())))
        return rounds


def run(opts: Options) -> Figure:
    scale = 5 if opts.quick else 1
    users, servers, threads = (20, 2, 8) if opts.quick else (100, 4, 10)
    outage_s = 300 / scale
    backoff_initial, backoff_max = 30 / scale, 300 / scale
    ttl, period = 60 // scale, 5 / scale
    metrics_token = secrets.token_hex(24)
    extra = f"""
c.QCSAuthenticator.refresh_backoff_initial = {backoff_initial}
c.QCSAuthenticator.refresh_backoff_max = {backoff_max}
c.JupyterHub.services.append({{"name": "bench-metrics", "api_token": {metrics_token!r}}})
c.JupyterHub.load_roles.append({{"name": "bench-metrics", "scopes": ["read:metrics"], "services": ["bench-metrics"]}})
"""
    names = [f"outage-{i:03d}" for i in range(users)]
    sessions: dict[str, requests.Session] = {}
    problems: list[str] = []
    with qcs_stack(opts.workdir, ttl=ttl, auth_refresh_age=1, extra_config=extra) as hub:
        idp = hub.idp

        def login(name: str) -> None:
            sessions[name] = login_with_http(hub, name)

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(login, names, timeout=900))
        for name in names[:servers]:
            start_server(hub, name)
        tokens = {name: server_token(hub, name) for name in names[:servers]}
        owner = {_fingerprint(hub.auth_state(name)["refresh_token"]): name for name in names}
        opts.say(f"P8 {users} users logged in, {servers} servers running; stopping the IdP for {outage_s:.0f} s")
        metrics_before = hub_counts(hub, metrics_token)
        log_offset = len(hub.log_text())
        callers = Callers(hub, sessions, tokens)
        idp.stop()
        with IdPStandIn(idp) as stand_in:
            started = time.time()
            rounds = callers.run(outage_s, period, threads)
            outage_wall = time.time() - started
        metrics_after = hub_counts(hub, metrics_token)
        hub_failed_lines = hub.log_text()[log_offset:].count(_HUB_FAILED)
    minutes = outage_s * scale / 60  # the outage in (scaled) minutes
    per_user = Counter(owner.get(fp, "unknown") if fp else "no refresh token" for _, fp in stand_in.token_calls)
    strangers = per_user.pop("unknown", 0) + per_user.pop("no refresh token", 0)
    counts = [per_user.get(name, 0) for name in names]
    worst = max(counts) / minutes
    hub_delta = {k: metrics_after[k] - metrics_before.get(k, 0) for k in sorted(metrics_after)}
    hub_attempts = {k.removeprefix("refreshes_"): v for k, v in hub_delta.items() if k.startswith("refreshes_")}
    handoffs = {k.removeprefix("handoffs_"): v for k, v in hub_delta.items() if k.startswith("handoffs_")}
    silent = [name for name, n in zip(names, counts, strict=True) if n == 0]
    if silent:
        problems.append(f"{len(silent)} user(s) never tried to refresh during the outage (e.g. {silent[0]})")
    unseen = sum(hub_attempts.values()) - len(stand_in.token_calls)
    if unseen > 0:  # the Hub tried more often than the stand-in saw: the per-user count would flatter
        problems.append(f"the Hub counted {unseen:.0f} more refresh attempts than reached the IdP's address")
    if strangers:
        problems.append(f"{strangers} token call(s) with a refresh token of no known user")
    for kind, answers in callers.answers.items():
        bad = sum(n for status, n in answers.items() if status != "200")
        if bad:
            problems.append(f"{bad} of {sum(answers.values())} {kind} calls were not answered 200")
    if callers.first_bad:
        problems.append(f"first non-200 answers: {callers.first_bad[:3]}")
    opts.say(
        f"P8 {len(stand_in.token_calls)} IdP token calls from {users} users in {outage_s:.0f} s "
        f"(worst user {max(counts)}, Hub's count {sum(hub_attempts.values()):.0f})"
    )
    return Figure(
        id="P8",
        name=f"IdP token calls per user per minute during a 5-minute IdP outage, {users} users (worst user)",
        value=round(worst, 3),
        unit="calls/user/min",
        goal=GOAL,
        problems=problems,
        details={
            "users": users,
            "real_servers": servers,
            "outage_s": round(outage_wall, 1),
            "time_scale": scale,
            "outage_minutes_as_judged": minutes,
            "token_calls_at_idp": len(stand_in.token_calls),
            "token_calls_per_user": summary([float(c) for c in counts]),
            "mean_per_user_per_minute": round(statistics.mean(counts) / minutes, 3),
            "backoff_bound_per_user": backoff_bound(outage_s, backoff_initial, backoff_max),
            "other_calls_at_idp": dict(stand_in.other_calls),
            "tls_failures_at_stand_in": stand_in.tls_failures,
            "hub_metrics_refresh_attempts": hub_attempts,
            "hub_log_failed_refresh_lines": hub_failed_lines,
            "hub_metrics_handoffs": handoffs,
            "calls_to_hub": {kind: dict(answers) for kind, answers in callers.answers.items()},
            "hub_answer_ms": summary(callers.latency, 1000),
            "caller_rounds": rounds,
            "browser_retries_on_closed_keepalive": callers.retries,
            "caller_period_s": period,
            "hub_backoff_s": {"initial": backoff_initial, "max": backoff_max},
            "access_token_ttl_s": ttl,
            "outage": "IdP process stopped; a stand-in on its port and certificate answers 503 to everything",
        },
    )
