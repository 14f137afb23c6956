"""Property tests of the merge into ~/.qcs: random user documents, random sequences of our writes.

The documents are built as text (so comments, quoting styles, unicode, escapes, out-of-order tables and
arrays of tables all occur) by one generator that draws from a ``Source``: hypothesis drives it for the
properties, a seeded ``random.Random`` for the (slow) check with the official QCS client.

Two documented limits of the merge (see test_catalogue.py) shape the generator: dotted keys
(``profiles.x.api_url = ...``) are not generated, since such files are refused (``dotted-keys-captured``), and
line order is checked within each top-level table family, since tomlkit regroups a family split by
``[[array]]`` tables (``out-of-order-tables-regrouped``).
"""

from __future__ import annotations

import copy
import math
import os
import random
import re
import tempfile
import time as time_module
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
import tomlkit
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcs_jupyter.credentials import AuthServer, CredentialStore, QCSPaths, TokenSet
from qcs_jupyter.credentials.sdkcheck import check_with_sdk
from qcs_jupyter.credentials.tokens import parse_rfc3339
from qcs_jupyter.qcs import QCS_API_URL, QCS_CLIENT_ID, QCS_GRPC_API_URL, QCS_ISSUER

try:  # a strict TOML parser checks the documents: the standard library's, or the same parser as tomli on 3.10
    import tomllib
except ModuleNotFoundError:
    import tomli as tomllib

# Function-scoped fixtures do not mix with @given: one key for the module, fixed times for determinism.
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# Every token is valid and plausible (an exp more than a day ahead is no issuer's, and never wins a merge); only the
# order of exp matters here. The anchor is taken when an example is drawn, an hour ahead, never at import: a suite
# that runs for longer than that must not turn these tokens into expired ones.
EXP_AHEAD = 3600
BASE_UPDATED = datetime(2026, 1, 1, tzinfo=timezone.utc)

OWNED_PROFILE_KEYS = ("api_url", "grpc_api_url", "auth_server_name", "credentials_name")
#: Profiles our writes use; None resolves to default_profile_name (or "default").
PROFILE_POOL: tuple[str | None, ...] = (None, "default", "lab", "my profile", "prod.eu", "café", "x-1_y")
ISSUERS = ("https://idp.example/oauth2/abc", "https://idp.example/oauth2/abc/", "https://auth.example.org")
API_URLS = ("https://api.example", "http://127.0.0.1:8000/qcs", "https://api.qcs.rigetti.com")
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
SETTINGS_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True, scope="module")
def _no_qcs_env() -> Iterator[None]:
    """The stores here get explicit paths; QCS_PROFILE_NAME must not override profile=None."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("QCS_SETTINGS_FILE_PATH", "QCS_SECRETS_FILE_PATH", "QCS_PROFILE_NAME", "QCS_SECRETS_READ_ONLY"):
            mp.delenv(name, raising=False)
        yield


# --- sources of randomness ------------------------------------------------------------------------------
class HypSource:
    """Draws from hypothesis strategies (shrinkable)."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def chance(self, p: float = 0.5) -> bool:
        return self.draw(st.integers(0, 99)) < int(p * 100)

    def choice(self, seq: Sequence[Any]) -> Any:
        return self.draw(st.sampled_from(list(seq)))

    def text(self, max_size: int = 12, min_size: int = 0) -> str:
        return self.draw(st.text(min_size=min_size, max_size=max_size))

    def int_value(self) -> int:
        return self.draw(st.integers(-(2**63), 2**63 - 1))

    def float_value(self) -> float:
        return self.draw(st.floats(allow_nan=False))

    def datetime_value(self) -> datetime:
        return self.draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)))


_PALETTE = "aZ09 _-.\"'\\#=[]{},\t\n\r\x00\x1f\x7fé€😀\u200b\ufeffÆ中"


class RandSource:
    """Draws from a seeded ``random.Random`` with a palette of awkward characters."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)  # noqa: S311 - test data, not secrets

    def integer(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def chance(self, p: float = 0.5) -> bool:
        return self.rnd.random() < p

    def choice(self, seq: Sequence[Any]) -> Any:
        return self.rnd.choice(list(seq))

    def text(self, max_size: int = 12, min_size: int = 0) -> str:
        return "".join(self.rnd.choice(_PALETTE) for _ in range(self.rnd.randint(min_size, max_size)))

    def int_value(self) -> int:
        return self.rnd.choice([0, -1, 1_000_000, 2**63 - 1, -(2**63), self.rnd.randint(-1000, 1000)])

    def float_value(self) -> float:
        return self.rnd.choice([0.0, -0.0, 1.5, -2e-300, 1e300, math.inf, -math.inf, self.rnd.uniform(-1e6, 1e6)])

    def datetime_value(self) -> datetime:
        return datetime(1900, 1, 1) + timedelta(seconds=self.rnd.randint(0, 6_000_000_000), microseconds=7)


# --- rendering TOML text ----------------------------------------------------------------------------------
def basic_string(s: str, multiline: bool = False) -> str:
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\n" if multiline else "\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    body = "".join(out)
    return f'"""\n{body}"""' if multiline else f'"{body}"'


def _literal_ok(s: str) -> bool:
    return "'" not in s and not any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in s)


def render_string(src: Any, s: str, *, inline: bool) -> str:
    style = src.integer(0, 3)
    if style == 1 and _literal_ok(s):
        return f"'{s}'"
    if style == 2 and not inline:
        return basic_string(s, multiline=True)
    return basic_string(s)


def render_key(src: Any, k: str) -> str:
    if BARE_KEY.match(k) and src.chance(0.8):
        return k
    if _literal_ok(k) and src.chance(0.3):
        return f"'{k}'"
    return basic_string(k)


def render_int(src: Any, n: int) -> str:
    style = src.integer(0, 3)
    if style == 1 and n >= 0:
        return hex(n)
    if style == 2 and abs(n) >= 1000:
        return f"{n:_}"
    if style == 3 and n > 0:
        return f"+{n}"
    return str(n)


def render_float(f: float) -> str:
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return repr(f)


def render_value(src: Any, depth: int = 0, *, inline: bool = False) -> str:
    """A random TOML value as text (strings, ints, floats, bools, dates, arrays, inline tables)."""
    kinds = ["str", "int", "float", "bool", "datetime", "date", "time", "local"]
    if depth < 2:
        kinds += ["array", "inline"]
    kind = src.choice(kinds)
    if kind == "str":
        return render_string(src, src.text(), inline=inline or depth > 0)
    if kind == "int":
        return render_int(src, src.int_value())
    if kind == "float":
        return render_float(src.float_value())
    if kind == "bool":
        return src.choice(["true", "false"])
    dt = src.datetime_value()
    if kind == "datetime":
        offset = timedelta(minutes=src.choice([0, 330, -480]))
        text = dt.replace(tzinfo=timezone(offset)).isoformat()
        return text.replace("+00:00", "Z") if src.chance() else text
    if kind == "date":
        return date(dt.year, dt.month, dt.day).isoformat()
    if kind == "time":
        return time(dt.hour, dt.minute, dt.second, dt.microsecond).isoformat()
    if kind == "local":
        return dt.isoformat()
    if kind == "array":
        items = [render_value(src, depth + 1, inline=True) for _ in range(src.integer(0, 3))]
        trailing = "," if items and src.chance(0.3) else ""
        return "[" + ", ".join(items) + trailing + "]"
    keys = unique_keys(src, src.integer(0, 3))
    return "{" + ", ".join(f"{render_key(src, k)} = {render_value(src, depth + 1, inline=True)}" for k in keys) + "}"


def unique_keys(src: Any, n: int, reserved: set[str] | frozenset[str] = frozenset()) -> list[str]:
    keys: list[str] = []
    for i in range(n):
        k = src.choice([f"key{i}", f"k-{i}_x", src.text(8), "ü" + src.text(4), ""]) if src.chance(0.9) else str(i)
        if k not in keys and k not in reserved:
            keys.append(k)
    return keys


def comment(src: Any) -> str:
    text = "".join(c for c in src.text(20) if not ((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F))
    return f"#{text}"


# --- documents as tagged lines ------------------------------------------------------------------------------
@dataclass
class Doc:
    """A document as lines, each tagged with what the merge must keep.

    ``True`` (top-level keys and comments before the first table): kept verbatim and in order. A string names
    the top-level table family a line belongs to: kept verbatim, in order within the family. ``False``: ours
    to change.
    """

    lines: list[tuple[str, bool | str]] = field(default_factory=list)
    absent: bool = False

    def add(self, text: str, keep: bool | str = True) -> None:
        self.lines.append((text, keep))

    @property
    def text(self) -> str:
        return "\n".join(line for line, _ in self.lines) + ("\n" if self.lines else "")

    def kept(self, group: bool | str = True) -> list[str]:
        return [part for line, keep in self.lines if keep == group and keep is not False for part in line.split("\n")]

    @property
    def groups(self) -> list[bool | str]:
        return [True, *sorted({keep for _, keep in self.lines if isinstance(keep, str)})]


def header(src: Any, path: Sequence[str], aot: bool = False) -> str:
    inner = ".".join(render_key(src, k) for k in path)
    if src.chance(0.1):
        inner = " " + inner.replace(".", " . ") + " "
    return f"[[{inner}]]" if aot else f"[{inner}]"


def block(src: Any, path: Sequence[str], pairs: list[tuple[str, str, bool]], keep_header: bool = True) -> list:
    """A table block: optional comment, header, key/value lines (each with its own keep flag), blank lines.

    Kept lines belong to the group of their top-level table (``profiles``, ``auth_servers``, ...): tomlkit
    regroups out-of-order tables of one family when one of them is touched (see test_catalogue's
    ``out-of-order-tables-regrouped``), so order is checked within each family, and content everywhere.
    """
    group = path[0]
    keep_header = group if keep_header else False
    pairs = [(key, value, group if keep else False) for key, value, keep in pairs]
    lines: list[tuple[str, bool | str]] = []
    # A comment above a header, and blank lines after a table, belong to the table before in TOML's syntax
    # (tomlkit moves them with it): their content is checked as part of the whole text only, not their order.
    if src.chance(0.3):
        lines.append((comment(src), False))
    lines.append((header(src, path) + (f"  {comment(src)}" if src.chance(0.2) else ""), keep_header))
    for key, value, keep in pairs:
        trailer = f" {comment(src)}" if src.chance(0.2) else ""
        lines.append((f"{render_key(src, key)} = {value}{trailer}", keep))
        if src.chance(0.15):
            lines.append((comment(src), keep))
    lines.extend([("", False)] * src.integer(0, 2))
    return lines


def user_pairs(src: Any, reserved: set[str], n: int | None = None) -> list[tuple[str, str, bool]]:
    count = src.integer(0, 3) if n is None else n
    return [(k, render_value(src), True) for k in unique_keys(src, count, reserved)]


def other_names(src: Any, avoid: set[str], n: int) -> list[str]:
    names: list[str] = []
    for i in range(n):
        name = src.choice([f"other{i}", src.text(10), f"team.{i}", f"ünï {i}", "default2"])
        if name not in avoid and name not in names:
            names.append(name)
    return names


def settings_doc(src: Any, ours: set[str], dpn: str | None, absent: bool) -> Doc:
    doc = Doc(absent=absent)
    if absent:
        return doc
    top_reserved = {"profiles", "auth_servers", "credentials", "default_profile_name", "tool", "plugins"}
    if src.chance(0.5):
        doc.add(comment(src))
    if dpn is not None:
        doc.add(f"default_profile_name = {render_string(src, dpn, inline=True)}")
    for key, value, _ in user_pairs(src, top_reserved):
        doc.add(f"{render_key(src, key)} = {value}")
    blocks: list[list[tuple[str, bool]]] = []
    for name in other_names(src, ours, src.integer(0, 3)):
        pairs = [(k, f'"https://{k}.example"', True) for k in ("api_url", "grpc_api_url") if src.chance()]
        pairs += [("auth_server_name", basic_string(name), True), ("credentials_name", basic_string(name), True)]
        pairs += user_pairs(src, {*OWNED_PROFILE_KEYS, "applications"})
        blocks.append(block(src, ["profiles", name], pairs))
        if src.chance():
            blocks.append(block(src, ["profiles", name, "applications", "pyquil"], user_pairs(src, set())))
        if src.chance():
            blocks.append(
                block(src, ["auth_servers", name], [("client_id", '"c"', True), ("issuer", f'"{ISSUERS[0]}"', True)])
            )
    for p in sorted(ours):  # sometimes our profile is already there, with the user's own keys in it
        if src.chance(0.4):
            pairs = user_pairs(src, {*OWNED_PROFILE_KEYS, "applications"})
            if src.chance(0.3):
                pairs.append(("api_url", '"https://mine.example"', False))
            if src.chance(0.3):
                pairs.append(("credentials_name", basic_string(p), False))
            blocks.append(block(src, ["profiles", p], pairs))
        if src.chance(0.3):  # sometimes only the sub-table, with [profiles.<p>] implicit
            blocks.append(block(src, ["profiles", p, "applications", "pyquil"], user_pairs(src, set())))
        if src.chance(0.3):
            pairs = [("client_id", '"mine"', False)]
            if src.chance():
                pairs.append(("issuer", '"https://mine.example/o"', False))
            blocks.append(block(src, ["auth_servers", p], pairs, keep_header=False))
    if src.chance(0.3):
        blocks.append(block(src, ["tool"], user_pairs(src, set())))
    # The entries of one array of tables stay together and share one spelling of the header: tomlkit
    # re-spells later entries like the first and regroups split arrays (cosmetic; the data is kept).
    aot: list[tuple[str, bool | str]] = []
    aot_header = header(src, ["plugins"], aot=True)
    for _ in range(src.integer(0, 2)):
        aot.append((aot_header, "plugins"))
        aot += [(f"{render_key(src, k)} = {v}", "plugins") for k, v, _ in user_pairs(src, set())]
    if aot:
        blocks.append(aot)
    if src.chance(0.5):  # out-of-order tables are valid TOML and a classic source of merge bugs
        order = list(range(len(blocks)))
        for i in range(len(order) - 1, 0, -1):
            j = src.integer(0, i)
            order[i], order[j] = order[j], order[i]
        blocks = [blocks[i] for i in order]
    for b in blocks:
        doc.lines.extend(b)
    return doc


def secrets_doc(src: Any, ours: set[str]) -> Doc:
    doc = Doc()
    if src.chance(0.08):
        doc.absent = True
        return doc
    if src.chance(0.5):
        doc.add(comment(src))
    for key, value, _ in user_pairs(src, {"credentials"}):
        doc.add(f"{render_key(src, key)} = {value}")
    blocks = []
    for name in other_names(src, ours, src.integer(0, 3)):
        if src.chance(0.7):
            pairs = [
                ("access_token", basic_string("other-access-" + src.text(6)), True),
                ("refresh_token", render_string(src, src.text(8), inline=False), True),
                ("expires_in", str(src.integer(0, 10**6)), True),
                ("updated_at", '"2024-05-06T07:08:09.123456789Z"', True),
            ]
            blocks.append(block(src, ["credentials", name, "token_payload"], pairs + user_pairs(src, set(TOKEN_KEYS))))
        else:
            pairs = [("client_id", '"robot"', True), ("client_secret", basic_string(src.text(8)), True)]
            blocks.append(block(src, ["credentials", name, "client_credentials"], pairs))
    for p in sorted(ours):
        if src.chance(0.3):
            pairs = [("access_token", '"old-opaque-token"', False)]
            if src.chance():
                pairs.append(("updated_at", '"2020-01-01T00:00:00Z"', False))
            if src.chance():
                pairs.append(("refresh_token", '"old-refresh"', False))
            blocks.append(block(src, ["credentials", p, "token_payload"], pairs, keep_header=False))
        elif src.chance(0.2):
            pairs = [("client_id", '"robot"', False), ("client_secret", '"shh"', False)]
            blocks.append(block(src, ["credentials", p, "client_credentials"], pairs, keep_header=False))
    for b in blocks:
        doc.lines.extend(b)
    return doc


TOKEN_KEYS = ("access_token", "refresh_token", "id_token", "token_type", "scope", "expires_in", "updated_at")


# --- our writes ------------------------------------------------------------------------------------------------
@dataclass
class Write:
    profile: str | None
    tokens: TokenSet
    exp: int
    auth_server: AuthServer | None
    api_url: str | None


def make_jwt(exp: int, jti: int, **claims: Any) -> str:
    return jwt.encode({"sub": "ada", "exp": exp, "jti": str(jti), **claims}, _KEY, algorithm="RS256")


def writes(src: Any) -> list[Write]:
    out = []
    base_exp = int(time_module.time()) + EXP_AHEAD
    for i in range(src.integer(1, 4)):
        exp = base_exp + src.choice([-600, 0, 600, 3600, 3600, 7200])
        tokens = TokenSet(
            access_token=make_jwt(exp, i),
            refresh_token=(src.text(10, min_size=1) if src.chance(0.6) else None),
            id_token=(make_jwt(exp, 100 + i, name=src.text(6)) if src.chance() else None),
            scope=(src.choice(["openid offline_access", src.text(8)]) if src.chance() else None),
            expires_in=(src.choice([0, 3600, 2**31]) if src.chance(0.7) else None),
            updated_at=BASE_UPDATED + timedelta(seconds=i, microseconds=src.choice([0, 123456])),
            managed_by=("jupyterhub" if src.chance(0.2) else None),
        )
        server = AuthServer(src.choice(ISSUERS), src.text(8, min_size=1)) if src.chance(0.3) else None
        api_url = src.choice(API_URLS) if src.chance(0.2) else None
        out.append(Write(src.choice(PROFILE_POOL), tokens, exp, server, api_url))
    return out


@dataclass
class Case:
    settings: Doc
    secrets: Doc
    writes: list[Write]
    dpn: str | None  # default_profile_name the user's settings.toml starts with (None: absent)


def resolve_profiles(ws: list[Write], dpn: str | None, settings_absent: bool) -> list[str]:
    """The profile each write lands in, as the store resolves it (the first write adds default_profile_name)."""
    current = None if settings_absent else dpn
    out = []
    for w in ws:
        p = w.profile or current or "default"
        if current is None:
            current = p
        out.append(p)
    return out


def make_case(src: Any) -> Case:
    ws = writes(src)
    absent = src.chance(0.08)
    dpn = None if absent else src.choice([None, None, "default", "lab", "my profile"])
    ours = set(resolve_profiles(ws, dpn, absent))
    return Case(settings_doc(src, ours, dpn, absent), secrets_doc(src, ours), ws, dpn)


@st.composite
def cases(draw: Any) -> Case:
    return make_case(HypSource(draw))


# --- the checks ---------------------------------------------------------------------------------------------------
def strip_ours(data: dict[str, Any], ours: set[str], kind: str, had_dpn: bool) -> dict[str, Any]:
    data = copy.deepcopy(data)
    if kind == "settings":
        if not had_dpn:
            data.pop("default_profile_name", None)
        profiles = data.get("profiles")
        if isinstance(profiles, dict):
            for p in ours:
                table = profiles.get(p)
                if isinstance(table, dict):
                    for key in OWNED_PROFILE_KEYS:
                        table.pop(key, None)
                    if not table:
                        del profiles[p]
        containers = ("profiles", "auth_servers")
    else:
        containers = ("credentials",)
    for name in containers:
        container = data.get(name)
        if isinstance(container, dict):
            if name != "profiles":
                for p in ours:
                    container.pop(p, None)
            if not container:
                del data[name]
    return data


def assert_lines_kept_in_order(kept: list[str], text: str) -> None:
    remaining = iter(text.split("\n"))
    for line in kept:
        assert any(candidate == line for candidate in remaining), f"lost or moved: {line!r}"


def toml_data(text: str | None) -> dict[str, Any]:
    return tomlkit.parse(text).unwrap() if text else {}


def run_case(case: Case, root: Path) -> dict[str, Any]:
    """Write the user's files, apply our writes one by one checking each, then check the end state."""
    qcs = root / ".qcs"
    qcs.mkdir(mode=0o700)
    paths = QCSPaths(qcs / "settings.toml", qcs / "secrets.toml", default_dir=True)
    originals: dict[str, str | None] = {}
    for which, doc in (("settings", case.settings), ("secrets", case.secrets)):
        originals[which] = None if doc.absent else doc.text
        if not doc.absent:
            tomllib.loads(doc.text)  # the generator makes valid TOML (a strict parser agrees)
            getattr(paths, which).write_text(doc.text, encoding="utf-8")
    before = {which: toml_data(text) for which, text in originals.items()}

    profiles = resolve_profiles(case.writes, case.dpn, case.settings.absent)
    newest: dict[str, Write] = {}
    last_server: dict[str, AuthServer] = {}
    last_api: dict[str, str] = {}
    for w, p in zip(case.writes, profiles, strict=True):
        result = CredentialStore(paths, profile=w.profile).install(
            w.tokens, auth_server=w.auth_server, api_url=w.api_url
        )
        assert result.profile == p
        replaced = p not in newest or newest[p].exp <= w.exp
        assert result.kept_newer is not replaced  # newer tokens are never replaced by older ones
        if replaced:
            newest[p] = w
        if w.auth_server:
            last_server[p] = w.auth_server
        if w.api_url:
            last_api[p] = w.api_url
        payload = toml_data(paths.secrets.read_text(encoding="utf-8"))["credentials"][p]["token_payload"]
        assert payload == newest[p].tokens.payload()
        assert not [
            b for b in result.backups if ".corrupt-" in b.name
        ]  # valid files are merged, never backed up as corrupt

    after_text = {which: getattr(paths, which).read_text(encoding="utf-8") for which in ("settings", "secrets")}
    after = {which: toml_data(text) for which, text in after_text.items()}
    for text in after_text.values():
        tomllib.loads(text)  # still valid TOML for a strict parser
    ours = set(profiles)
    had_dpn = "default_profile_name" in before["settings"]
    for which in ("settings", "secrets"):
        assert strip_ours(after[which], ours, which, had_dpn) == strip_ours(before[which], ours, which, had_dpn)
        doc = getattr(case, which)
        if not doc.absent:
            for group in doc.groups:
                assert_lines_kept_in_order(doc.kept(group), after_text[which])

    for p in ours:
        snap = CredentialStore(paths, profile=p).read()
        assert snap.errors == []
        assert snap.token_payload == newest[p].tokens.payload()
        assert isinstance(snap.token_payload.get("expires_in", 0), int)
        assert isinstance(snap.token_payload["updated_at"], str)
        assert parse_rfc3339(snap.token_payload["updated_at"]) == newest[p].tokens.updated_at
        assert not set(snap.credentials) - {"token_payload"}  # exactly one credential kind
        prof = snap.profile_table
        old_prof = before["settings"].get("profiles", {}).get(p, {})
        assert prof["auth_server_name"] == p and prof["credentials_name"] == p
        assert prof["api_url"] == last_api.get(p, old_prof.get("api_url", QCS_API_URL))
        assert prof["grpc_api_url"] == old_prof.get("grpc_api_url", QCS_GRPC_API_URL)
        old_server = before["settings"].get("auth_servers", {}).get(p, {})
        server = last_server.get(p)
        assert snap.auth_server == {
            **old_server,
            "client_id": server.client_id if server else old_server.get("client_id", QCS_CLIENT_ID),
            "issuer": server.issuer if server else old_server.get("issuer", QCS_ISSUER),
        }
        assert not snap.auth_server["issuer"].endswith("/")
    return {"paths": paths, "profiles": sorted(ours)}


@SETTINGS_SETTINGS
@given(case=cases())
def test_merge_keeps_everything_else_and_round_trips_ours(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_case(case, Path(tmp))


@SETTINGS_SETTINGS
@given(case=cases())
def test_merge_is_idempotent(case: Case) -> None:
    """Replaying the same writes changes no byte: nothing accumulates, nothing is reordered."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = run_case(case, Path(tmp))["paths"]
        first = (paths.settings.read_bytes(), paths.secrets.read_bytes())
        for w in case.writes:
            CredentialStore(paths, profile=w.profile).install(w.tokens, auth_server=w.auth_server, api_url=w.api_url)
        again = (paths.settings.read_bytes(), paths.secrets.read_bytes())
        for old, new in zip(first, again, strict=True):
            assert toml_data(new.decode()) == toml_data(old.decode())
        # Bytes too, unless a replay legitimately rewrites: a tie in exp (the later token wins again) or
        # an auth server / API URL that an earlier write set and a later one changed.
        exps = [(w.profile, w.exp) for w in case.writes]
        if len(set(exps)) == len(exps):
            assert again[1] == first[1]
        if all(w.auth_server is None and w.api_url is None for w in case.writes):
            assert again[0] == first[0]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_official_client_loads_generated_documents(seed: int) -> None:
    """Not a hypothesis test (each check starts the official client in a subprocess): a few seeded documents."""
    case = make_case(RandSource(seed))
    with tempfile.TemporaryDirectory() as tmp:
        result = run_case(case, Path(tmp))
        paths: QCSPaths = result["paths"]
        env = {
            **os.environ,
            "HOME": tmp,
            "QCS_SETTINGS_FILE_PATH": str(paths.settings),
            "QCS_SECRETS_FILE_PATH": str(paths.secrets),
        }
        for profile in result["profiles"]:
            check = check_with_sdk(profile, env=env)
            if not check["available"]:
                pytest.skip("qcs-api-client-common is not installed")
            assert check["ok"] is True, (profile, check, paths.settings.read_text(), paths.secrets.read_text())
