"""P8: IdP token calls per user per minute during a 5-minute IdP outage, while 100 users' servers and browsers
keep calling the Hub. Goal: <= 1 (the worst user), every call answered 200 in time.

Two outages, each on a fresh local stack (IdP with short-lived access tokens, QCS Hub with ``auth_refresh_age=1``,
so every browser request asks the authenticator): an IdP that answers every request at once with 503 (``503``),
as a load balancer with no healthy IdP behind it does, and an IdP that accepts connections, reads the request
and never answers (``hang``), as a wedged one does, which costs the Hub its whole ``refresh_timeout`` on every
attempt. The figure is the worse of the two. All users log in through the IdP form; the first few get a real
server, which pulls its credentials from the Hub on its own (every ``sync_min_interval`` once the token is past
due). Then the IdP process is stopped and a stand-in takes its address (same port, same certificate); it counts
the token calls and tells users apart by a one-way fingerprint of the refresh token sent (never kept or shown as
such). During the outage:

- browsers: every user's logged-in session calls ``GET /hub/api/user`` every ``period`` seconds;
- servers: besides the real servers' own pulls, each real server's token calls the credential route every
  ``period`` seconds, alternating ``GET`` (a pull) and ``POST`` ("Refresh now", a forced refresh).

Every call must be answered 200 (the Hub keeps the current tokens; it does not log anyone out for an IdP
outage; a browser call on a keep-alive connection the proxy had just closed is sent again once, as browsers do,
and counted), and in time: within ``ANSWER_WITHIN_S``, the longest the Hub waits for the IdP
(``QCSAuthenticator.refresh_timeout``) plus 2 s, and a server's call also within what the server waits for a Hub
call before it gives up (``QCSHubClient.timeout``). Any other answer, or a later one, fails the figure, and so does
a user who never tried to refresh (the outage would not have been exercised). Every browser and server calls from a
thread of its own, so a slow answer holds up no other caller.

A user's count is the larger of the token calls that reached the stand-in with their refresh token and the Hub's
log lines for them ("could not refresh the tokens of <user>"): with an IdP that holds connections, an attempt can
fail inside the Hub, waiting in its HTTP client's queue, before it is ever sent (``attempts_never_reaching_the_idp``).
The Hub's own total (``/hub/metrics``, ``..._qcs_idp_refreshes_total``) must not exceed the per-user counts' sum.

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
from qcs_jupyter.hub.authenticator import QCSAuthenticator
from qcs_jupyter.server.hub_client import QCSHubClient

from .common import Figure, Goal, Options, summary
from .stacks import LocalHub, LocalIdP, hub_api_url, login_with_http, qcs_stack, server_token, start_server

GOAL = Goal("<=", 1.0)
#: The outages measured: an IdP answering 503 at once, and one that takes connections and never answers.
KINDS = ("503", "hang")
#: Every call to the Hub must be answered within this: the longest the Hub waits for the IdP, and a little.
ANSWER_WITHIN_S = QCSAuthenticator.refresh_timeout.default_value + 2.0
#: ... and a server's call within what a server waits for the Hub before it gives up.
SERVER_GIVES_UP_S = QCSHubClient.timeout.default_value


def _late_after(kind: str) -> float:
    return min(ANSWER_WITHIN_S, SERVER_GIVES_UP_S) if kind.startswith("server") else ANSWER_WITHIN_S


_METRIC = re.compile(r'^\w+?_(qcs_idp_refreshes|qcs_handoffs)_total\{outcome="(\w+)"\} ([0-9.eE+]+)$', re.M)
_HUB_FAILED = re.compile(r"could not refresh the tokens of (\S+): ")


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class IdPStandIn:
    """What answers at a stopped IdP's address, over TLS with the IdP's certificate: 503 to every request, or
    (``hang``) nothing at all: the request is read and the connection held open, unanswered, until ``stop``.

    Counts what arrives: token calls (``POST`` to the token endpoint) with their time and the fingerprint of the
    refresh token, and anything else by method and path.
    """

    def __init__(self, idp: LocalIdP, *, hang: bool = False) -> None:
        self.idp = idp
        self.hang = hang
        self._released = threading.Event()
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
                if stand_in.hang:  # never answer: hold the connection until the outage ends
                    stand_in._released.wait()
                    self.close_connection = True
                    return
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
        self._released.set()
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
    """The browsers and servers that keep calling during the outage; every answer's status and time is tallied."""

    def __init__(self, hub: LocalHub, sessions: dict[str, requests.Session], servers: dict[str, str]) -> None:
        self.hub, self.sessions, self.servers = hub, sessions, servers
        self.answers: dict[str, Counter[str]] = {
            "browser": Counter(),
            "server_pull": Counter(),
            "server_force": Counter(),
        }
        self.latency: dict[str, list[float]] = {kind: [] for kind in self.answers}
        self.first_bad: list[str] = []
        self.first_late: list[str] = []
        self.retries = 0
        self._lock = threading.Lock()

    def _tally(self, kind: str, name: str, started: float, status: str) -> None:
        took = time.perf_counter() - started
        with self._lock:
            self.answers[kind][status] += 1
            self.latency[kind].append(took)
            if status != "200" and len(self.first_bad) < 10:
                self.first_bad.append(f"{kind} {name}: {status}")
            if took > _late_after(kind) and len(self.first_late) < 10:
                self.first_late.append(f"{kind} {name}: {took:.1f} s")

    def late(self) -> dict[str, int]:
        return {kind: sum(t > _late_after(kind) for t in times) for kind, times in self.latency.items()}

    def browser(self, name: str) -> None:
        started = time.perf_counter()
        url = f"{self.hub.url}/hub/api/user"
        try:
            try:
                status = str(self.sessions[name].get(url, timeout=60).status_code)
            except requests.ConnectionError:
                # The proxy closes idle keep-alive connections (after 5 s); a browser that sent its request on
                # one just then sends it again on a new connection. Counted, and a second failure counts.
                with self._lock:
                    self.retries += 1
                status = str(self.sessions[name].get(url, timeout=60).status_code)
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
                response = session.request("POST" if force else "GET", url, headers=headers, timeout=60)
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
                concurrent.futures.wait(jobs, timeout=max(1.0, end - started + 60))
                rounds += 1
                time.sleep(max(0.0, min(period - (time.monotonic() - started), end - time.monotonic())))
        return rounds


def outage(opts: Options, kind: str) -> dict[str, Any]:
    """One outage of ``kind`` (``503`` or ``hang``) on a fresh stack; its counts, answers and problems."""
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
    with qcs_stack(opts.workdir / kind, ttl=ttl, auth_refresh_age=1, extra_config=extra) as hub:
        idp = hub.idp

        def login(name: str) -> None:
            sessions[name] = login_with_http(hub, name)

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(login, names, timeout=900))
        for name in names[:servers]:
            start_server(hub, name)
        tokens = {name: server_token(hub, name) for name in names[:servers]}
        owner = {_fingerprint(hub.auth_state(name)["refresh_token"]): name for name in names}
        opts.say(f"P8 {kind}: {users} users logged in, {servers} servers running; the IdP is out for {outage_s:.0f} s")
        metrics_before = hub_counts(hub, metrics_token)
        log_offset = len(hub.log_text())
        callers = Callers(hub, sessions, tokens)
        idp.stop()
        with IdPStandIn(idp, hang=kind == "hang") as stand_in:
            started = time.time()
            rounds = callers.run(outage_s, period, users + servers)
            outage_wall = time.time() - started
        metrics_after = hub_counts(hub, metrics_token)
        hub_failed = Counter(_HUB_FAILED.findall(hub.log_text()[log_offset:]))
    minutes = outage_s * scale / 60  # the outage in (scaled) minutes
    per_user = Counter(owner.get(fp, "unknown") if fp else "no refresh token" for _, fp in stand_in.token_calls)
    strangers = per_user.pop("unknown", 0) + per_user.pop("no refresh token", 0)
    # Per user, the more of what reached the IdP's address and what the Hub logged as a failed attempt: an attempt
    # can fail before it is sent (waiting in the Hub's HTTP client queue behind ones the IdP holds).
    counts = [max(per_user.get(name, 0), hub_failed.get(name, 0)) for name in names]
    worst = max(counts) / minutes
    hub_delta = {k: metrics_after[k] - metrics_before.get(k, 0) for k in sorted(metrics_after)}
    hub_attempts = {k.removeprefix("refreshes_"): v for k, v in hub_delta.items() if k.startswith("refreshes_")}
    handoffs = {k.removeprefix("handoffs_"): v for k, v in hub_delta.items() if k.startswith("handoffs_")}
    silent = [name for name, n in zip(names, counts, strict=True) if n == 0]
    if silent:
        problems.append(f"{len(silent)} user(s) never tried to refresh during the outage (e.g. {silent[0]})")
    unseen = sum(hub_attempts.values()) - sum(counts)
    if unseen > 0:  # the Hub tried more often than the per-user counts say: they would flatter
        problems.append(f"the Hub counted {unseen:.0f} more refresh attempts than the per-user counts hold")
    if strangers:
        problems.append(f"{strangers} token call(s) with a refresh token of no known user")
    for caller, answers in callers.answers.items():
        bad = sum(n for status, n in answers.items() if status != "200")
        if bad:
            problems.append(f"{bad} of {sum(answers.values())} {caller} calls were not answered 200")
    if callers.first_bad:
        problems.append(f"first non-200 answers: {callers.first_bad[:3]}")
    late = callers.late()
    for caller, n in late.items():
        if n:
            problems.append(
                f"{n} of {len(callers.latency[caller])} {caller} calls took longer than {_late_after(caller):g} s"
            )
    if callers.first_late:
        problems.append(f"first late answers: {callers.first_late[:3]}")
    opts.say(
        f"P8 {kind}: {len(stand_in.token_calls)} IdP token calls from {users} users in {outage_s:.0f} s "
        f"(worst user {max(counts)}, Hub's count {sum(hub_attempts.values()):.0f}); "
        f"slowest answer {max((max(v) for v in callers.latency.values() if v), default=0):.1f} s"
    )
    return {
        "worst_per_user_per_minute": round(worst, 3),
        "problems": [f"{kind}: {p}" for p in problems],
        "details": {
            "outage": {
                "503": "IdP process stopped; a stand-in on its port and certificate answers 503 to everything",
                "hang": "IdP process stopped; a stand-in on its port and certificate accepts, reads the request and "
                "never answers (the connection held open until the outage ends)",
            }[kind],
            "users": users,
            "real_servers": servers,
            "outage_s": round(outage_wall, 1),
            "time_scale": scale,
            "outage_minutes_as_judged": minutes,
            "worst_per_user_per_minute": round(worst, 3),
            "token_calls_at_idp": len(stand_in.token_calls),
            "token_calls_per_user": summary([float(c) for c in counts]),
            "token_calls_per_user_at_idp": summary([float(per_user.get(name, 0)) for name in names]),
            "hub_failed_attempts_per_user": summary([float(hub_failed.get(name, 0)) for name in names]),
            "attempts_never_reaching_the_idp": sum(hub_failed.values()) - sum(per_user.values()),
            "mean_per_user_per_minute": round(statistics.mean(counts) / minutes, 3),
            "backoff_bound_per_user": backoff_bound(outage_s, backoff_initial, backoff_max),
            "other_calls_at_idp": dict(stand_in.other_calls),
            "tls_failures_at_stand_in": stand_in.tls_failures,
            "hub_metrics_refresh_attempts": hub_attempts,
            "hub_log_failed_refresh_lines": sum(hub_failed.values()),
            "hub_metrics_handoffs": handoffs,
            "calls_to_hub": {caller: dict(answers) for caller, answers in callers.answers.items()},
            "hub_answer_ms": {caller: summary(times, 1000) for caller, times in callers.latency.items()},
            "late_after_s": {kind: _late_after(kind) for kind in callers.latency},
            "late_answers": late,
            "caller_rounds": rounds,
            "browser_retries_on_closed_keepalive": callers.retries,
            "caller_period_s": period,
            "hub_backoff_s": {"initial": backoff_initial, "max": backoff_max},
            "access_token_ttl_s": ttl,
        },
    }


def run(opts: Options) -> Figure:
    results = {kind: outage(opts, kind) for kind in KINDS}
    worst = max(r["worst_per_user_per_minute"] for r in results.values())
    users = results[KINDS[0]]["details"]["users"]
    return Figure(
        id="P8",
        name=f"IdP token calls per user per minute during a 5-minute IdP outage (503, hang), {users} users (worst)",
        value=worst,
        unit="calls/user/min",
        goal=GOAL,
        problems=[p for r in results.values() for p in r["problems"]],
        details={
            **{kind: r["details"] for kind, r in results.items()},
            "judged": "the worse of the two outages; every browser and server call answered 200 within "
            f"{ANSWER_WITHIN_S:g} s (the Hub's refresh_timeout + 2 s), a server's also within its own "
            f"{SERVER_GIVES_UP_S:g} s",
        },
    )
