"""RFC 3339 times read as the QCS clients read them, on every supported Python (3.10 included).

Both clients write ``updated_at`` with nine fractional digits, which ``datetime.fromisoformat`` rejects before
Python 3.11. The table below is what both clients (the Rust ``time`` crate) accept; the last tests ask them.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from qcs_jupyter.credentials.sdkcheck import check_with_sdk
from qcs_jupyter.credentials.tokens import parse_rfc3339, rfc3339

from .clients import load_with_pyquil

UTC = timezone.utc
# (value, the instant it means in UTC, or None when the clients refuse it)
TIMES = [
    ("2026-11-30T01:09:03.523448774Z", datetime(2026, 11, 30, 1, 9, 3, 523448, UTC)),
    ("2026-11-30T01:09:03Z", datetime(2026, 11, 30, 1, 9, 3, tzinfo=UTC)),
    ("2026-11-30T01:09:03.5Z", datetime(2026, 11, 30, 1, 9, 3, 500000, UTC)),
    ("2026-11-30T01:09:03.1234567890123Z", datetime(2026, 11, 30, 1, 9, 3, 123456, UTC)),
    ("2026-11-30t01:09:03z", datetime(2026, 11, 30, 1, 9, 3, tzinfo=UTC)),
    ("2026-11-30T01:09:03+01:00", datetime(2026, 11, 30, 0, 9, 3, tzinfo=UTC)),
    ("2026-11-30T01:09:03-00:00", datetime(2026, 11, 30, 1, 9, 3, tzinfo=UTC)),
    ("2026-11-30T01:09:03+23:59", datetime(2026, 11, 29, 1, 10, 3, tzinfo=UTC)),
    ("2026-12-31T23:59:60Z", datetime(2026, 12, 31, 23, 59, 59, 999999, UTC)),
    ("2026-12-31T22:59:60-01:00", datetime(2026, 12, 31, 23, 59, 59, 999999, UTC)),
    ("2026-11-30 01:09:03Z", None),  # 0.27 takes the space, pyQuil's 0.12.8 refuses it
    ("2026-11-30T01:09:03", None),  # no offset
    ("2026-11-30", None),
    ("2026-02-30T00:00:00Z", None),
    ("2026-11-30T24:00:00Z", None),
    ("2026-11-30T01:09:03.Z", None),
    ("2026-11-30T01:09:03+0100", None),
    ("2026-11-30T01:09:03+24:00", None),
    ("+2026-11-30T01:09:03Z", None),
    ("2026-11-30T01:09Z", None),
    (" 2026-11-30T01:09:03Z", None),
    ("2026-1-30T01:09:03Z", None),
    ("2026-11-30T01:09:03,5Z", None),
    ("2026-12-31T12:59:60Z", None),  # a leap second only at 23:59:60 UTC
    ("2026-12-31T23:59:60+01:00", None),
    ("２０２６-11-30T01:09:03Z", None),  # non-ASCII digits
    ("yesterday", None),
]


@pytest.mark.parametrize(("value", "instant"), TIMES, ids=[t[0] for t in TIMES])
def test_parse_like_the_clients(value, instant):
    if instant is None:
        with pytest.raises(ValueError, match=r"(RFC 3339|range|valid)"):
            parse_rfc3339(value)
    else:
        assert parse_rfc3339(value) == instant


def test_what_we_write_reads_back():
    for dt in (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 678901, UTC)):
        assert parse_rfc3339(rfc3339(dt)) == dt


#: Accepted by qcs-sdk-python's core 0.27, refused by pyQuil's 0.12.8: refused here, as one client cannot read it.
ONLY_027 = {"2026-11-30 01:09:03Z"}


def _files(home, value):
    qcs = home / ".qcs"
    qcs.mkdir()
    (qcs / "settings.toml").write_text(
        '[profiles.default]\nauth_server_name = "default"\ncredentials_name = "default"\n'
    )
    (qcs / "secrets.toml").write_text(
        f'[credentials.default.token_payload]\naccess_token = "a"\nupdated_at = "{value}"\n'
    )


@pytest.mark.parametrize(("value", "instant"), TIMES, ids=[t[0] for t in TIMES])
def test_the_official_client_agrees(home, value, instant):
    _files(home, value)
    result = check_with_sdk("default", env=dict(os.environ))
    if not result["available"]:
        pytest.skip("qcs-api-client-common is not installed")
    assert result["ok"] is (instant is not None or value in ONLY_027), result


@pytest.mark.parametrize(("value", "instant"), TIMES, ids=[t[0] for t in TIMES])
def test_pyquils_client_agrees(home, value, instant):
    _files(home, value)
    result = load_with_pyquil("default", os.environ)
    assert result["ok"] is (instant is not None), result
