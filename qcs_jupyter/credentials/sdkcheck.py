"""Ask the official QCS client (``qcs-api-client-common``) whether it can load the files.

The check runs in a child process: the client's runtime can crash the interpreter at exit, and a check
must never take its caller down with it. The child ends with ``os._exit(0)`` after printing one JSON line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

_CHILD = r"""
import json, os, sys
def done(out):
    sys.stdout.write(json.dumps(out) + "\n"); sys.stdout.flush(); os._exit(0)
try:
    from qcs_api_client_common.configuration import ClientConfiguration
except ImportError as e:
    done({"available": False, "ok": False, "error": f"qcs-api-client-common is not installed ({e})"})
profile, bearer = sys.argv[1], sys.argv[2] == "1"
try:
    cfg = ClientConfiguration.load_profile(profile) if profile else ClientConfiguration.load_default()
    out = {"available": True, "ok": True, "api_url": cfg.api_url, "grpc_api_url": cfg.grpc_api_url}
    if bearer:
        token = cfg.get_bearer_access_token()
        secret = getattr(token, "secret", token)
        value = secret() if callable(secret) else secret
        out["bearer_token_obtained"] = bool(value)
        if isinstance(value, str) and value:  # a one-way fingerprint: which token it used, never the token
            import hashlib
            out["bearer_token_fingerprint"] = "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
except BaseException as e:
    done({"available": True, "ok": False, "error": f"{type(e).__name__}: {e}"})
done(out)
"""


#: The client's deserialization errors quote the value they found (``found string "<a token>"``): drop it.
_FOUND_VALUE = re.compile(r'\b(found|invalid value:?) ([a-z][a-z ]*?) (?:"(?:[^"\\]|\\.)*"|`[^`]*`)')


def redact_values(message: str) -> str:
    """The client's error with any value it quotes from the files removed (the key path stays)."""
    return _FOUND_VALUE.sub(r"\1 \2", message)


def check_with_sdk(
    profile: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    get_bearer_token: bool = False,
    python: str = sys.executable,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Load ``profile`` (or the default) with the official client; optionally get a bearer token (may refresh).

    Returns ``{"available", "ok", "error"?, "api_url"?, "bearer_token_obtained"?, "bearer_token_fingerprint"?}``
    (the fingerprint as ``tokens.fingerprint`` makes it, to tell whether the client refreshed); never a token value.
    """
    try:
        proc = subprocess.run(
            [python, "-c", _CHILD, profile or "", "1" if get_bearer_token else "0"],
            env=dict(os.environ if env is None else env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"available": True, "ok": False, "error": f"the QCS client did not answer within {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            if isinstance(result.get("error"), str):
                result["error"] = redact_values(result["error"])
            return result
    return {
        "available": True,
        "ok": False,
        "error": redact_values(
            f"the QCS client check exited with code {proc.returncode}: {proc.stderr.strip()[-500:]}"
        ),
    }
