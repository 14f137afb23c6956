"""Prometheus metrics of the QCS side of the Hub, served by JupyterHub's own ``/hub/metrics``.

The metrics live in ``prometheus_client``'s default registry (the one JupyterHub serves) under the same
prefix as JupyterHub's metrics: ``$JUPYTERHUB_METRICS_PREFIX``, default ``jupyterhub``, read once at import
as ``jupyterhub/metrics.py`` does. No label ever holds a user name or a token: per-user facts are only
counted.

The Hub-side code calls this small API::

    from qcs_jupyter.hub import metrics

    metrics.idp_refresh("ok", seconds)            # every refresh call to the IdP's token endpoint
    metrics.handoff("ok", seconds)                # every answer of /hub/api/qcs/credentials/{user}
    metrics.held_client_refresh("ok")             # every answer of the Hub's issuer token endpoint
    metrics.login(); metrics.logout()             # QCS logins and logouts
    metrics.observe_auth_state(user.name, auth_state, max_age_days=90, warning_days=7)
    metrics.user_health(user.name, warning=False, relogin=True)   # the same, decided by the caller
    metrics.forget_user(user.name)                # a user was deleted

The two user gauges are computed when Prometheus scrapes, from what was last observed of each user, so a
refresh token that crosses into its warning window while nobody touches it is still counted. After a Hub
restart the gauges are rebuilt from the users' auth_state (``rebuild_from_users``), which the admin module
schedules once at startup.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ..qcs import REFRESH_TOKEN_LIFETIME_DAYS, REFRESH_TOKEN_WARNING_DAYS

#: Same variable and default as JupyterHub's own metrics (``jupyterhub/metrics.py``).
METRICS_PREFIX = os.getenv("JUPYTERHUB_METRICS_PREFIX", "jupyterhub")

#: Days a QCS refresh token lasts, and the days before that when users are warned (the authenticator's
#: ``refresh_token_max_age_days`` and ``refresh_token_warning_days`` defaults).
MAX_AGE_DAYS = REFRESH_TOKEN_LIFETIME_DAYS
WARNING_DAYS = REFRESH_TOKEN_WARNING_DAYS
DAY = 86400.0

#: Outcomes of a refresh at the IdP: new tokens, ``invalid_grant`` and the like, no answer, too slow.
IDP_REFRESH_OUTCOMES = ("ok", "rejected", "unreachable", "timeout")
#: Outcomes of a credential handoff: served, the caller is not one of the user's running servers (403), or
#: the user must log in again (no usable tokens, 401).
HANDOFF_OUTCOMES = ("ok", "refused", "relogin")
#: Outcomes of a held client's refresh at the Hub's issuer: a fresh access token, an unknown or stale
#: session refresh token (``invalid_grant``), the user's QCS login is no longer usable, or a grant other
#: than ``refresh_token``.
HELD_CLIENT_OUTCOMES = ("ok", "refused", "relogin", "unsupported")
#: Who ended a QCS session: the user (logout) or an admin ("Revoke QCS session").
LOGOUT_INITIATORS = ("user", "admin")

_IDP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))
_HANDOFF_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


@dataclass(frozen=True, slots=True)
class Health:
    """What the Hub keeps in memory of one user's QCS token health: enough for the gauges and for the admin page
    to count, sort and filter every user without decrypting anyone's auth_state. Never a token, never in a label.
    """

    relogin: bool = False
    #: Epoch seconds when the refresh token enters its warning window, and when it is past its life.
    warn_at: float | None = None
    expires_at: float | None = None
    #: Counted as signed in with QCS (holds tokens).
    signed_in: bool = False
    #: Set by ``user_health``: the caller decided "warning" (otherwise it follows the clock).
    warning: bool = False
    #: Without a refresh token, the user must log in again once the access token expires (at this time).
    relogin_at: float | None = None
    #: For the admin page: a logout or revoke is recorded; the last refresh got no answer (it retries).
    logged_out: bool = False
    transient_failure: bool = False
    access_expires_at: float | None = None
    refresh_obtained_at: float | None = None
    last_refresh_at: float | None = None
    last_pull_at: float | None = None

    def state(self, now: float) -> str:
        """``relogin``, ``warning``, ``ok`` or ``signed_out``, at time ``now``."""
        if self.relogin or (
            self.signed_in and any(t is not None and now >= t for t in (self.expires_at, self.relogin_at))
        ):
            return "relogin"
        if not self.signed_in:
            return "signed_out"
        if self.warning or (self.warn_at is not None and now >= self.warn_at):
            return "warning"
        return "ok"

    def page_state(self, now: float) -> str:
        """The admin page's status: ``state``, with ``never`` (no QCS login ever recorded) and a failed last
        refresh shown as ``warning``."""
        state = self.state(now)
        if state == "signed_out" and not self.logged_out:
            return "never"
        if state in ("ok", "warning") and self.transient_failure:
            return "warning"
        return state

    def changes_after(self, now: float) -> float | None:
        """The next time after ``now`` at which ``state`` changes by the clock alone, if any."""
        times = [t for t in (self.warn_at, self.expires_at, self.relogin_at) if t is not None and t > now]
        return min(times) if times else None


def classify(
    auth_state: Mapping[str, Any] | None,
    *,
    max_age_days: float = MAX_AGE_DAYS,
    warning_days: float = WARNING_DAYS,
) -> Health:
    """The gauge view of one user's auth_state (the layout ``QCSAuthenticator`` stores).

    Signed out (no tokens, e.g. after a logout or a revoke) is not a problem: that user logs in again when
    they come back. Must log in again: the IdP refused the refresh token, or it is past ``max_age_days``, or
    there is no refresh token and the access token has expired.
    """
    if not auth_state:
        return Health()
    qcs = auth_state.get("qcs") or {}
    refresh = auth_state.get("refresh_token")
    access = auth_state.get("access_token")
    servers = qcs.get("servers") if isinstance(qcs.get("servers"), Mapping) else {}
    pulls = [_number(s.get("last_pull_at")) for s in servers.values() if isinstance(s, Mapping)]
    pulls = [p for p in pulls if p is not None]
    notes = {
        "logged_out": _number(qcs.get("logged_out_at")) is not None,
        "last_refresh_at": _number(qcs.get("last_refresh_at")),
        "last_pull_at": max(pulls) if pulls else None,
        "transient_failure": qcs.get("last_refresh_outcome") in ("unreachable", "timeout"),
    }
    if not refresh and not access:
        return Health(**notes)
    obtained = _number(qcs.get("refresh_token_obtained_at")) if refresh else None
    access_expires = _number(qcs.get("access_token_expires_at")) if access else None
    expires_at = warn_at = None
    if obtained is not None:
        expires_at = obtained + max_age_days * DAY
        warn_at = expires_at - warning_days * DAY
    relogin = qcs.get("last_refresh_outcome") == "rejected" or (not refresh and access_expires is None)
    return Health(
        relogin=relogin,
        warn_at=warn_at,
        expires_at=expires_at,
        signed_in=True,
        relogin_at=access_expires if not refresh else None,
        access_expires_at=access_expires,
        refresh_obtained_at=obtained,
        **notes,
    )


class QCSMetrics:
    """The QCS metrics, registered in one Prometheus registry under one prefix.

    The module-level functions use the instance in JupyterHub's registry; tests build their own with a
    fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY, namespace: str = METRICS_PREFIX) -> None:
        self._users: dict[str, Health] = {}
        self.rebuilt = False
        #: Until the rebuild is done: the users an event observed since this Hub started. The rebuild leaves them
        #: be: what an event saw is never older than the database, and may be newer (a login is observed just
        #: before its auth_state is saved, so a rebuild reading that row in between would see no tokens).
        self._observed: set[str] | None = set()
        # Counts per state, valid until a user changes or the clock crosses someone's next threshold: a scrape
        # of an idle Hub does not walk every user.
        self._counts: tuple[dict[str, int], float, float] | None = None  # (counts, computed at, valid until)
        kw: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.idp_refreshes = Counter(
            "qcs_idp_refreshes", "QCS token refreshes at the identity provider, by outcome", ["outcome"], **kw
        )
        self.idp_refresh_seconds = Histogram(
            "qcs_idp_refresh_duration_seconds",
            "Time the identity provider took to answer a QCS token refresh, by outcome",
            ["outcome"],
            buckets=_IDP_BUCKETS,
            **kw,
        )
        self.handoffs = Counter(
            "qcs_handoffs", "QCS credential handoffs to users' servers, by outcome", ["outcome"], **kw
        )
        self.handoff_seconds = Histogram(
            "qcs_handoff_duration_seconds",
            "Time the Hub took to answer a server's credential request (including any IdP refresh), by outcome",
            ["outcome"],
            buckets=_HANDOFF_BUCKETS,
            **kw,
        )
        self.held_client_refreshes = Counter(
            "qcs_held_client_refreshes",
            "Token refreshes of QCS clients in kernels, answered by the Hub's issuer, by outcome",
            ["outcome"],
            **kw,
        )
        self.logins = Counter("qcs_logins", "Logins with QCS that stored tokens", **kw)
        self.logouts = Counter(
            "qcs_logouts", "QCS sessions ended, by who ended them (user: logout; admin: revoke)", ["by"], **kw
        )
        self.users_expiring = Gauge(
            "qcs_users_refresh_expiring",
            "Users whose QCS refresh token is within its warning window (they should log in again soon)",
            **kw,
        )
        self.users_relogin = Gauge(
            "qcs_users_relogin_required",
            "Users who must log in again: the IdP refused their refresh token, or it is past its maximum age",
            **kw,
        )
        self.users_signed_in = Gauge("qcs_users_signed_in", "Users whose Hub holds QCS tokens", **kw)
        self.users_expiring.set_function(lambda: self._count("warning"))
        self.users_relogin.set_function(lambda: self._count("relogin"))
        self.users_signed_in.set_function(lambda: self._count("ok", "warning", "relogin"))
        # Every series exists from the start (at 0), as JupyterHub does for its status labels: dashboards
        # and alerts then never see "no data" for an outcome that has not happened yet.
        for outcome in IDP_REFRESH_OUTCOMES:
            self.idp_refreshes.labels(outcome=outcome)
            self.idp_refresh_seconds.labels(outcome=outcome)
        for outcome in HANDOFF_OUTCOMES:
            self.handoffs.labels(outcome=outcome)
            self.handoff_seconds.labels(outcome=outcome)
        for outcome in HELD_CLIENT_OUTCOMES:
            self.held_client_refreshes.labels(outcome=outcome)
        for by in LOGOUT_INITIATORS:
            self.logouts.labels(by=by)

    # --- events ---------------------------------------------------------------------------------------
    def idp_refresh(self, outcome: str, seconds: float) -> None:
        """One refresh request to the IdP's token endpoint ended with ``outcome`` after ``seconds``."""
        _check(outcome, IDP_REFRESH_OUTCOMES, "IdP refresh")
        self.idp_refreshes.labels(outcome=outcome).inc()
        self.idp_refresh_seconds.labels(outcome=outcome).observe(max(0.0, seconds))

    def handoff(self, outcome: str, seconds: float) -> None:
        """The credential route answered a server with ``outcome`` after ``seconds``."""
        _check(outcome, HANDOFF_OUTCOMES, "handoff")
        self.handoffs.labels(outcome=outcome).inc()
        self.handoff_seconds.labels(outcome=outcome).observe(max(0.0, seconds))

    def held_client_refresh(self, outcome: str) -> None:
        """The Hub's issuer answered a QCS client's refresh with ``outcome``."""
        _check(outcome, HELD_CLIENT_OUTCOMES, "held-client refresh")
        self.held_client_refreshes.labels(outcome=outcome).inc()

    def login(self) -> None:
        """A user logged in with QCS and their tokens were stored."""
        self.logins.inc()

    def logout(self, by: str = "user") -> None:
        """A QCS session ended: ``by="user"`` (logout) or ``by="admin"`` (revoked from the admin page)."""
        _check(by, LOGOUT_INITIATORS, "logout initiator")
        self.logouts.labels(by=by).inc()

    # --- per-user health --------------------------------------------------------------------------------
    def observe_auth_state(
        self,
        username: str,
        auth_state: Mapping[str, Any] | None,
        *,
        max_age_days: float = MAX_AGE_DAYS,
        warning_days: float = WARNING_DAYS,
    ) -> None:
        """Record a user's health from their (new) auth_state; call it after every save of it."""
        self._users[username] = classify(auth_state, max_age_days=max_age_days, warning_days=warning_days)
        self._changed(username)

    def user_health(self, username: str, *, warning: bool = False, relogin: bool = False) -> None:
        """Record a user's health as decided by the caller (a user with no problem: both False)."""
        self._users[username] = Health(relogin=relogin, warning=warning, signed_in=True)
        self._changed(username)

    def reset(self) -> None:
        """Forget every user (a new Hub in this process, e.g. in tests)."""
        self._users.clear()
        self._counts = None
        self._observed = set()
        self.rebuilt = False

    def know_user(self, username: str) -> None:
        """A user exists (created, or found at startup): listed as never signed in until observed."""
        if username not in self._users:
            self._users[username] = Health()
            self._counts = None

    def forget_user(self, username: str) -> None:
        """Stop counting a user (deleted from the Hub)."""
        self._users.pop(username, None)
        self._changed(username)

    def _changed(self, username: str) -> None:
        self._counts = None
        if self._observed is not None:
            self._observed.add(username)

    def health(self, username: str) -> Health | None:
        """What is known of a user, or None."""
        return self._users.get(username)

    def known_users(self) -> dict[str, Health]:
        """Every known user and their health (a view: do not change it)."""
        return self._users

    def health_states(self, now: float | None = None) -> dict[str, int]:
        """How many tracked users are in each state (``ok``, ``warning``, ``relogin``, ``signed_out``)."""
        current = now is None
        now = time.time() if now is None else now
        cached = self._counts
        if current and cached is not None and cached[1] <= now < cached[2]:
            return dict(cached[0])
        counts = dict.fromkeys(("ok", "warning", "relogin", "signed_out"), 0)
        valid_until = float("inf")
        for health in self._users.values():
            counts[health.state(now)] += 1
            change = health.changes_after(now)
            if change is not None and change < valid_until:
                valid_until = change
        if current:
            self._counts = (counts, now, valid_until)
        return dict(counts)

    def _count(self, *states: str) -> int:
        counts = self.health_states()
        return sum(counts[s] for s in states)

    async def rebuild_from_users(
        self,
        users: Iterable[Any],
        *,
        max_age_days: float = MAX_AGE_DAYS,
        warning_days: float = WARNING_DAYS,
        batch: int = 64,
    ) -> int:
        """Rebuild the per-user health from each user's auth_state (after a Hub restart); returns the count.

        ``users``: objects with a ``name`` and an async ``get_auth_state()`` (JupyterHub ``User`` objects), read
        ``batch`` at a time (see ``rebuild``). The Hub itself uses ``admin.stored_health``, which decrypts a batch
        in one job of a worker thread.
        """

        async def batches() -> AsyncIterator[list[tuple[str, Health]]]:
            chunk: list[Any] = []
            for user in users:
                chunk.append(user)
                if len(chunk) >= batch:
                    yield await read(chunk)
                    chunk = []
            if chunk:
                yield await read(chunk)

        async def read(chunk: list[Any]) -> list[tuple[str, Health]]:
            states = await asyncio.gather(*(user.get_auth_state() for user in chunk))
            return [
                (user.name, classify(state, max_age_days=max_age_days, warning_days=warning_days))
                for user, state in zip(chunk, states, strict=True)
            ]

        return await self.rebuild(batches())

    async def rebuild(self, batches: AsyncIterable[Iterable[tuple[str, Health]]]) -> int:
        """Take every user's health from ``batches`` of (name, health); returns the count.

        Yields to the event loop after each batch, so a Hub of many users keeps answering while it rebuilds. A user
        observed by an event (a login, a refresh, a deletion) since the Hub started keeps what that event said.
        """
        if self._observed is None:
            self._observed = set()
        count = 0
        try:
            async for pairs in batches:
                for name, health in pairs:
                    count += 1
                    if name not in self._observed:
                        self._users[name] = health
                self._counts = None
                await asyncio.sleep(0)
        finally:
            self._observed = None
        self.rebuilt = True
        return count


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} outcome {value!r}; expected one of {', '.join(allowed)}")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def outcome_of_error(error: BaseException) -> str:
    """``timeout`` or ``unreachable`` for an exception raised by a refresh request that got no usable answer.

    (A definitive refusal from the IdP, e.g. ``invalid_grant``, is ``rejected``; the caller knows that case.)
    """
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    # tornado reports its own timeouts as HTTP 599 "Timeout during request" / "Timeout while connecting".
    if getattr(error, "code", None) == 599 and "timeout" in str(error).lower():
        return "timeout"
    return "unreachable"


#: The metrics JupyterHub serves at /hub/metrics.
METRICS = QCSMetrics()

idp_refresh = METRICS.idp_refresh
handoff = METRICS.handoff
held_client_refresh = METRICS.held_client_refresh
login = METRICS.login
logout = METRICS.logout
observe_auth_state = METRICS.observe_auth_state
user_health = METRICS.user_health
know_user = METRICS.know_user
forget_user = METRICS.forget_user
rebuild_from_users = METRICS.rebuild_from_users
