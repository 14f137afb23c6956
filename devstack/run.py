"""Demo: a local identity provider, JupyterHub with QCSAuthenticator, and JupyterLab with the QCS panel.

Everything runs on 127.0.0.1 (the IdP over plain http so browsers show no certificate warning). Log in as anyone with any password; your server starts with ~/.qcs written
(homes live in a temporary directory) and JupyterLab opens with the "QCS credentials" panel.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.localhub import local_stack
from devstack.localidp import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--port", type=int, default=8000, help="Hub port on 127.0.0.1 (default 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--ttl", type=int, default=300, help="access-token lifetime in seconds (short, to watch live refresh)"
    )
    parser.add_argument("--rotate", action="store_true", help="rotate refresh tokens at the IdP (as Okta can)")
    parser.add_argument("--workdir", type=Path, default=None, help="where homes, logs and the Hub database go")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qcs-jupyter-demo-"))
    port = args.port or free_port()
    with local_stack(
        workdir,
        https=False,
        ttl=args.ttl,
        rotate=args.rotate,
        port=port,
        refresh_margin=max(10, args.ttl // 5),
        sync_margin=max(5, args.ttl // 6),
    ) as hub:
        idp = hub.idp
        print(
            f"\n  qcs-jupyter demo is running.\n"
            f"  Open {hub.url}/hub/login and sign in as anyone (any password).\n"
            f"  Identity provider: {idp.issuer}\n"
            f"  User homes (see ~/.qcs): {hub.homes}\n"
            f"  Logs: {hub.log_path}\n"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while hub.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
