"""The ~/.qcs model: merge without loss, safe files, newer tokens win, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest
import tomlkit

from qcs_jupyter.credentials import AuthServer, CredentialFileError, CredentialStore, QCSPaths, TokenSet
from qcs_jupyter.credentials.store import METADATA_NAME
from qcs_jupyter.credentials.tokens import fingerprint
from qcs_jupyter.qcs import QCS_CLIENT_ID, QCS_ISSUER
from tests.helpers import read_only

USER_SETTINGS = """\
# my settings, keep this comment
default_profile_name = "prod"   # inline comment

[profiles.prod]
api_url = "https://api.example"
auth_server_name = "prod"
credentials_name = "prod"

[profiles.prod.applications.pyquil]
qvm_url = "http://127.0.0.1:5000"

[auth_servers.prod]
client_id = "prod-client"
issuer = "https://issuer.example/oauth2/x"
custom = [1, 2, 3]
"""

USER_SECRETS = """\
# secrets of other profiles
[credentials.prod.token_payload]
access_token = "prod-access"
refresh_token = "prod-refresh"
updated_at = "2020-01-01T00:00:00Z"

[credentials.robot.client_credentials]
client_id = "robot"
client_secret = "shh"
"""


def assert_lines_kept_in_order(original: str, result: str) -> None:
    remaining = iter(result.splitlines())
    for line in original.splitlines():
        assert any(candidate == line for candidate in remaining), f"lost or moved: {line!r}"


def install(tokens: TokenSet, profile: str | None = "default", **kw):
    return CredentialStore(profile=profile).install(tokens, **kw)


def test_fresh_install_modes_and_schema(qcs_dir, token_response):
    result = install(TokenSet.from_response(token_response()))
    assert result.tokens_written and result.settings_written
    assert stat.S_IMODE(qcs_dir.stat().st_mode) == 0o700
    for name in ("settings.toml", "secrets.toml", METADATA_NAME):
        assert stat.S_IMODE((qcs_dir / name).stat().st_mode) == 0o600, name
    settings = tomlkit.parse((qcs_dir / "settings.toml").read_text()).unwrap()
    assert settings["default_profile_name"] == "default"
    assert settings["profiles"]["default"] == {
        "api_url": "https://api.qcs.rigetti.com",
        "grpc_api_url": "https://grpc.qcs.rigetti.com",
        "auth_server_name": "default",
        "credentials_name": "default",
    }
    assert settings["auth_servers"]["default"] == {"client_id": QCS_CLIENT_ID, "issuer": QCS_ISSUER}
    payload = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()["credentials"]["default"]["token_payload"]
    assert isinstance(payload["expires_in"], int)
    assert isinstance(payload["updated_at"], str) and payload["updated_at"].endswith("Z")
    assert payload["refresh_token"] == "refresh-token-value-1"


def test_merge_keeps_every_other_byte(home, qcs_dir, token_response):
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "settings.toml").write_text(USER_SETTINGS)
    (qcs_dir / "secrets.toml").write_text(USER_SECRETS)
    install(
        TokenSet.from_response(token_response()),
        profile="default",
        auth_server=AuthServer("https://idp.example/o/", "pub"),
    )
    settings_text = (qcs_dir / "settings.toml").read_text()
    secrets_text = (qcs_dir / "secrets.toml").read_text()
    # Every line the user had is still there, byte for byte, in the same order.
    assert_lines_kept_in_order(USER_SETTINGS, settings_text)
    assert_lines_kept_in_order(USER_SECRETS, secrets_text)
    assert tomlkit.parse(secrets_text).unwrap()["credentials"]["robot"] == {
        "client_credentials": {"client_id": "robot", "client_secret": "shh"}
    }
    settings = tomlkit.parse(settings_text).unwrap()
    assert settings["default_profile_name"] == "prod"  # the user's choice is theirs
    assert settings["auth_servers"]["default"] == {"client_id": "pub", "issuer": "https://idp.example/o"}


def test_rewrite_updates_only_our_keys_in_place(qcs_dir, token_response):
    install(TokenSet.from_response(token_response(refresh="r1")))
    settings = qcs_dir / "settings.toml"
    settings.write_text(
        settings.read_text().replace('credentials_name = "default"', 'credentials_name = "default"\n# mine\nextra = 1')
    )
    before = settings.read_text()
    install(TokenSet.from_response(token_response(exp_in=7200, refresh="r2")))
    assert settings.read_text() == before  # nothing of ours changed in settings: not rewritten differently
    payload = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()["credentials"]["default"]["token_payload"]
    assert payload["refresh_token"] == "r2"


def test_never_replaces_newer_tokens(qcs_dir, token_response):
    newer = token_response(exp_in=7200, refresh="newer")
    install(TokenSet.from_response(newer))
    result = install(TokenSet.from_response(token_response(exp_in=3600, refresh="older")))
    assert result.kept_newer and not result.tokens_written
    payload = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()["credentials"]["default"]["token_payload"]
    assert payload["access_token"] == newer["access_token"]
    assert payload["refresh_token"] == "newer"


def test_same_tokens_keep_updated_at(qcs_dir, token_response):
    tokens = token_response()
    install(TokenSet.from_response(tokens))
    first = (qcs_dir / "secrets.toml").read_text()
    result = install(TokenSet.from_response(tokens))
    assert not result.tokens_written
    assert (qcs_dir / "secrets.toml").read_text() == first


def test_other_credential_kind_replaced_and_reported(qcs_dir, token_response):
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "secrets.toml").write_text('[credentials.default.externally_managed]\ncommand = "x"\n')
    result = install(TokenSet.from_response(token_response()))
    doc = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()
    assert list(doc["credentials"]["default"]) == ["token_payload"]
    assert any("externally_managed" in n for n in result.notes)
    assert len(result.backups) == 1 and "externally_managed" in result.backups[0].read_text()


def test_refresh_token_age_is_recorded_once(qcs_dir, token_response):
    install(TokenSet.from_response(token_response(refresh="r1")))
    snap = CredentialStore().read()
    first, estimated = snap.refresh_token_obtained_at()
    assert first is not None and not estimated
    install(TokenSet.from_response(token_response(exp_in=7200, refresh="r1")))
    again, _ = CredentialStore().read().refresh_token_obtained_at()
    assert again == first  # same refresh token: its age does not restart
    meta = (qcs_dir / METADATA_NAME).read_text()
    assert "r1" not in meta and fingerprint("r1") in meta


def test_env_paths_and_profile_honoured(tmp_path, home, monkeypatch, token_response):
    monkeypatch.setenv("QCS_SETTINGS_FILE_PATH", str(tmp_path / "cfg" / "s.toml"))
    monkeypatch.setenv("QCS_SECRETS_FILE_PATH", str(tmp_path / "sec" / "x.toml"))
    monkeypatch.setenv("QCS_PROFILE_NAME", "lab")
    store = CredentialStore()
    assert store.paths == QCSPaths(tmp_path / "cfg" / "s.toml", tmp_path / "sec" / "x.toml", default_dir=False)
    result = store.install(TokenSet.from_response(token_response()))
    assert result.profile == "lab"
    assert "lab" in tomlkit.parse((tmp_path / "sec" / "x.toml").read_text())["credentials"]
    assert not (home / ".qcs").exists()


@pytest.mark.parametrize(
    ("setup", "kind"),
    [
        pytest.param(lambda d, o: (d / "secrets.toml").symlink_to(o), "symlink", id="symlinked-secrets"),
        pytest.param(lambda d, o: (d / "settings.toml").symlink_to(o), "symlink", id="symlinked-settings"),
        pytest.param(lambda d, o: (d / "secrets.toml").mkdir(), "not_a_file", id="secrets-is-directory"),
    ],
)
def test_refuses_odd_files_and_loses_nothing(qcs_dir, tmp_path, token_response, setup, kind):
    qcs_dir.mkdir(mode=0o700)
    outside = tmp_path / "outside.toml"
    outside.write_text("precious = true\n")
    setup(qcs_dir, outside)
    with pytest.raises(CredentialFileError) as err:
        install(TokenSet.from_response(token_response()))
    assert err.value.kind == kind and err.value.action
    assert outside.read_text() == "precious = true\n"


def test_symlinked_qcs_dir_refused(home, tmp_path, token_response):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (home / ".qcs").symlink_to(real)
    with pytest.raises(CredentialFileError) as err:
        install(TokenSet.from_response(token_response()))
    assert err.value.kind == "symlink"
    assert list(real.iterdir()) == []


def test_read_only_dir_clear_error(qcs_dir, token_response):
    install(TokenSet.from_response(token_response(refresh="r1")))
    before = (qcs_dir / "secrets.toml").read_text()
    with read_only(qcs_dir):
        with pytest.raises(CredentialFileError) as err:
            install(TokenSet.from_response(token_response(exp_in=7200, refresh="r2")))
        assert err.value.kind == "write_failed" and "writable" in err.value.action
    assert (qcs_dir / "secrets.toml").read_text() == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[credentials.default\naccess_token = 'x'", id="malformed-toml"),
        pytest.param(b"\xff\xfe not utf-8 \x80", id="non-utf8"),
    ],
)
def test_corrupt_file_backed_up_then_replaced(qcs_dir, token_response, content):
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "secrets.toml").write_bytes(content)
    result = install(TokenSet.from_response(token_response()))
    assert len(result.backups) == 1
    backup = result.backups[0]
    assert backup.parent == qcs_dir and backup.name.startswith("secrets.toml.corrupt-")
    assert backup.read_bytes() == content
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert "access_token" in (qcs_dir / "secrets.toml").read_text()


def test_wrong_type_in_our_slot_refused(qcs_dir, token_response):
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "settings.toml").write_text('profiles = "oops"\n')
    with pytest.raises(CredentialFileError) as err:
        install(TokenSet.from_response(token_response()))
    assert err.value.kind == "invalid" and "profiles" in err.value.message
    assert (qcs_dir / "settings.toml").read_text() == 'profiles = "oops"\n'


def test_full_disk_reports_and_keeps_old_file(qcs_dir, token_response, monkeypatch):
    install(TokenSet.from_response(token_response(refresh="r1")))
    before = (qcs_dir / "secrets.toml").read_text()
    real_write = os.write

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(CredentialFileError) as err:
        install(TokenSet.from_response(token_response(exp_in=7200, refresh="r2")))
    monkeypatch.setattr(os, "write", real_write)
    assert "disk space" in err.value.action
    assert (qcs_dir / "secrets.toml").read_text() == before
    assert not [p for p in qcs_dir.iterdir() if p.name.endswith(".tmp")]


def _profile_writer(args):
    home, profile, access = args
    os.environ["HOME"] = home
    for _ in range(10):
        CredentialStore(profile=profile).install(TokenSet(access_token=access, refresh_token=f"r-{profile}"))
    return profile


def test_concurrent_writers_lose_nothing_threads_and_processes(home, qcs_dir):
    profiles = [f"p{i}" for i in range(6)]
    # A thread's exception would only be printed: collect what each thread returned or raised instead.
    outcomes: dict[str, object] = {}

    def thread_writer(args):
        try:
            outcomes[args[1]] = _profile_writer(args)
        except BaseException as e:
            outcomes[args[1]] = e

    threads = [threading.Thread(target=thread_writer, args=((str(home), p, f"access-{p}"),)) for p in profiles[:3]]
    for t in threads:
        t.start()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        done = pool.map(_profile_writer, [(str(home), p, f"access-{p}") for p in profiles[3:]], chunksize=1)
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a writer thread did not finish within 60 s"
    assert outcomes == {p: p for p in profiles[:3]}
    assert done == profiles[3:]
    secrets = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()["credentials"]
    settings = tomlkit.parse((qcs_dir / "settings.toml").read_text()).unwrap()["profiles"]
    assert sorted(secrets) == profiles == sorted(settings)
    for p in profiles:
        assert secrets[p]["token_payload"]["access_token"] == f"access-{p}"


def test_sdk_write_during_merge_is_not_lost(qcs_dir, token_response, monkeypatch):
    """The SDK rewrites secrets.toml without our lock; a merge that raced it starts over."""
    install(TokenSet.from_response(token_response(refresh="r1")))
    sdk_tokens = token_response(exp_in=9000, refresh="sdk-rotated")
    from qcs_jupyter.credentials import store as store_mod

    calls = {"n": 0}
    real = store_mod._merge_secrets

    def racing(doc, profile, tokens, path):
        calls["n"] += 1
        if calls["n"] == 1:  # the SDK writes its refresh right after we read
            other = CredentialStore(profile="default")
            monkeypatch.setattr(store_mod, "_merge_secrets", real)
            other.install(TokenSet.from_response(sdk_tokens))
            monkeypatch.setattr(store_mod, "_merge_secrets", racing)
        return real(doc, profile, tokens, path)

    monkeypatch.setattr(store_mod, "_merge_secrets", racing)
    monkeypatch.setattr(store_mod.safefile, "writer_lock", _no_lock)
    result = install(TokenSet.from_response(token_response(exp_in=3600, refresh="hub")))
    payload = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()["credentials"]["default"]["token_payload"]
    assert payload["refresh_token"] == "sdk-rotated"
    assert result.kept_newer and calls["n"] >= 2


def _no_lock(_dir: Path):
    import contextlib

    return contextlib.nullcontext()


def test_default_profile_name_added_top_level_before_tables(qcs_dir, token_response):
    qcs_dir.mkdir(mode=0o700)
    original = '# mine\n[profiles.other]\napi_url = "https://x"\n'
    (qcs_dir / "settings.toml").write_text(original)
    install(TokenSet.from_response(token_response()), profile=None)
    text = (qcs_dir / "settings.toml").read_text()
    doc = tomlkit.parse(text).unwrap()
    assert doc["default_profile_name"] == "default" and doc["profiles"]["other"] == {"api_url": "https://x"}
    assert text.index("default_profile_name") < text.index("[profiles.other]")
    assert_lines_kept_in_order(original, text)


def test_absurd_exp_does_not_freeze_the_file(qcs_dir, make_jwt):
    """A file token claiming to live for decades is no issuer's: the Hub's fresh token replaces it."""
    install(TokenSet(access_token=make_jwt(50 * 365 * 86400), refresh_token="r1"))
    fresh = make_jwt(3600)
    result = install(TokenSet(access_token=fresh, refresh_token="r1"))
    assert result.tokens_written and not result.kept_newer
    payload = tomlkit.parse((qcs_dir / "secrets.toml").read_text()).unwrap()["credentials"]["default"]["token_payload"]
    assert payload["access_token"] == fresh


def test_plausibly_newer_token_still_wins(qcs_dir, make_jwt):
    newer = make_jwt(7200)
    install(TokenSet(access_token=newer, refresh_token="r1"))
    assert install(TokenSet(access_token=make_jwt(3600), refresh_token="r1")).kept_newer


def test_backups_are_pruned_to_the_newest_three(qcs_dir, token_response):
    install(TokenSet.from_response(token_response()))
    kept = []
    for i in range(6):
        (qcs_dir / "secrets.toml").write_text(f"broken {i} = [\n")
        result = install(TokenSet.from_response(token_response(exp_in=3600 + i)))
        kept += result.backups
    names = sorted(p.name for p in qcs_dir.glob("secrets.toml.corrupt-*"))
    assert names == sorted(p.name for p in kept[-3:])
    assert [p.read_text() for p in sorted(qcs_dir.glob("secrets.toml.corrupt-*"))] == [
        f"broken {i} = [\n" for i in (3, 4, 5)
    ]
    assert (qcs_dir / "settings.toml").exists()  # only backups are pruned


def test_pruning_leaves_other_files_alone(qcs_dir):
    from qcs_jupyter.credentials import safefile

    qcs_dir.mkdir(mode=0o700)
    names = [f"secrets.toml.replaced-2026010{i}T000000000000Z" for i in range(1, 6)]
    for name in [*names, "secrets.toml.corrupt-mine", "settings.toml.corrupt-20260101T000000000000Z"]:
        (qcs_dir / name).write_text("x")
    (qcs_dir / "secrets.toml.corrupt-20260109T000000000000Z").mkdir()  # not a regular file: never removed
    fd = os.open(qcs_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        removed = safefile.prune_backups(fd, "secrets.toml")
    finally:
        os.close(fd)
    assert sorted(removed) == names[:2]
    left = {p.name for p in qcs_dir.iterdir()}
    assert {"secrets.toml.corrupt-mine", "settings.toml.corrupt-20260101T000000000000Z", *names[2:]} <= left


def test_hub_managed_age_is_the_real_refresh_tokens(qcs_dir, make_jwt):
    """Under JupyterHub the file's refresh token is the Hub's session token; the age is the real one's."""
    from datetime import datetime, timedelta, timezone

    real_obtained = datetime(2026, 9, 1, tzinfo=timezone.utc)
    tokens = TokenSet(
        access_token=make_jwt(3600),
        refresh_token="session-1",
        managed_by="jupyterhub",
        refresh_token_obtained_at=real_obtained,
        updated_at=datetime.now(timezone.utc) - timedelta(minutes=1),
    )
    install(tokens)
    assert CredentialStore().read().refresh_token_obtained_at() == (real_obtained, False)
    meta = (qcs_dir / METADATA_NAME).read_text()
    assert "session-1" not in meta


def test_stale_temp_files_removed_under_the_lock_only_ours(qcs_dir, token_response):
    qcs_dir.mkdir(mode=0o700)
    ours = [
        ".secrets.toml.0123456789ab.tmp",
        ".settings.toml.ba9876543210.tmp",
        ".secrets.toml.corrupt-x.00aa11bb22cc.tmp",
    ]
    theirs = [".secrets.toml.tmp", "notes.0123456789ab.tmp", ".secrets.toml.0123456789AB.tmp", ".x.0123.tmp"]
    for name in ours + theirs:
        (qcs_dir / name).write_text("access-token-from-a-killed-writer")
    (qcs_dir / ".dir.0123456789ab.tmp").mkdir()
    install(TokenSet.from_response(token_response()))
    left = {p.name for p in qcs_dir.iterdir()}
    assert not set(ours) & left
    assert {*theirs, ".dir.0123456789ab.tmp"} <= left


def test_reads_see_every_change_of_either_file(qcs_dir):
    """An unchanged file is not parsed again (its values are kept with its inode, time, size and text); a file
    changed in any of those, even one rewritten in place with the same time and size, is read afresh."""
    qcs_dir.mkdir(mode=0o700)
    settings, secrets = qcs_dir / "settings.toml", qcs_dir / "secrets.toml"
    settings.write_text(USER_SETTINGS)
    secrets.write_text(USER_SECRETS)
    secrets.chmod(0o600)
    first = CredentialStore().read()
    assert first.secrets["credentials"]["prod"]["token_payload"]["access_token"] == "prod-access"
    secrets.write_text(USER_SECRETS.replace("prod-access", "next-access"))
    second = CredentialStore().read()
    assert second.settings == first.settings and not second.errors
    assert second.secrets["credentials"]["prod"]["token_payload"]["access_token"] == "next-access"
    st = os.stat(settings)
    with open(settings, "r+") as f:  # same inode and size; the time put back
        f.write(USER_SETTINGS.replace('"prod"', '"test"', 1))
    os.utime(settings, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert CredentialStore().read().settings["default_profile_name"] == "test"


def test_a_refused_directory_is_named_once_for_both_files(qcs_dir):
    qcs_dir.mkdir(mode=0o700)
    (qcs_dir / "settings.toml").write_text(USER_SETTINGS)
    qcs_dir.chmod(0o777)
    snap = CredentialStore().read()
    assert snap.settings_exists and snap.secrets_exists
    assert len(snap.errors) == 1 and snap.errors[0].kind == "unsafe_dir"
