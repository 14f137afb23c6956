#!/usr/bin/env bash
# Set up and run every check: Python and TypeScript lint/format, labextension unit tests, the docs, then the
# whole pytest suite in two runs (the unit tests in random order, pytest-randomly, the seed printed; then the
# end-to-end tests with a real IdP, hub and browser, in file order), the Hub, server and credentials tests at every
# dependency floor (scripts/test-lowest.sh, run beside the lint, jest and docs stages) and the unit tests on Python
# 3.10, the oldest supported. The pytest runs list their 15 slowest tests. Extra arguments go to the pytest runs:
# the suite is then one run, in file order, of what they select; the 3.10 run takes them too. Each stage says how
# long it took, and a summary of the times ends the run, also a failed one.
#
# Python 3.10 comes from $PYTHON310, else pyenv's newest 3.10.x, else python3.10 on PATH (scripts/setup.sh makes
# .venv-py310 with it). Without one the run fails in CI (CI=true) and is skipped with a warning elsewhere. A pytest
# run that selects no test (exit 5) fails.
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
  local status=$? pid
  [ -n "$STAGE" ] && [ "$status" -ne 0 ] && STAGE="$STAGE (failed)"
  end_stage
  for pid in "${BACKGROUND[@]}"; do  # a run that failed early leaves nothing running behind it
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$BACKGROUND_LOGS"
  echo "== time per stage"
  printf '%s\n' "${TIMES[@]}"
  echo "$(printf '%6d s' "$SECONDS")  in all"
  exit "$status"
}
# Parts that run in the background, beside the stages: `beside NAME COMMAND...` starts one, its output into a log;
# `await NAME` waits for it, prints that log (with the part's own time) and fails the run if the part failed.
declare -A BACKGROUND=()
BACKGROUND_LOGS=$(mktemp -d)
trap summary EXIT
beside() {
  local name=$1
  shift
  (
    began=$SECONDS status=0
    "$@" || status=$?
    echo "-- $name: exit $status, $((SECONDS - began)) s (beside the stages)"
    exit "$status"
  ) >"$BACKGROUND_LOGS/$name.log" 2>&1 &
  BACKGROUND[$name]=$!
}
await() {
  local name=$1 status=0
  wait "${BACKGROUND[$name]}" || status=$?
  unset "BACKGROUND[$name]"
  cat "$BACKGROUND_LOGS/$name.log"
  return "$status"
}

stage "setup"
bash scripts/setup.sh --no-user-image
export PATH="$PWD/.venv/bin:$PATH"  # jlpm and jupyter-builder for the labextension scripts
# The Docker tests' user image (the wheel, JupyterLab and pyQuil on the Debian base setup.sh made) builds beside
# the stages up to the end-to-end tests, which wait for it.
beside "Docker user image" .venv/bin/python -m devstack.docker
# The floors run waits (on the Hubs and servers it starts) more than it computes: beside the lint, jest and docs
# stages, which compute and start no server.
beside "dependency floors" bash scripts/test-lowest.sh
stage "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
stage "labextension: eslint, prettier, typecheck, jest"
(cd labextension && ../.venv/bin/jlpm lint:check && ../.venv/bin/jlpm typecheck && ../.venv/bin/jlpm test --silent)
stage "docs"; bash scripts/docs.sh  # the documentation site: warnings are errors, internal links and anchors checked
stage "pytest: Hub, server and credentials at every dependency floor (the rest of its time)"
await "dependency floors"

# The unit tests on Python 3.10, the oldest supported (.venv-py310, made by scripts/setup.sh). Arguments select
# as for the main run; they may leave nothing here (only e2e tests): that is said, not passed as an empty run.
py310_tests() {
  local venv=.venv-py310 collected=0
  if ! "$venv/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    if [ "${CI:-}" = "true" ]; then
      echo "error: no Python 3.10 found (set PYTHON310, or install it with pyenv); the 3.10 run is required in CI" >&2
      return 1
    fi
    echo "warning: no Python 3.10 found (set PYTHON310 or install it with pyenv); skipping the 3.10 run" >&2
    return 0
  fi
  "$venv/bin/python" -c 'import sys; print("Python", sys.version.split()[0])'
  if [ $# -eq 0 ]; then
    "$venv/bin/python" -m pytest -m "not e2e" --ignore=tests/e2e --durations=15 tests
    return
  fi
  "$venv/bin/python" -m pytest -m "not e2e" --collect-only -q "$@" >/dev/null 2>&1 || collected=$?
  if [ "$collected" -eq 5 ]; then
    echo "note: the arguments select no unit test; the 3.10 run is skipped"
    return 0
  fi
  "$venv/bin/python" -m pytest -m "not e2e" --durations=15 "$@"
}

if [ $# -eq 0 ]; then
  # The two runs together are the whole suite: the unit tests are everything outside tests/e2e not marked e2e,
  # the end-to-end tests everything marked e2e (tests/e2e/conftest.py marks all of tests/e2e).
  # No unit test may depend on the order of the others. The seed is in the output ("Using --randomly-seed=N"):
  # .venv/bin/python -m pytest -p randomly --randomly-seed=N -m "not e2e" --ignore=tests/e2e tests reruns that order.
  stage "pytest: unit tests in random order"
  .venv/bin/python -m pytest -p randomly -m "not e2e" --ignore=tests/e2e --durations=15 tests
  stage "Docker user image (the rest of its time)"
  await "Docker user image"
  stage "pytest: end-to-end tests"
  .venv/bin/python -m pytest -m e2e --durations=15 tests
else
  stage "Docker user image (the rest of its time)"
  await "Docker user image"
  stage "pytest"
  .venv/bin/python -m pytest --durations=15 "$@"
fi
stage "Python 3.10: unit tests"
py310_tests "$@"
