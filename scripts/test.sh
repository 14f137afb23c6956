#!/usr/bin/env bash
# Set up and run every check: Python and TypeScript lint/format, labextension unit tests, then the whole
# pytest suite (unit, server, end-to-end with a real IdP, hub and browser). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # jlpm and jupyter-builder for the labextension scripts
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== labextension: eslint, prettier, typecheck, jest"
(cd labextension && ../.venv/bin/jlpm lint:check && ../.venv/bin/jlpm typecheck && ../.venv/bin/jlpm test --silent)
echo "== pytest"
.venv/bin/python -m pytest "$@"
