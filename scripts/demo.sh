#!/usr/bin/env bash
# Set up and start JupyterLab with qcs-jupyter over a throwaway home holding example QCS credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python demo/run.py "$@"
