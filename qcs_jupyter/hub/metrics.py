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
from collections.abc import Iterable, Mapping
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


@dataclass(frozen=True)
class Health:
    """What the gauges need to know about one user, kept in memory (never a name in a label)."""

    relogin: bool = False
    #: Epoch seconds when the refresh token enters its warning window, and when it is past its life.
    warn_at: float | None = None
    expires_at: float | None = None
    #: Counted as signed in with QCS (holds tokens).
    signed_in: bool = False
    #: Set by ``user_health``: the caller decided "warning" (otherwise it follows the clock).
    warning: bool = False

    def state(self, now: float) -> str:
        """``relogin``, ``warning``, ``ok`` or ``signed_out``, at time ``now``."""
        if self.relogin or (self.signed_in and self.expires_at is not None and now >= self.expires_at):
            return "relogin"
        if not self.signed_in:
            return "signed_out"
        if self.warning or (self.warn_at is not None and now >= self.warn_at):
            return "warning"
        return "ok"


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
    if not refresh and not access:
        return Health()
    obtained = _number(qcs.get("refresh_token_obtained_at"))
    expires_at = warn_at = None
    if refresh and obtained is not None:
        expires_at = obtained + max_age_days * DAY
        warn_at = expires_at - warning_days * DAY
    relogin = qcs.get("last_refresh_outcome") == "rejected"
    if not refresh:
        access_expires = _number(qcs.get("access_token_expires_at"))
        relogin = relogin or access_expires is None or access_expires <= time.time()
    return Health(relogin=relogin, warn_at=warn_at, expires_at=expires_at, signed_in=True)


class QCSMetrics:
    """The QCS metrics, registered in one Prometheus registry under one prefix.

    The module-level functions use the instance in JupyterHub's registry; tests build their own with a
    fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY, namespace: str = METRICS_PREFIX) -> None:
        self._users: dict[str, Health] = {}
        self.rebuilt = False
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

    def user_health(self, username: str, *, warning: bool = False, relogin: bool = False) -> None:
        """Record a user's health as decided by the caller (a user with no problem: both False)."""
        self._users[username] = Health(relogin=relogin, warning=warning, signed_in=True)

    def forget_user(self, username: str) -> None:
        """Stop counting a user (deleted from the Hub)."""
        self._users.pop(username, None)

    def health_states(self, now: float | None = None) -> dict[str, int]:
        """How many tracked users are in each state (``ok``, ``warning``, ``relogin``, ``signed_out``)."""
        now = time.time() if now is None else now
        counts = dict.fromkeys(("ok", "warning", "relogin", "signed_out"), 0)
        for health in self._users.values():
            counts[health.state(now)] += 1
        return counts

    def _count(self, *states: str) -> int:
        counts = self.health_states()
        return sum(counts[s] for s in states)

    async def rebuild_from_users(
        self,
        users: Iterable[Any],
        *,
        max_age_days: float = MAX_AGE_DAYS,
        warning_days: float = WARNING_DAYS,
    ) -> int:
        """Rebuild the per-user health from each user's auth_state (after a Hub restart); returns the count.

        ``users`` are JupyterHub ``User`` objects. Users observed meanwhile by an event keep that newer value.
        """
        before = dict(self._users)
        users = list(users)
        states = await asyncio.gather(*(user.get_auth_state() for user in users))
        for user, state in zip(users, states, strict=True):
            if self._users.get(user.name) is before.get(user.name):  # not observed while we were reading
                self._users[user.name] = classify(state, max_age_days=max_age_days, warning_days=warning_days)
        self.rebuilt = True
        return len(users)


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
forget_user = METRICS.forget_user
rebuild_from_users = METRICS.rebuild_from_users
