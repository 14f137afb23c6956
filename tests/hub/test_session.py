"""The session refresh tokens of QCS clients in kernels: format, signature, lifetime, rotation, what ends them."""

from __future__ import annotations

import base64
import time

import pytest

from qcs_jupyter.hub import session
from qcs_jupyter.hub.limits import FailureLimiter

KEY = b"k" * 32
LIFETIME, ROTATION = 20 * 3600.0, 3600.0


def tokens(key: bytes = KEY) -> session.SessionTokens:
    return session.SessionTokens(key, lifetime=LIFETIME, rotation=ROTATION)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_minted_token_parses_back_to_its_claim():
    sid = session.new_session_id()
    now = time.time()
    token = tokens().mint("ada@example.org", sid, now)
    claim = tokens().parse(token)
    assert claim == session.SessionClaim("ada@example.org", int(now // ROTATION * ROTATION), sid)
    assert tokens().live(claim, {"session_id": sid}, now)


def test_the_token_is_stable_within_a_rotation_and_changes_after():
    sid, now = session.new_session_id(), 1_800_000_000.0
    start = now // ROTATION * ROTATION
    assert tokens().mint("ada", sid, start) == tokens().mint("ada", sid, start + ROTATION - 1)
    assert tokens().mint("ada", sid, start) != tokens().mint("ada", sid, start + ROTATION)


def test_lifetime_bounds_a_copy_even_while_the_session_runs():
    sid, minted = session.new_session_id(), 1_800_000_000.0
    claim = tokens().parse(tokens().mint("ada", sid, minted))
    qcs = {"session_id": sid}
    assert tokens().live(claim, qcs, claim.minted + LIFETIME - 1)
    assert not tokens().live(claim, qcs, claim.minted + LIFETIME)
    assert not tokens().live(claim, qcs, claim.minted - 3600)  # minted in the future: refused


def test_ending_the_session_kills_every_token_of_it():
    qcs: dict = {}
    sid = session.ensure(qcs)
    assert session.ensure(qcs) == sid and qcs["session_started_at"]  # one session until it ends
    claim = tokens().parse(tokens().mint("ada", sid))
    assert tokens().live(claim, qcs)
    session.end(qcs)
    assert not tokens().live(claim, qcs)
    assert session.ensure(qcs) != sid  # a new session: the old tokens stay dead
    assert not tokens().live(claim, qcs)


def _bad_tokens() -> dict[str, object]:
    good = tokens().mint("ada", session.new_session_id(), 1_800_000_000.0)
    prefix, user, minted, sid, mac = good.split(".")
    return {
        "none": None,
        "not text": b"qcsj2",
        "empty": "",
        "0.2 format": f"qcsj1.{b64('ada')}.{'x' * 43}",
        "other key": tokens(b"o" * 32).mint("ada", sid, 1_800_000_000.0),
        "mac changed": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "user swapped": ".".join([prefix, b64("bob"), minted, sid, mac]),
        "minted changed": ".".join([prefix, user, str(int(minted) + 1), sid, mac]),
        "session swapped": ".".join([prefix, user, minted, "A" * 22, mac]),
        "non-ascii": good + "é",
        "nul": good.replace(".", "\0", 1),
        "trailing newline": good + "\n",
        "too long": good + "A" * 1000,
        "padding": good + "=",
        "short mac": good[:-2],
    }


@pytest.mark.parametrize(("token"), list(_bad_tokens().values()), ids=list(_bad_tokens()))
def test_malformed_or_forged_tokens_are_refused_without_a_lookup(token):
    assert tokens().parse(token) is None


@pytest.mark.parametrize("name", ["", "al\0ce", "a\nb", "\x7f"], ids=["empty", "nul", "newline", "del"])
def test_a_signed_token_naming_an_impossible_user_is_refused(name):
    """Even with a valid signature (a bug elsewhere could mint one), control characters never reach a lookup."""
    assert tokens().parse(tokens().mint(name, session.new_session_id())) is None


def test_rotation_must_be_shorter_than_the_lifetime():
    with pytest.raises(ValueError, match="shorter"):
        session.SessionTokens(KEY, lifetime=60, rotation=60)


def test_the_key_comes_from_the_first_auth_state_key():
    assert session.derive_key([]) is None
    assert session.derive_key([b"a" * 32, b"b" * 32]) == session.derive_key([b"a" * 32])
    assert session.derive_key([b"a" * 32]) != session.derive_key([b"b" * 32])


def test_failure_limiter_windows():
    limiter = FailureLimiter(3, window=60.0, max_clients=2)
    for _ in range(3):
        assert limiter.retry_after("a", now=100.0) == 0
        limiter.failed("a", now=100.0)
    assert limiter.retry_after("a", now=110.0) == pytest.approx(50.0)
    assert limiter.retry_after("b", now=110.0) == 0  # per client
    assert limiter.retry_after("a", now=160.0) == 0  # the window ended
    limiter.failed("b", now=161.0)
    limiter.failed("c", now=161.0)  # over max_clients: the least recently seen ('a') is forgotten
    assert limiter.retry_after("a", now=161.0) == 0 and len(limiter._clients) == 2
