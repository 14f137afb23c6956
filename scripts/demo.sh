#!/usr/bin/env bash
# Set up and start the demo: a local identity provider, JupyterHub with QCSAuthenticator and JupyterLab, on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python devstack/run.py "$@"
