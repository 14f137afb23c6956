#!/usr/bin/env bash
# Set up and run every check: Python and TypeScript lint/format, labextension unit tests, the whole pytest
# suite (unit, server, end-to-end with a real IdP, hub and browser), then the unit tests (no e2e) again on
# Python 3.10, the oldest supported. Extra arguments go to both pytest runs.
#
# Python 3.10 comes from $PYTHON310, else pyenv's newest 3.10.x, else python3.10 on PATH. Without one the run
# fails in CI (CI=true) and is skipped with a warning elsewhere.
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

echo "== Python 3.10: unit tests"
find_python310() {
  if [ -n "${PYTHON310:-}" ]; then echo "$PYTHON310"; return; fi
  local root found
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  found=$(ls -d "$root"/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$found" ]; then echo "$found"; return; fi
  command -v python3.10 || true
}
PY310=$(find_python310)
if [ -z "$PY310" ] || ! "$PY310" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: no Python 3.10 found (set PYTHON310, or install it with pyenv); the 3.10 run is required in CI" >&2
    exit 1
  fi
  echo "warning: no Python 3.10 found (set PYTHON310 or install it with pyenv); skipping the 3.10 run" >&2
  exit 0
fi
VENV310=.venv-py310
if [ ! -x "$VENV310/bin/python" ]; then
  "$PY310" -m venv "$VENV310"
fi
# Reinstall only when the dependencies may have changed (the editable install follows the sources).
stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$VENV310/.qcs-installed" 2>/dev/null)" != "$stamp" ]; then
  "$VENV310/bin/python" -m pip install -q --upgrade pip
  "$VENV310/bin/python" -m pip install -q -e ".[test]"
  echo "$stamp" >"$VENV310/.qcs-installed"
fi
"$VENV310/bin/python" -c 'import sys; print("Python", sys.version.split()[0])'
status=0
if [ $# -gt 0 ]; then
  "$VENV310/bin/python" -m pytest -m "not e2e" "$@" || status=$?
else
  "$VENV310/bin/python" -m pytest -m "not e2e" --ignore=tests/e2e tests || status=$?
fi
# 5: the arguments selected only end-to-end tests, which the 3.10 run leaves out.
if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
  exit "$status"
fi
