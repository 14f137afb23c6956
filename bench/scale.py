"""P11: a 10,000-user Hub — startup, gauge rebuild, memory, /hub/metrics, the admin page, 1,000 servers pulling.

Method. One SQLite database is made directly with JupyterHub's ORM (no logins): N users (10,000; ``--quick``
1,000), each with an encrypted auth_state as QCSAuthenticator keeps it (an access token valid for an hour, a
refresh token 0 to 99 days old, a server note); M of them (1,000; quick 100) have a running default server as
JupyterHub records one: a server row on the port of a local responder (every request answered 200), an API token
and the server's OAuth client whose secret is that token's hash. Both sides start a real JupyterHub (with
configurable-http-proxy) on their own copy of that database, with a spawner that reports each recorded server as
running, and a stand-in IdP on loopback (discovery, a token endpoint that answers every refresh). One side runs
QCSAuthenticator, the other a plain GenericOAuthenticator. The sides run one after the other, ``ROUNDS`` times
interleaved, and each measure is the median over rounds:

- startup: seconds from starting the process until JupyterHub logs that it has initialized every recorded server
  (it answers ``/hub/health`` earlier, after ``init_spawners_timeout``; that time is reported too) — QCS ÷ plain,
  goal ≤ 1.05;
- the largest event-loop stall while the QCS Hub rebuilds its gauges from every user's auth_state (a probe in the
  Hub process sleeps 5 ms in a loop and records how late it wakes), from ``/hub/health`` answering until the
  rebuild's log line — goal ≤ 50 ms (the plain Hub's largest stall in its first 5 s after that is reported);
- memory (RSS of the Hub process) after startup and after 1,000 server calls — QCS ÷ plain, goal ≤ 1.1 (the QCS
  Hub's calls are forced credential pulls, each refreshing at the IdP; the plain Hub's are ``GET /hub/api/user``
  with the same server tokens, what a plain server calls);
- ``/hub/metrics``: median of 40 scrapes after the rebuild — QCS ÷ plain, goal ≤ 1.2;
- the admin JSON (``/hub/api/qcs/users``, a page of 50: default order, then sorted by last pull at offset N/2,
  then filtered by state) — median ≤ 50 ms. The admin HTML page (goal ≤ 150 ms) is not measured yet: it takes
  only a browser's login cookie, and a token is answered with the login page;
- M servers pulling at once (a pull each, 200 connections) right after the QCS Hub started: every pull
  answered 200; median and p99 reported.

The figure is the number of these goals missed (goal: 0); ``details`` holds every measure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import json
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from devstack.localhub import PROXY_DIR
from devstack.localidp import ensure_node_modules, free_port
from devstack.process import LoggedProcess

from .common import Figure, Goal, Options, percentile

GOAL = Goal("==", 0)
ROUNDS = 2
PAGE_GOAL_MS, STALL_GOAL_MS = 50.0, 50.0
START_GOAL, MEMORY_GOAL, METRICS_GOAL = 1.05, 1.1, 1.2
ADMIN_TOKEN = "bench-admin-token-" + "a" * 32
CLIENT_ID = "qcs-bench"


def _jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking RS256-headed JWT (nobody verifies it here; the Hub reads ``exp``)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{'s' * 43}"


class _Responder(http.server.ThreadingHTTPServer):
    """Answers every request 200: the user servers (JupyterHub checks they are up) and the stand-in IdP."""

    daemon_threads = True

    def __init__(self) -> None:
        self.issuer = ""
        self.refreshes = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Responder

    def log_message(self, *args: Any) -> None:
        return None

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        issuer = self.server.issuer
        if self.path.endswith("/.well-known/openid-configuration"):
            self._json(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/v1/authorize",
                    "token_endpoint": f"{issuer}/v1/token",
                    "userinfo_endpoint": f"{issuer}/v1/userinfo",
                }
            )
        elif self.path.endswith("/v1/userinfo"):
            # The user the bearer token was made for (its payload's "name"), as an IdP's userinfo says.
            token = (self.headers.get("Authorization") or "").split(" ")[-1]
            try:
                payload = token.split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            except (IndexError, ValueError):
                claims = {}
            self._json({"preferred_username": claims.get("name", "")})
        else:
            self._json({})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if self.path.endswith("/v1/token"):
            self.server.refreshes += 1
            user = int((form.get("refresh_token") or ["refresh-0-"])[0].split("-")[1])  # refresh-<i>-...
            access = _jwt({"exp": int(time.time()) + 3600, "aud": "api://qcs", "name": f"user{user:05d}"})
            self._json({"access_token": access, "token_type": "Bearer", "expires_in": 3600})
        else:
            self._json({})


def make_database(path: Path, key: bytes, users: int, running: int, server_port: int) -> dict[str, str]:
    """The shared database; returns the running servers' API tokens by user name."""
    os.environ["JUPYTERHUB_CRYPT_KEY"] = key.hex()
    from jupyterhub import orm
    from jupyterhub.crypto import CryptKeeper, encrypt
    from jupyterhub.utils import hash_token, new_token, utcnow

    CryptKeeper.instance().keys = [key]
    db = orm.new_session_factory(f"sqlite:///{path}")()
    db.add(orm.OAuthClient(identifier="jupyterhub"))
    admin = orm.User(name="admin", admin=True)
    db.add(admin)
    db.commit()
    orm.APIToken.new(token=ADMIN_TOKEN, user=admin, scopes=["inherit"])
    now = time.time()
    tokens: dict[str, str] = {}

    async def states() -> list[bytes]:
        out = []
        for i in range(users):
            access = _jwt({"exp": int(now) + 3600, "aud": "api://qcs", "name": f"user{i:05d}"})
            state = {
                "access_token": access,
                "refresh_token": f"refresh-{i}-" + "r" * 40,
                "id_token": access,
                "scope": ["openid", "offline_access", "profile", "email"],
                "token_response": {"access_token": access, "token_type": "Bearer", "expires_in": 3600},
                "oauth_user": {"preferred_username": f"user{i:05d}", "email": f"user{i:05d}@example.org"},
                "qcs": {
                    "access_token_obtained_at": now,
                    "access_token_expires_at": now + 3600,
                    "refresh_token_obtained_at": now - (i % 100) * 86400,
                    "last_refresh_at": now - i,
                    "last_refresh_outcome": "ok",
                    "servers": {"": {"started_at": now - 600, "last_pull_at": now - i}} if i < running else {},
                    "session_id": "S" * 22 if i < running else None,
                    "logged_out_at": None,
                },
            }
            out.append(await encrypt(state))
        return out

    encrypted = asyncio.run(states())
    for i in range(users):
        user = orm.User(name=f"user{i:05d}", encrypted_auth_state=encrypted[i])
        db.add(user)
        if i < running:
            token = new_token()
            tokens[user.name] = token
            spawner = orm.Spawner(user=user, name="", state={"bench": True})
            spawner.server = orm.Server(ip="127.0.0.1", port=server_port, base_url=f"/user/{user.name}/")
            spawner.started = utcnow(with_tz=False)
            client = orm.OAuthClient(identifier=f"jupyterhub-user-{user.name}", secret=hash_token(token))
            spawner.oauth_client = client
            db.add_all([spawner, client])
        if i % 1000 == 999:
            db.commit()
    db.commit()
    for name, token in tokens.items():
        user = db.query(orm.User).filter_by(name=name).one()
        orm.APIToken.new(token=token, user=user, scopes=["inherit"], note=f"Server at /user/{name}/")
    db.close()
    return tokens


SPAWNER = '''
from jupyterhub.spawner import Spawner

class RunningSpawner(Spawner):
    """A server recorded in the database as running (on the bench's responder): poll says it runs."""
    def load_state(self, state):
        super().load_state(state)
    def get_state(self):
        return {**super().get_state(), "bench": True}
    async def start(self):
        return ("127.0.0.1", SERVER_PORT)
    async def stop(self, now=False):
        return None
    async def poll(self):
        return None if self.server else 0

c.JupyterHub.spawner_class = RunningSpawner
'''

PROBE = """
import asyncio as _asyncio, json as _json, os as _os, time as _time

async def _qcs_bench_lag_probe(path):
    worst, timeline = 0.0, []
    started = _time.time()
    while True:
        before = _time.perf_counter()
        await _asyncio.sleep(0.005)
        late = _time.perf_counter() - before - 0.005
        timeline.append((round(_time.time() - started, 3), round(late * 1000, 2)))
        if len(timeline) % 100 == 0:
            with open(path + ".new", "w") as f:
                _json.dump({"started": started, "timeline": timeline[-20000:]}, f)
            _os.replace(path + ".new", path)  # whole, for the bench reading it

try:
    _asyncio.get_running_loop().create_task(_qcs_bench_lag_probe(LAG_PATH))
except RuntimeError:
    pass
"""


class ScaleHub(LoggedProcess):
    """A JupyterHub on a copy of the bench database, QCS (``qcs``) or plain (``plain``)."""

    stop_timeout = 60.0

    def __init__(self, workdir: Path, side: str, database: Path, key: bytes, idp: _Responder) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / "hub.log")
        self.workdir, self.side, self.key, self.idp = workdir, side, key, idp
        shutil.copyfile(database, workdir / "jupyterhub.sqlite")
        self.port, self.hub_port, self.proxy_port = free_port(), free_port(), free_port()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}/hub"

    def config(self) -> str:
        callback = f"http://127.0.0.1:{self.port}/hub/oauth_callback"
        if self.side == "qcs":
            auth = f"""
c.JupyterHub.authenticator_class = "qcs"
c.QCSAuthenticator.issuer = {self.idp.issuer!r}
c.QCSAuthenticator.allow_insecure_issuer = True
c.QCSAuthenticator.client_id = {CLIENT_ID!r}
c.QCSAuthenticator.oauth_callback_url = {callback!r}
c.QCSAuthenticator.allow_all = True
"""
        else:
            auth = f"""
c.JupyterHub.authenticator_class = "oauthenticator.generic.GenericOAuthenticator"
c.GenericOAuthenticator.client_id = {CLIENT_ID!r}
c.GenericOAuthenticator.authorize_url = {self.idp.issuer + "/v1/authorize"!r}
c.GenericOAuthenticator.token_url = {self.idp.issuer + "/v1/token"!r}
c.GenericOAuthenticator.userdata_url = {self.idp.issuer + "/v1/userinfo"!r}
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.oauth_callback_url = {callback!r}
c.GenericOAuthenticator.allow_all = True
"""
        return f"""
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {self.hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_port}"
c.ConfigurableHTTPProxy.command = [{str(PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy")!r}]
c.JupyterHub.db_url = "sqlite:///" + {str(self.workdir / "jupyterhub.sqlite")!r}
c.JupyterHub.cookie_secret_file = {str(self.workdir / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(self.workdir / "jupyterhub.pid")!r}
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 3600
c.Authenticator.admin_users = {{"admin"}}
SERVER_PORT = {self.idp.port}
LAG_PATH = {str(self.workdir / "lag.json")!r}
{SPAWNER}
{PROBE}
{auth}
"""

    def start(self) -> ScaleHub:
        ensure_node_modules(PROXY_DIR, package="configurable-http-proxy")
        path = self.workdir / "jupyterhub_config.py"
        path.write_text(self.config())
        env = {**os.environ, "JUPYTERHUB_CRYPT_KEY": self.key.hex()}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.started = time.perf_counter()
        self._spawn([sys.executable, "-m", "jupyterhub", "-f", str(path)], cwd=self.workdir, env=env)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited with {self._proc.returncode}:\n{self.log_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as answer,
            ):
                if answer.status == 200:
                    self.health_seconds = time.perf_counter() - self.started
                    self.health_wall = time.time()
                    break
            time.sleep(0.02)
        else:
            raise RuntimeError("JupyterHub did not answer /hub/health within 600 s")
        # JupyterHub answers before it has checked every running server (init_spawners_timeout); ready is when
        # it says it has initialized them all, and every user's server can be served.
        while time.monotonic() < deadline:
            if "Initialized" in self.log_text() and " spawners in " in self.log_text():
                self.ready_seconds = time.perf_counter() - self.started
                self.ready_wall = time.time()
                return self
            time.sleep(0.2)
        raise RuntimeError("JupyterHub did not initialize its spawners within 600 s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def get(self, path: str, token: str = ADMIN_TOKEN, method: str = "GET") -> tuple[int, float, bytes]:
        request = urllib.request.Request(
            f"{self.api_url}{path}", method=method, headers={"Authorization": f"token {token}"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                body = answer.read()
                return answer.status, time.perf_counter() - started, body
        except urllib.error.HTTPError as e:
            return e.code, time.perf_counter() - started, e.read()

    def wait_rebuilt(self, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "rebuilt from their auth_state" in self.log_text():
                return time.time()
            time.sleep(0.1)
        raise RuntimeError("the QCS Hub did not log its gauge rebuild")

    def max_lag_ms(self, start_wall: float, end_wall: float) -> float:
        time.sleep(1.0)  # the probe writes its timeline every 100 samples
        data = json.loads((self.workdir / "lag.json").read_text())
        begin, end = start_wall - data["started"], end_wall - data["started"]
        window = [lag for at, lag in data["timeline"] if begin <= at <= end]
        return max(window) if window else 0.0


async def _pull_all(hub: ScaleHub, tokens: dict[str, str]) -> tuple[list[float], int]:
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

    client = AsyncHTTPClient(force_instance=True, max_clients=200)
    times: list[float] = []
    failures = 0

    async def pull(name: str, token: str) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            answer = await client.fetch(
                HTTPRequest(
                    f"{hub.api_url}/api/qcs/credentials/{name}",
                    headers={"Authorization": f"token {token}"},
                    request_timeout=300,
                    connect_timeout=300,
                )
            )
            if answer.code != 200:
                failures += 1
        except HTTPClientError:
            failures += 1
        times.append(time.perf_counter() - started)

    await asyncio.gather(*(pull(name, token) for name, token in tokens.items()))
    client.close()
    return times, failures


def _median_ms(hub: ScaleHub, path: str, n: int) -> float:
    hub.get(path)  # warm
    times = []
    for _ in range(n):
        status, seconds, _ = hub.get(path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        times.append(seconds)
    return round(statistics.median(times) * 1000, 1)


def one_round(opts: Options, side: str, database: Path, key: bytes, idp: _Responder, tokens: dict[str, str], n: int):
    out: dict[str, Any] = {}
    hub = ScaleHub(opts.workdir / f"{side}-{time.monotonic_ns()}", side, database, key, idp)
    with hub:  # starts it
        out["startup_s"] = round(hub.ready_seconds, 3)
        out["health_s"] = round(hub.health_seconds, 3)
        if side == "qcs":
            rebuilt = hub.wait_rebuilt()
            out["rebuild_s"] = round(rebuilt - hub.health_wall, 2)
            out["rebuild_max_stall_ms"] = hub.max_lag_ms(hub.health_wall, rebuilt)
        else:
            time.sleep(2.0)
            # The same window on the plain Hub: what JupyterHub's own work after startup stalls, for comparison.
            out["max_stall_after_health_ms"] = hub.max_lag_ms(hub.health_wall, hub.health_wall + 5.0)
        out["rss_startup_mb"] = round(hub.rss_mb(), 1)
        if side == "qcs":
            times, failures = asyncio.run(_pull_all(hub, tokens))
            out["pulls"] = {
                "n": len(times),
                "failed": failures,
                "median_ms": round(statistics.median(times) * 1000, 1),
                "p99_ms": round(percentile(times, 99) * 1000, 1),
            }
        out["metrics_ms"] = _median_ms(hub, "/metrics", 40)
        if side == "qcs":
            out["admin_json_ms"] = {
                "default": _median_ms(hub, "/api/qcs/users", 20),
                "sorted_middle": _median_ms(hub, f"/api/qcs/users?sort=last_pull&offset={n // 2}", 20),
                "filtered": _median_ms(hub, "/api/qcs/users?state=warning", 20),
            }
            # The HTML page takes only a browser's login cookie (a token gets the login page), which this bench
            # does not make yet: not measured, and said so, rather than timing the login page.
            out["admin_html_ms"] = None
        calls = list(tokens.items())[:1000]
        failures = 0
        for name, token in calls:
            if side == "qcs":
                status, _, _ = hub.get(f"/api/qcs/credentials/{name}", token=token, method="POST")
            else:
                status, _, _ = hub.get("/api/user", token=token)
            failures += status != 200
        out["calls"] = {"n": len(calls), "failed": failures}
        out["rss_after_calls_mb"] = round(hub.rss_mb(), 1)
    return out


def run(opts: Options) -> Figure:
    users, running = (1000, 100) if opts.quick else (10_000, 1000)
    key = os.urandom(32)
    idp = _Responder()
    idp.issuer = f"http://127.0.0.1:{idp.port}/oauth2/default"
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    try:
        opts.say(f"making a database of {users} users ({running} with a running server)")
        database = opts.workdir / "users.sqlite"
        started = time.monotonic()
        tokens = make_database(database, key, users, running, idp.port)
        made_s = round(time.monotonic() - started, 1)
        rounds: dict[str, list[dict[str, Any]]] = {"qcs": [], "plain": []}
        for r in range(1 if opts.quick else ROUNDS):
            for side in ("plain", "qcs") if r % 2 == 0 else ("qcs", "plain"):
                opts.say(f"round {r + 1}: {side} Hub")
                rounds[side].append(one_round(opts, side, database, key, idp, tokens, users))
    finally:
        idp.shutdown()

    def med(side: str, *path: str) -> float:
        values = []
        for result in rounds[side]:
            value: Any = result
            for part in path:
                value = value[part]
            values.append(value)
        return statistics.median(values)

    measures = {
        "startup_ratio": (med("qcs", "startup_s") / med("plain", "startup_s"), "<=", START_GOAL),
        "rebuild_max_stall_ms": (med("qcs", "rebuild_max_stall_ms"), "<=", STALL_GOAL_MS),
        "rss_startup_ratio": (med("qcs", "rss_startup_mb") / med("plain", "rss_startup_mb"), "<=", MEMORY_GOAL),
        "rss_after_calls_ratio": (
            med("qcs", "rss_after_calls_mb") / med("plain", "rss_after_calls_mb"),
            "<=",
            MEMORY_GOAL,
        ),
        "metrics_scrape_ratio": (med("qcs", "metrics_ms") / med("plain", "metrics_ms"), "<=", METRICS_GOAL),
        "admin_json_ms": (
            max(med("qcs", "admin_json_ms", k) for k in ("default", "sorted_middle", "filtered")),
            "<=",
            PAGE_GOAL_MS,
        ),
        "pulls_failed": (max(r["pulls"]["failed"] for r in rounds["qcs"]), "==", 0),
    }
    missed = [name for name, (value, op, target) in measures.items() if not Goal(op, target).met(value)]
    figure = Figure(
        "P11",
        f"scale: a {users}-user Hub — goals missed of {len(measures)} (startup, rebuild stall, memory, metrics, "
        "admin page, pulls)",
        float(len(missed)),
        "goals missed",
        GOAL,
    )
    figure.details = {
        "users": users,
        "running_servers": running,
        "database_made_s": made_s,
        "measures": {
            name: {"value": round(value, 3), "goal": f"{op} {target:g}", "met": name not in missed}
            for name, (value, op, target) in measures.items()
        },
        "rounds": rounds,
        "idp_refreshes": idp.refreshes,
        "loadavg": list(os.getloadavg()),
    }
    for r in rounds["qcs"] + rounds["plain"]:
        if r["calls"]["failed"]:
            figure.problems.append(f"{r['calls']['failed']} of {r['calls']['n']} server calls were not answered 200")
    return figure
