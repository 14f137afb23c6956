"""Issue 9: a QCS client held in a kernel keeps working across access-token expiries, with the real clients.

pyQuil 4.22 and qcs-sdk-python 0.31 keep their access token inside the client object and never re-read
``~/.qcs``; on a 401 from the API they refresh once, at the issuer ``settings.toml`` names, and retry. Here a kernel
of each (its own venv, a kernelspec the spawned server sees) holds one client and keeps calling a stand-in QCS API
that checks every token at the IdP, for at least two expiries; then a new process in the kernel works too. The
Hub serves https (qcs-sdk-python 0.31 refreshes only at an https issuer) and is the only holder of the real
refresh token. Rotation on and off, public and confidential Hub client; one stack per shape, serving both
clients (two users) at once. The held ``get_qc()``'s gRPC calls renew their token only 60 s past its expiry, on
the client's side alone (the same refresh at the Hub's issuer as the held client's, whatever the shape): one shape
waits that out and proves the renewal; the others check the held ``get_qc()`` up to there.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time
from typing import Any

import pytest
import tomlkit

from devstack.localhub import CLIENT_VENVS
from devstack.qcsapi import CALIBRATIONS

from .conftest import spawn, stack
from .kernels import PYQUIL, QCS_SDK, RESULT_MARK, Kernel

PROCESSORS = "/v1/quantumProcessors"  # what list_quantum_computers / list_quantum_processors call
GRPC_LEEWAY = 60  # s: pyQuil 4.22's core takes a token as valid until exp + 60 s (and refreshes only then)
QPU = "Ankaa-9Q-3"  # one the stand-in QCS API serves (its instruction set architecture and calibrations)
TTL = 15  # short access tokens: the held clients cross two expiries in about 1.5 TTL (the Hub refreshes early)
USERS = {PYQUIL: "ada", QCS_SDK: "bob"}

# Per kernelspec: load the client as a notebook would and one API call with it. pyQuil also holds a quantum
# computer from get_qc() (which loads its own client and reads the QPU's instruction set architecture), used again
# and again: its compiler fetches the QPU's calibration program over gRPC with that held client (qc_probe).
SETUP = {
    PYQUIL: f"""
import time
from pyquil import get_qc, list_quantum_computers
from pyquil.api import QCSClient

client = QCSClient.load()
qc = get_qc({QPU!r})

def api_call():
    return list_quantum_computers(qpus=True, qvms=False, client_configuration=client)

def qc_probe():
    try:
        calibrations = str(qc.compiler.get_calibration_program(force_refresh=True))
        error = None if "DEFCAL RX" in calibrations else f"unexpected calibrations: {{calibrations[:200]}}"
    except Exception as e:
        error = f"{{type(e).__name__}}: {{e}} ({{e.__cause__!r}})"[:600]
    return {{"at": time.time(), "error": error}}
""",
    QCS_SDK: """
from qcs_sdk.client import QCSClient
from qcs_sdk.qpu import list_quantum_processors

client = QCSClient.load()

def api_call():
    return list_quantum_processors(client=client, timeout=30)
""",
}
COMMON = """
import json, os, subprocess, sys, time

def probe():
    started = time.perf_counter()
    try:
        names, error = api_call(), None
    except Exception as e:
        names, error = None, f"{type(e).__name__}: {e}"
    return {"at": time.time(), "names": names, "error": error, "seconds": time.perf_counter() - started}

def report(value):
    print(MARK + json.dumps(value), flush=True)

report({
    "issuer": client.oauth_session.auth_server.issuer,
    "client_id": client.oauth_session.auth_server.client_id,
    "api_url": client.api_url,
    "secrets_read_only": os.environ.get("QCS_SECRETS_READ_ONLY"),
})
"""
# A fresh process loads the files anew; the client's runtime may crash at interpreter exit, hence os._exit.
NEW_PROCESS = """
child = SETUP + '''
import json, os
try:
    print(json.dumps({"issuer": client.oauth_session.auth_server.issuer, "names": api_call()}), flush=True)
finally:
    os._exit(0)
'''
done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
report({"returncode": done.returncode, "stdout": done.stdout[-2000:], "stderr": done.stderr[-2000:]})
"""

# Ask the issuer in settings.toml for a new access token at once, as the client does after a 401.
FORCE_REFRESH = """
import json, os
from qcs_sdk.client import QCSClient
try:
    QCSClient.load().oauth_session.request_access_token()
    print(json.dumps({"refreshed": True}), flush=True)
except Exception as e:
    print(json.dumps({"refreshed": False, "error": f"{type(e).__name__}: {e}"[:500]}), flush=True)
finally:
    os._exit(0)
"""

# (rotate, client_secret, grpc_renewal): whether the run waits for the held get_qc()'s gRPC renewal.
SHAPES = [
    pytest.param(True, None, False, id="rotation-public"),
    pytest.param(True, "qcs-confidential-secret", True, id="rotation-confidential"),
    pytest.param(False, None, False, id="no-rotation-public"),
    pytest.param(False, "qcs-confidential-secret", False, id="no-rotation-confidential"),
]


def hold_client(hub, kernel: Kernel, user: str, *, grpc_renewal: bool = False) -> dict[str, Any]:
    """Load one client in the kernel, call the API every second until the API has accepted three different
    access tokens of ``user`` (two expiries crossed) or time runs out; then a new process calls once.
    ``grpc_renewal`` (pyQuil): also until the held get_qc()'s gRPC calls work with a second token."""
    kernel.run(f"MARK = {RESULT_MARK!r}\nSETUP = {SETUP[kernel.kernel_name]!r}\n" + SETUP[kernel.kernel_name])
    loaded = kernel.call(COMMON)
    probes, qc_probes = [], []
    grpc_renewal = grpc_renewal and kernel.kernel_name == PYQUIL
    # pyQuil's gRPC path refreshes only once its token is past the client's 60 s leeway: give it one such wait.
    deadline = time.monotonic() + 4 * TTL + 30 + (GRPC_LEEWAY + TTL if grpc_renewal else 0)
    while time.monotonic() < deadline:
        probes.append(kernel.call("report(probe())"))
        if kernel.kernel_name == PYQUIL:
            qc_probes.append(kernel.call("report(qc_probe())"))
        held_qc = not grpc_renewal or (
            len(accepted_tokens(hub, user, CALIBRATIONS)) >= 2 and qc_probes[-1]["error"] is None
        )
        if len(accepted_tokens(hub, user, PROCESSORS)) >= 3 and held_qc:
            break
        time.sleep(1.0)
    accepted_before = hub.qcs_api.counts(user)["accepted"]
    new_process = kernel.call(NEW_PROCESS, timeout=150)
    return {
        "loaded": loaded,
        "probes": probes,
        "qc_probes": qc_probes,
        "new_process": new_process,
        "new_process_accepted": hub.qcs_api.counts(user)["accepted"] - accepted_before,
    }


def force_refresh(hub, user: str) -> str:
    """A new pyQuil process with the user's files (as a kernel has them) forces a refresh; its JSON answer."""
    python = CLIENT_VENVS / "pyquil" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCS_")}
    env.update(HOME=str(hub.home(user)), SSL_CERT_FILE=str(hub.idp.ca_path), QCS_SECRETS_READ_ONLY="true")
    done = subprocess.run([str(python), "-c", FORCE_REFRESH], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def accepted_tokens(hub, user: str, path: str | None = None) -> list[tuple[str, float]]:
    """(fingerprint, exp) of each access token of ``user`` the API accepted (on ``path`` if given), in the order
    first seen."""
    seen: dict[str, float] = {}
    for call in hub.qcs_api.calls:
        if call.accepted and call.subject == user and call.token_fp not in seen and path in (None, call.path):
            seen[call.token_fp] = call.token_exp
    return list(seen.items())


@pytest.mark.parametrize(("rotate", "client_secret", "grpc_renewal"), SHAPES)
def test_held_clients_survive_expiries(tmp_path, rotate, client_secret, grpc_renewal):
    with stack(
        tmp_path, rotate=rotate, ttl=TTL, client_secret=client_secret, hub_https=True, qcs_api=True, client_kernels=True
    ) as hub:
        issuer = f"{hub.url}/hub/api/qcs/issuer"
        with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
            sessions = dict(zip(USERS.values(), pool.map(lambda u: spawn(hub, u), USERS.values()), strict=True))
        for user in USERS.values():
            settings = tomlkit.parse((hub.home(user) / ".qcs" / "settings.toml").read_text()).unwrap()
            assert settings["auth_servers"]["default"] == {"client_id": "qcs-public", "issuer": issuer}
            assert settings["profiles"]["default"]["api_url"] == hub.qcs_api.url

        with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
            kernels = {name: Kernel(hub, user, sessions[user], name, timeout=90) for name, user in USERS.items()}
            try:
                list(pool.map(lambda k: k.start(), kernels.values()))
                runs = dict(
                    zip(
                        kernels,
                        pool.map(
                            lambda item: hold_client(hub, item[1], USERS[item[0]], grpc_renewal=grpc_renewal),
                            kernels.items(),
                        ),
                        strict=True,
                    )
                )
            finally:
                for kernel in kernels.values():
                    kernel.shutdown()

        for name, run in runs.items():
            user = USERS[name]
            where = f"{name} kernel of {user}"
            # The client in the kernel loaded the Hub's issuer (QCSClient.load() silently falls back to QCS's
            # defaults when the files do not load) and will not write the files back.
            assert run["loaded"] == {
                "issuer": issuer,
                "client_id": "qcs-public",
                "api_url": hub.qcs_api.url,
                "secrets_read_only": "true",
            }, where
            failed = [p for p in run["probes"] if p["error"] or not p["names"]]
            assert not failed, f"{where}: API calls failed: {failed[:3]}"
            assert all(p["names"] == list(hub.qcs_api.processors) for p in run["probes"]), where

            # The held client crossed two expiries: the API refused each expired token, then accepted a new one.
            tokens = accepted_tokens(hub, user, PROCESSORS)  # the held client's (the held qc's: below)
            assert len(tokens) >= 3, f"{where}: the API saw {len(tokens)} access token(s), wanted 3"
            calls = [c for c in hub.qcs_api.calls if c.subject == user and c.path == PROCESSORS]
            for fp, exp in tokens[:2]:
                assert any(c.accepted and c.at > exp for c in calls), f"{where}: no accepted call after an expiry"
                assert any(not c.accepted and c.token_fp == fp for c in calls), (
                    f"{where}: the expired token was never refused, so the client did not hold it"
                )
            assert {c.reason for c in calls if not c.accepted} <= {"token not active", "token expired"}, where
            if name == PYQUIL:
                # The quantum computer from get_qc() at the start is still used after its token expired: its own
                # held client got a new access token (through the Hub's issuer) and works again (proven where the
                # run waited for it). Its gRPC calls do not refresh on UNAUTHENTICATED, only once the token is past
                # the client's 60 s leeway: in between the API refuses them. That window is all that may fail.
                qc_tokens = accepted_tokens(hub, user, CALIBRATIONS)
                assert run["qc_probes"][0]["error"] is None and qc_tokens, where
                if grpc_renewal:
                    assert len(qc_tokens) >= 2, f"{where}: the held get_qc() used {len(qc_tokens)} token(s), wanted 2"
                    assert run["qc_probes"][-1]["error"] is None, where
                rpc = [c for c in hub.qcs_api.calls if c.subject == user and c.path == CALIBRATIONS]
                outside = [c for c in rpc if not c.accepted and not c.token_exp < c.at <= c.token_exp + GRPC_LEEWAY + 5]
                assert not outside, f"{where}: gRPC calls refused outside the leeway window: {outside[:3]}"
                assert all("Unauthenticated" in p["error"] for p in run["qc_probes"] if p["error"]), where
                isa = f"/v1/quantumProcessors/{QPU}/instructionSetArchitecture"
                assert any(c.path == isa and c.accepted for c in hub.qcs_api.calls if c.subject == user), where

            # A new process in the same kernel reads the files anew and works too.
            new = run["new_process"]
            assert new["returncode"] == 0 and issuer in new["stdout"], f"{where}: {new}"
            assert run["new_process_accepted"] >= 1, where

            # The real refresh token never left the Hub: the file holds the Hub's session token.
            state = hub.auth_state(user)
            secrets_text = (hub.home(user) / ".qcs" / "secrets.toml").read_text()
            assert state["refresh_token"] not in secrets_text
            payload = tomlkit.parse(secrets_text).unwrap()["credentials"]["default"]["token_payload"]
            assert payload["refresh_token"] == hub.session_token(user) != state["refresh_token"]

        # The session refresh token in the files is good only while one of the user's servers runs.
        user = USERS[PYQUIL]
        assert '"refreshed": true' in force_refresh(hub, user)
        hub.api("DELETE", f"/users/{user}/server")
        hub.wait_for_server(user, ready=False)
        after_stop = force_refresh(hub, user)
        # pyQuil's core reports only the status of the Hub's invalid_grant answer.
        assert '"refreshed": false' in after_stop and "400 Bad Request" in after_stop, after_stop
        assert f"{issuer}/v1/token" in after_stop, after_stop

        # The kernels refreshed at the Hub's issuer (qcs-sdk-python 0.31 after discovery there), and with
        # rotation no refresh token was ever used twice at the IdP (that would have revoked the grant).
        log = hub.log_text()
        assert log.count("POST /hub/api/qcs/issuer/v1/token") >= 2 * len(USERS)
        assert "GET /hub/api/qcs/issuer/.well-known/openid-configuration" in log
        stats = hub.idp.stats()
        assert stats["refresh_failed"] == 0 and stats["refresh_ok"] >= 2, stats
