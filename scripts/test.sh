#!/usr/bin/env bash
# Set up and run every check: Python and TypeScript lint/format, labextension unit tests, the whole pytest
# suite in two runs (the unit tests in random order, pytest-randomly, the seed printed; then the end-to-end tests
# with a real IdP, hub and browser, in file order; each run lists its 15 slowest tests), the Hub, server and
# credentials tests at every dependency floor, then the unit tests (no e2e) again on Python 3.10, the oldest
# supported. Extra arguments go to the pytest runs: the suite is then one run, in file order, of what they select.
# Each stage says how long it took, and a summary of the times ends the run, also a failed one.
#
# Python 3.10 comes from $PYTHON310, else pyenv's newest 3.10.x, else python3.10 on PATH. Without one the run
# fails in CI (CI=true) and is skipped with a warning elsewhere. A pytest run that selects no test (exit 5) fails.
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE="" STAGE_START=0
TIMES=()
stage() {  # stage NAME: ends the stage before (recording its time) and starts NAME
  end_stage
  STAGE=$1 STAGE_START=$SECONDS
  echo "== $STAGE"
}
end_stage() {
  if [ -n "$STAGE" ]; then
    local took=$((SECONDS - STAGE_START))
    echo "-- $STAGE: ${took} s"
    TIMES+=("$(printf '%6d s  %s' "$took" "$STAGE")")
    STAGE=""
  fi
}
summary() {
  local status=$?
  [ -n "$STAGE" ] && STAGE="$STAGE (failed)"
  end_stage
  echo "== time per stage"
  printf '%s\n' "${TIMES[@]}"
  echo "$(printf '%6d s' "$SECONDS")  in all"
  exit "$status"
}
trap summary EXIT

stage "setup"
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # jlpm and jupyter-builder for the labextension scripts
stage "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
stage "labextension: eslint, prettier, typecheck, jest"
(cd labextension && ../.venv/bin/jlpm lint:check && ../.venv/bin/jlpm typecheck && ../.venv/bin/jlpm test --silent)
stage "docs"; bash scripts/docs.sh  # the documentation site: warnings are errors, internal links and anchors checked
if [ $# -eq 0 ]; then
  # The two runs together are the whole suite: the unit tests are everything outside tests/e2e not marked e2e,
  # the end-to-end tests everything marked e2e (tests/e2e/conftest.py marks all of tests/e2e).
  # No unit test may depend on the order of the others. The seed is in the output ("Using --randomly-seed=N"):
  # .venv/bin/python -m pytest -p randomly --randomly-seed=N -m "not e2e" --ignore=tests/e2e tests reruns that order.
  stage "pytest: unit tests in random order"
  .venv/bin/python -m pytest -p randomly -m "not e2e" --ignore=tests/e2e --durations=15 tests
  stage "pytest: end-to-end tests"
  .venv/bin/python -m pytest -m e2e --durations=15 tests
else
  stage "pytest"
  .venv/bin/python -m pytest --durations=15 "$@"
fi

stage "pytest: Hub, server and credentials at every dependency floor"
bash scripts/test-lowest.sh

stage "Python 3.10: unit tests"
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
if [ $# -gt 0 ]; then
  # Arguments that select only end-to-end tests leave nothing for this run: say so, rather than pass on an
  # empty run (pytest's exit 5 is never taken as success).
  collected=0
  "$VENV310/bin/python" -m pytest -m "not e2e" --collect-only -q "$@" >/dev/null 2>&1 || collected=$?
  if [ "$collected" -eq 5 ]; then
    echo "note: the arguments select no unit test; the 3.10 run is skipped"
    exit 0
  fi
  "$VENV310/bin/python" -m pytest -m "not e2e" --durations=15 "$@"
else
  "$VENV310/bin/python" -m pytest -m "not e2e" --ignore=tests/e2e --durations=15 tests
fi
