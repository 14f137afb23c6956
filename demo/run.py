"""Demo: JupyterLab with qcs-jupyter over a throwaway home holding example QCS credentials.

Example credentials are self-signed JWTs (they work for the panel and the status, not against QCS).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from qcs_jupyter.credentials import CredentialStore, TokenSet


def example_tokens(user: str, ttl: int) -> TokenSet:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + ttl}
    return TokenSet(
        access_token=jwt.encode(claims, key, algorithm="RS256"),
        refresh_token="demo-refresh-token",
        id_token=jwt.encode({**claims, "name": user.title(), "email": f"{user}@example.org"}, key, algorithm="RS256"),
        scope="openid offline_access profile email",
        expires_in=ttl,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", default="ada")
    parser.add_argument("--ttl", type=int, default=3600, help="access-token lifetime of the example credentials (s)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="qcs-jupyter-demo-"))
    os.environ["HOME"] = str(home)
    for name in ("QCS_SETTINGS_FILE_PATH", "QCS_SECRETS_FILE_PATH", "QCS_PROFILE_NAME"):
        os.environ.pop(name, None)
    result = CredentialStore().install(example_tokens(args.user, args.ttl))
    port = args.port or free_port()
    print(f"Example credentials written to {result.settings_path} and {result.secrets_path}", flush=True)
    print(f"Open http://127.0.0.1:{port}/lab (token printed by JupyterLab below)", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--notebook-dir={home}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
