"""The QCS admin page of the Hub: every user's QCS token health, problems first, with "Revoke QCS session".

Routes (under the Hub prefix, e.g. ``/hub/``), added by ``QCSAuthenticator.get_handlers``:

- ``GET  qcs/admin`` — the page (a Hub template extending ``page.html``). Needs ``admin-ui``, like
  JupyterHub's own admin page; it lists the users the viewer may ``read:users``, a page at a time.
- ``POST qcs/admin`` — form ``user``, ``reason``, ``_xsrf``: revoke that user's QCS session. Needs
  ``admin:users`` on that user (the scope JupyterHub asks to change a user's auth_state).
- ``GET  api/qcs/users`` — the same rows as JSON for scripts. Needs ``read:users``; a filtered scope
  (``read:users!group=physics``, or a user's own ``self``) sees only the users it covers.

Both take ``sort`` (a column, ``-`` for descending), ``state`` (only users in that state), ``offset`` and ``limit``
(default 50, at most 500), as JupyterHub's REST API pages its lists. Counting, filtering and sorting use what
the Hub keeps in memory of every user's token health (``metrics.Health``: times and outcomes, never a token),
so a request decrypts only the auth_state of the users on its page, whatever the size of the Hub.
- ``POST api/qcs/users/{name}/revoke`` — JSON ``{"reason": "..."}``: the API twin of the page's action.

The Hub's own pages (Home, Token, Admin) get a "QCS tokens" link in their nav bar for whoever has ``admin-ui``,
with no configuration: :func:`add_nav_link` puts our ``page.html`` (the Hub's, plus that item) before the Hub's
default templates. An admin's own ``page.html`` (``c.JupyterHub.template_paths``) still wins.

No token value is ever shown or returned: only times, ages, outcomes and server names.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.crypto import CryptKeeper
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from . import metrics

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "qcs_admin.html"
#: Our ``page.html``: the Hub's own (``templates/page.html``) with a "QCS tokens" nav item for admins.
NAV_TEMPLATES = TEMPLATES / "nav"

#: Row states, problems first (the default order of the page).
STATES = ("relogin", "warning", "ok", "signed_out", "never")
STATE_LABELS = {
    "relogin": "must log in again",
    "warning": "attention",
    "ok": "ok",
    "signed_out": "signed out",
    "never": "not signed in with QCS",
}
MAX_REASON = 200
PAGE_LIMIT, MAX_PAGE_LIMIT = 50, 500
TRANSIENT_OUTCOMES = {"unreachable": "the identity provider could not be reached", "timeout": "it timed out"}


# --- rows ---------------------------------------------------------------------------------------------------
def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def relative(epoch: float | None, now: float) -> str:
    """``in 42 min``, ``3 d ago``: a short human distance from ``now``."""
    if epoch is None:
        return "—"
    delta = epoch - now
    seconds = abs(delta)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 2 * 86400:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86400:.0f} d"
    return f"in {text}" if delta >= 0 else f"{text} ago"


def user_row(
    name: str,
    auth_state: Mapping[str, Any] | None,
    *,
    now: float | None = None,
    max_age_days: float = metrics.MAX_AGE_DAYS,
    warning_days: float = metrics.WARNING_DAYS,
    running: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """One user's QCS token health, from their auth_state: JSON-ready, and never a token value.

    ``running`` maps server names ('' = the default server) to whether that server runs now.
    """
    now = time.time() if now is None else now
    state = auth_state or {}
    qcs = state.get("qcs") or {}
    health = metrics.classify(auth_state, max_age_days=max_age_days, warning_days=warning_days)
    status = health.page_state(now)  # the same status the listing counts, filters and sorts by

    # After a logout or a revoke the expiry of a token the Hub no longer holds means nothing.
    access_expires = _num(qcs.get("access_token_expires_at")) if state.get("access_token") else None
    refresh_obtained = _num(qcs.get("refresh_token_obtained_at")) if state.get("refresh_token") else None
    refresh_age = (now - refresh_obtained) / metrics.DAY if refresh_obtained is not None else None
    refresh_expires = refresh_obtained + max_age_days * metrics.DAY if refresh_obtained is not None else None
    last_refresh = _num(qcs.get("last_refresh_at"))
    outcome = qcs.get("last_refresh_outcome")
    outcome = outcome if isinstance(outcome, str) else None
    logged_out = _num(qcs.get("logged_out_at"))

    problems: list[str] = []
    if status == "relogin":
        if outcome == "rejected":
            problems.append(
                f"The identity provider refused the refresh token ({relative(last_refresh, now)}): "
                "the user must log in again."
            )
        if refresh_age is not None and refresh_age >= max_age_days:
            problems.append(
                f"The refresh token is {refresh_age:.0f} days old; QCS refresh tokens last {max_age_days:g} days: "
                "the user must log in again."
            )
        if not state.get("refresh_token"):
            problems.append("There is no refresh token and the access token has expired: the user must log in again.")
    elif status == "warning" and refresh_expires is not None:
        problems.append(
            f"The refresh token expires {relative(refresh_expires, now)}: the user should log in again before then."
        )
    if status == "warning" and outcome in TRANSIENT_OUTCOMES:
        problems.append(
            f"The last refresh failed ({relative(last_refresh, now)}): {TRANSIENT_OUTCOMES[outcome]}; "
            "the Hub keeps the current tokens and retries."
        )

    servers = []
    for server_name, info in sorted((qcs.get("servers") or {}).items()):
        info = info if isinstance(info, Mapping) else {}
        started, pulled = _num(info.get("started_at")), _num(info.get("last_pull_at"))
        servers.append(
            {
                "name": server_name,
                "started_at": _iso(started),
                "last_pull_at": _iso(pulled),
                "last_pull": relative(pulled, now) if pulled is not None else "never",
                "running": bool((running or {}).get(server_name, False)),
            }
        )
    return {
        "name": name,
        "status": status,
        "status_label": STATE_LABELS[status],
        "problems": problems,
        "signed_in": health.signed_in,
        "access_token_expires_at": _iso(access_expires),
        "access_token_expires": relative(access_expires, now),
        "access_token_expired": access_expires is not None and access_expires <= now,
        "refresh_token_obtained_at": _iso(refresh_obtained),
        "refresh_token_age_days": round(refresh_age, 2) if refresh_age is not None else None,
        "refresh_token_max_age_days": max_age_days,
        "refresh_token_expires_at": _iso(refresh_expires),
        "last_refresh_at": _iso(last_refresh),
        "last_refresh": relative(last_refresh, now) if last_refresh is not None else _no_refresh(health.signed_in),
        "last_refresh_outcome": outcome,
        "logged_out_at": _iso(logged_out),
        "servers": servers,
    }


def _no_refresh(signed_in: bool) -> str:
    return "none since login" if signed_in else "—"


def public_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the JSON API returns it (no display strings)."""
    hidden = {"status_label", "access_token_expires", "last_refresh"}
    out = {k: v for k, v in row.items() if k not in hidden}
    out["servers"] = [{k: v for k, v in s.items() if k != "last_pull"} for s in row["servers"]]
    return out


def parse_sort(value: str | None) -> tuple[str, bool]:
    """``status`` / ``-refresh_age`` → (key, descending); a clear ValueError for anything else."""
    value = (value or "status").strip()
    descending = value.startswith("-")
    key = value.lstrip("-")
    if key not in SORT_COLUMNS:
        raise ValueError(f"sort must be one of {', '.join(SORT_COLUMNS)} (prefix '-' for descending), not {value!r}")
    return key, descending


#: Columns one can sort by (``sort=NAME``, or ``sort=-NAME`` for descending, as JupyterHub's users API), and
#: the value each reads from what is kept in memory of a user (health, page status); None = missing. ``name`` sorts
#: by the name itself.
SORT_FIELDS: dict[str, Callable[[metrics.Health, str, float], Any]] = {
    "status": lambda health, status, now: STATES.index(status),
    "access_expires": lambda health, status, now: health.access_expires_at,
    "refresh_age": lambda health, status, now: (  # in days to 2 places, as the rows show and sort it
        round((now - health.refresh_obtained_at) / metrics.DAY, 2) if health.refresh_obtained_at is not None else None
    ),
    "last_refresh": lambda health, status, now: health.last_refresh_at,
    "last_pull": lambda health, status, now: health.last_pull_at,
}
SORT_COLUMNS = ("status", "name", *[key for key in SORT_FIELDS if key != "status"])


def sort_names(
    names: list[str],
    key: str,
    descending: bool,
    known: Callable[[str], tuple[metrics.Health, str]],
    now: float,
) -> list[str]:
    """``names`` sorted by ``key`` (missing values last either way, then by name; ``status`` puts problems
    first), from what is kept in memory: no row is built for users off the page."""
    by_name = sorted(names, key=str.lower)
    if key == "name":
        return by_name[::-1] if descending else by_name
    field = SORT_FIELDS[key]
    values = {name: field(*known(name), now) for name in by_name}
    present = [name for name in by_name if values[name] is not None]
    missing = [name for name in by_name if values[name] is None]
    return sorted(present, key=values.__getitem__, reverse=descending) + missing


def parse_page(offset: str | None, limit: str | None, state: str | None) -> tuple[int, int, str | None]:
    """``offset``, ``limit`` and ``state`` query arguments → values; a clear ValueError for anything else."""
    try:
        first = int(offset) if offset not in (None, "") else 0
        size = int(limit) if limit not in (None, "") else PAGE_LIMIT
    except ValueError:
        raise ValueError("offset and limit must be whole numbers") from None
    if first < 0 or not 1 <= size <= MAX_PAGE_LIMIT:
        raise ValueError(f"offset must be 0 or more and limit from 1 to {MAX_PAGE_LIMIT}")
    state = state or None
    if state is not None and state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return first, size, state


# --- handlers ---------------------------------------------------------------------------------------------
def _limits(authenticator: Any) -> tuple[float, float]:
    return (
        float(getattr(authenticator, "refresh_token_max_age_days", metrics.MAX_AGE_DAYS)),
        float(getattr(authenticator, "refresh_token_warning_days", metrics.WARNING_DAYS)),
    )


class _QCSHealthMixin:
    """Builds one page of rows of the users the current request may read."""

    def readable(self: Any) -> Mapping[str, metrics.Health]:
        """The users the viewer may ``read:users``, with their health as kept in memory."""
        known = metrics.METRICS.known_users()
        if "read:users" in self.expanded_scopes:  # unfiltered: every user, no database walk
            return known
        can_read = self.get_scope_filter("read:users")
        return {
            u.name: known.get(u.name) or metrics.Health() for u in self.db.query(orm.User) if can_read(u, kind="user")
        }

    async def health_page(self: Any) -> dict[str, Any]:
        """Sorted, filtered and paged rows; only the page's users' auth_state is read."""
        try:
            key, descending = parse_sort(self.get_argument("sort", None))
            offset, limit, state = parse_page(
                self.get_argument("offset", None), self.get_argument("limit", None), self.get_argument("state", None)
            )
        except ValueError as e:
            raise web.HTTPError(400, str(e)) from None
        await rebuilt(self.authenticator)
        max_age, warning = _limits(self.authenticator)
        now = time.time()
        # Two passes at most: what is kept in memory can be older than a user's stored auth_state when it was
        # changed around the authenticator (an admin's PATCH of auth_state); the page's rows are read afresh, and
        # if that changes any of their states, the order is made again with what was just read.
        for _ in range(2):
            readable = self.readable()
            statuses = {name: health.page_state(now) for name, health in readable.items()}
            matching = [name for name, status in statuses.items() if state is None or status == state]
            ordered = sort_names(matching, key, descending, lambda n, r=readable, st=statuses: (r[n], st[n]), now)
            names = ordered[offset : offset + limit]
            found = {u.name: u for u in self.db.query(orm.User).filter(orm.User.name.in_(names))}  # one query
            users = [self.users[found[name]] for name in names if name in found]
            states = await asyncio.gather(*(user.get_auth_state() for user in users))
            stale = False
            for user, auth_state in zip(users, states, strict=True):
                metrics.observe_auth_state(user.name, auth_state, max_age_days=max_age, warning_days=warning)
                stale = stale or metrics.METRICS.health(user.name).page_state(now) != statuses[user.name]
            if not stale:
                break
        summary = {"users": len(statuses), **dict.fromkeys(STATES, 0)}
        for status in statuses.values():
            summary[status] += 1
        rows = []
        self.qcs_orm_users = {user.name: user.orm_user for user in users}
        for user, auth_state in zip(users, states, strict=True):
            running = {name: bool(spawner.active) for name, spawner in user.spawners.items()}
            rows.append(
                user_row(user.name, auth_state, now=now, max_age_days=max_age, warning_days=warning, running=running)
            )
        total = len(ordered)
        return {
            "rows": rows,
            "summary": summary,
            "sort": key,
            "descending": descending,
            "state": state,
            "offset": offset,
            "limit": limit,
            "total": total,
            "next_offset": offset + limit if offset + limit < total else None,
            "previous_offset": max(0, offset - limit) if offset > 0 else None,
        }

    async def revoke(self: Any, name: str, reason: str) -> dict[str, Any]:
        """Revoke ``name``'s QCS session (the viewer needs ``admin:users`` on them); returns their new row."""
        reason = " ".join((reason or "").split())[:MAX_REASON] or "no reason given"
        user = self.find_user(name)
        if user is None or not self.get_scope_filter("read:users")(user.orm_user, kind="user"):
            raise web.HTTPError(404, f"No such user: {name}")
        if not self.get_scope_filter("admin:users")(user.orm_user, kind="user"):
            raise web.HTTPError(403, f"Revoking a QCS session needs the scope admin:users on {name}.")
        revoke_session = getattr(self.authenticator, "revoke_session", None)
        if revoke_session is None:
            raise web.HTTPError(501, "This Hub's authenticator cannot revoke QCS sessions (use QCSAuthenticator).")
        admin = self.current_user.name
        self.log.info("QCS: %s revokes the QCS session of %s (%s)", admin, name, reason)
        # The reason reaches the user (their status says why they must log in again); the admin's name
        # stays in the Hub log.
        await revoke_session(user, f"revoked by a JupyterHub admin: {reason}")
        metrics.logout(by="admin")
        state = await user.get_auth_state()
        max_age, warning = _limits(self.authenticator)
        metrics.observe_auth_state(name, state, max_age_days=max_age, warning_days=warning)
        running = {n: bool(s.active) for n, s in user.spawners.items()}
        return user_row(name, state, max_age_days=max_age, warning_days=warning, running=running)


class QCSAdminHandler(_QCSHealthMixin, BaseHandler):
    """``/hub/qcs/admin``: one row per user with their QCS token health, problems first, and a revoke action."""

    def get_template(self, name: str, sync: bool = False) -> Any:
        # The Hub's own Jinja environment plus our directory, so our page extends the Hub's page.html (and an
        # admin's template_paths can still override either).
        key = "qcs_jinja2_env_sync" if sync else "qcs_jinja2_env"
        env = self.settings.get(key)
        if env is None:
            base: Environment = self.settings["jinja2_env_sync" if sync else "jinja2_env"]
            env = base.overlay(loader=ChoiceLoader([base.loader, FileSystemLoader(str(TEMPLATES))]))
            self.settings[key] = env
        return env.get_template(name)

    @web.authenticated
    @needs_scope("admin-ui")
    async def get(self) -> None:
        page = await self.health_page()
        rows, key, descending = page["rows"], page["sort"], page["descending"]
        can_revoke = self.get_scope_filter("admin:users")
        for row in rows:
            orm_user = self.qcs_orm_users[row["name"]]
            row["can_revoke"] = bool(can_revoke(orm_user, kind="user")) and row["status"] not in ("never", "signed_out")
        max_age, warning = _limits(self.authenticator)

        def link(**changes: Any) -> str:
            limit = page["limit"] if page["limit"] != PAGE_LIMIT else None
            query = {"sort": f"-{key}" if descending else key, "state": page["state"], "limit": limit}
            query.update(changes)
            return "?" + urlencode({k: v for k, v in query.items() if v is not None and v != ""})

        def sort_link(column: str) -> str:
            # A click on the current column flips the order; another column starts ascending.
            return link(sort=f"-{column}" if (column == key and not descending) else column, offset=None)

        html = await self.render_template(
            TEMPLATE,
            rows=rows,
            summary=page["summary"],
            page=page,
            page_link=lambda offset: link(offset=offset),
            state_link=lambda state: link(state=state, offset=None),
            sort_key=key,
            sort_descending=descending,
            sort_link=sort_link,
            max_age_days=max_age,
            warning_days=warning,
            revoked=self.get_argument("revoked", None),
            qcs_admin_page=True,  # the nav bar marks its "QCS tokens" link as the current page
            json_url=f"{self.hub.base_url}api/qcs/users",
            generated_at=_iso(time.time()),
        )
        self.set_header("Cache-Control", "no-store")
        self.finish(html)

    @web.authenticated
    @needs_scope("admin-ui")
    async def post(self) -> None:
        name = self.get_body_argument("user", "").strip()
        if not name:
            raise web.HTTPError(400, "Which user? The form needs a user name.")
        await self.revoke(name, self.get_body_argument("reason", ""))
        self.redirect(f"{self.hub.base_url}qcs/admin?" + urlencode({"revoked": name}))


class QCSUsersAPIHandler(_QCSHealthMixin, APIHandler):
    """``GET /hub/api/qcs/users``: the admin page's rows as JSON (``sort``, ``state``, ``offset``, ``limit`` as on
    the page). ``total`` counts the users that match; ``next_offset`` is null on the last page."""

    @needs_scope("read:users", post_filter=True)
    async def get(self) -> None:
        page = await self.health_page()
        max_age, warning = _limits(self.authenticator)
        self.set_header("Cache-Control", "no-store")
        self.write(
            json.dumps(
                {
                    "generated_at": _iso(time.time()),
                    "sort": f"-{page['sort']}" if page["descending"] else page["sort"],
                    "state": page["state"],
                    "offset": page["offset"],
                    "limit": page["limit"],
                    "total": page["total"],
                    "next_offset": page["next_offset"],
                    "refresh_token_max_age_days": max_age,
                    "refresh_token_warning_days": warning,
                    "summary": page["summary"],
                    "users": [public_row(r) for r in page["rows"]],
                }
            )
        )


class QCSRevokeAPIHandler(_QCSHealthMixin, APIHandler):
    """``POST /hub/api/qcs/users/{name}/revoke``: end that user's QCS session; they log in again."""

    async def post(self, user_name: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        body: Any = {}
        if self.request.body:
            try:
                body = json.loads(self.request.body)
            except ValueError:
                raise web.HTTPError(400, 'The body must be JSON, e.g. {"reason": "left the group"}.') from None
        if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
            raise web.HTTPError(400, 'The body must be a JSON object with an optional string "reason".')
        row = await self.revoke(user_name, body.get("reason", ""))
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(public_row(row)))


def admin_handlers(authenticator: Any) -> list[tuple[str, type]]:
    """The admin page's routes, for ``Authenticator.get_handlers``; also schedules the gauges' rebuild and puts
    the page's link in the nav bar of the Hub's own pages."""
    schedule_rebuild(authenticator)
    add_nav_link(getattr(authenticator, "parent", None))
    return [
        (r"/qcs/admin", QCSAdminHandler),
        (r"/api/qcs/users", QCSUsersAPIHandler),
        (r"/api/qcs/users/([^/]+)/revoke", QCSRevokeAPIHandler),
    ]


def _classify_stored(
    rows: list[tuple[str, bytes | None]], max_age_days: float, warning_days: float
) -> list[tuple[str, metrics.Health]]:
    """In a worker thread: decrypt a batch of stored auth_states (as ``jupyterhub.crypto.decrypt`` does) and keep
    only each user's health. A state that cannot be decrypted (a key that changed, encryption unavailable) counts
    as none: JupyterHub logs it when it reads it."""
    keeper = CryptKeeper.instance()
    try:
        keeper.check_available()
    except Exception:
        usable = False
    else:
        usable = True
    out = []
    for name, encrypted in rows:
        state = None
        if encrypted is not None and usable:
            try:
                state = json.loads(keeper.fernet.decrypt(encrypted).decode("utf8"))
            except Exception:
                state = None
        out.append((name, metrics.classify(state, max_age_days=max_age_days, warning_days=warning_days)))
    return out


async def stored_health(
    db: Any, *, max_age_days: float, warning_days: float, batch: int = 64
) -> AsyncIterator[list[tuple[str, metrics.Health]]]:
    """Every user's health from the database, ``batch`` rows per query (names and encrypted auth_state only: no
    ORM objects, no ``User``), each batch decrypted and classified in one job of JupyterHub's encryption thread
    pool: the event loop runs one small query per batch and nothing else."""
    loop = asyncio.get_running_loop()
    executor = CryptKeeper.instance().executor
    last = 0
    while True:
        rows = (
            db.query(orm.User.id, orm.User.name, orm.User.encrypted_auth_state)
            .filter(orm.User.id > last)
            .order_by(orm.User.id)
            .limit(batch)
            .all()
        )
        if not rows:
            return
        last = rows[-1][0]
        pairs = [(name, encrypted) for _, name, encrypted in rows]
        del rows
        yield await loop.run_in_executor(executor, _classify_stored, pairs, max_age_days, warning_days)


async def rebuilt(authenticator: Any) -> None:
    """Wait until every user's health is known (rebuilt from the database once after the Hub started)."""
    if metrics.METRICS.rebuilt:
        return
    task = _rebuild_tasks.get(authenticator)
    if task is None:
        task = _start_rebuild(authenticator)
    if task is not None:
        await asyncio.shield(task)


def _start_rebuild(authenticator: Any) -> asyncio.Task | None:
    app = getattr(authenticator, "parent", None)
    if app is None or getattr(app, "db", None) is None:
        return None

    async def rebuild() -> None:
        try:
            max_age, warning = _limits(authenticator)
            started = time.monotonic()
            authenticator.log.info("QCS: rebuilding every user's token health from their auth_state")
            count = await metrics.METRICS.rebuild(stored_health(app.db, max_age_days=max_age, warning_days=warning))
            authenticator.log.info(
                "QCS: token health of %d users rebuilt from their auth_state in %.1f s",
                count,
                time.monotonic() - started,
            )
        except Exception as e:  # metrics must never take the Hub down
            authenticator.log.warning("QCS: could not rebuild the token-health gauges: %s", e)

    task = asyncio.get_running_loop().create_task(rebuild())
    _rebuild_tasks[authenticator] = task
    _background.add(task)  # keep a reference until it is done
    task.add_done_callback(_background.discard)
    return task


def add_nav_link(app: Any) -> bool:
    """Give the Hub's pages a "QCS tokens" nav link (for ``admin-ui``) with no configuration.

    JupyterHub builds its Jinja environments before it asks the authenticator for handlers; their loader is
    wrapped here so ``page.html`` is looked up in the admin's own ``template_paths`` first, then in ours (which
    extends the Hub's default ``templates/page.html``), then as before. Returns whether it did so; a second call
    changes nothing."""
    settings = getattr(app, "tornado_settings", None)
    if not isinstance(settings, dict):
        return False  # not inside a Hub (e.g. a script listing the routes)
    default = str(Path(app.data_files_path, "templates").resolve())
    theirs = [str(p) for p in getattr(app, "template_paths", []) if str(Path(p).resolve()) != default]
    done = False
    for key in ("jinja2_env", "jinja2_env_sync"):
        env = settings.get(key)
        if not isinstance(env, Environment) or getattr(env, "qcs_nav_link", False):
            continue
        env.loader = ChoiceLoader([FileSystemLoader(theirs), FileSystemLoader(str(NAV_TEMPLATES)), env.loader])
        env.qcs_nav_link = True  # type: ignore[attr-defined]
        done = True
    return done


def schedule_rebuild(authenticator: Any, *, poll: float = 1.0, limit: float = 600.0) -> None:
    """Once the Hub is serving, rebuild the user gauges from every user's auth_state (they live in memory)."""
    app = getattr(authenticator, "parent", None)
    if app is None or not getattr(authenticator, "enable_auth_state", False):
        return

    async def when_serving() -> None:
        deadline = time.monotonic() + limit
        while getattr(app, "http_server", None) is None:  # set by JupyterHub.start(), after every init step
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(poll)
        if getattr(authenticator, "freeze_startup_objects", False):
            # JupyterHub's startup heap (every user's row, role and spawner) stays as long as the Hub: a full
            # collection that walks it again and again stalls the event loop for as long (see the option's help).
            gc.freeze()
            authenticator.log.info(
                "QCS: %d objects of the Hub's startup frozen out of the garbage collector's generations "
                "(c.QCSAuthenticator.freeze_startup_objects)",
                gc.get_freeze_count(),
            )
        if not metrics.METRICS.rebuilt and authenticator not in _rebuild_tasks:
            _start_rebuild(authenticator)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # not inside the Hub's event loop (e.g. a script listing the routes): nothing to rebuild
    task = loop.create_task(when_serving())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()
_rebuild_tasks: weakref.WeakKeyDictionary[Any, asyncio.Task] = weakref.WeakKeyDictionary()
