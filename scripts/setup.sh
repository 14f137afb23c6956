#!/usr/bin/env bash
# Set up everything the demo and the tests need, idempotently:
#   Debian's chromium (browser tests), .venv with qcs-jupyter (editable, labextension built) and its test
#   extras, and the Node packages of the local identity provider, the proxy and the labextension; for the tests
#   also the real QCS clients' venvs, what the tests install (devstack/artifacts.py), the Docker user image, the
#   dependency-floor venv (.venv-lowest) and the Python 3.10 venv (.venv-py310).
# Steps that need nothing of each other run at the same time: first the Debian
# packages, .venv, the client venvs and the Node packages; once .venv and the Debian packages are there, the rest.
# --no-user-image: everything but the Docker user image (scripts/test.sh builds it beside its first stages).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
USER_IMAGE=true
if [ "${1:-}" = "--no-user-image" ]; then
  USER_IMAGE=false
fi

JOBS=() JOB_NAMES=()
start() {  # start NAME COMMAND...: run a set-up step in the background
  local name=$1
  shift
  "$@" &
  JOBS+=("$!") JOB_NAMES+=("$name")
}
finish() {  # finish [NAME...]: wait for the named steps (all when none is named); fail if one of them failed
  local i failed=0
  for i in "${!JOBS[@]}"; do
    if [ $# -eq 0 ] || [[ " $* " == *" ${JOB_NAMES[$i]} "* ]]; then
      if ! wait "${JOBS[$i]}"; then
        echo "error: set-up step '${JOB_NAMES[$i]}' failed (its output is above)" >&2
        failed=1
      fi
      unset "JOBS[$i]" "JOB_NAMES[$i]"
    fi
  done
  return "$failed"
}
trap 'finish || true' EXIT  # a failed step does not leave the others running behind the set-up

# chromium: the browser tests; python3-venv: the real-Unix-users test builds a single-user env from Debian's Python;
# docker.io and debootstrap: the Docker tests start their own dockerd and build a user image without a registry.
system_packages() {
  if ! command -v chromium >/dev/null 2>&1 || { [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c "import ensurepip" 2>/dev/null; } \
      || { [ "$(id -u)" = 0 ] && { ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; }; }; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing chromium, python3-venv, docker.io and debootstrap (Debian) for the browser, Unix-user and Docker tests"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium python3-venv docker.io debootstrap >/dev/null
    else
      echo "note: chromium is not installed; browser tests will be skipped (and fail in CI): sudo apt-get install chromium" >&2
    fi
  fi
}

main_venv() {
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,dev,docs]"
}

# The real QCS clients, each in its own venv (their pins clash with the project's qcs-api-client-common) and
# registered as a Jupyter kernelspec under .venv-clients/share/jupyter, which the e2e Hub puts on the user
# servers' JUPYTER_PATH: pyQuil 4.22 (embeds the 0.12.8 credential core) and qcs-sdk-python 0.31 (core 0.27).
client_venv() {  # name kernelspec display-name requirement...
  local name=$1 kernel=$2 display=$3
  shift 3
  local dir=.venv-clients/$name stamp=".venv-clients/$name/.qcs-jupyter-installed"
  local want="$* ipykernel==7.4.0"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
      || [ ! -f ".venv-clients/share/jupyter/kernels/$kernel/kernel.json" ]; then
    echo "== client venv $dir: $want"
    [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
    # shellcheck disable=SC2086 # $want is a list of requirements
    "$dir/bin/python" -m pip install -q $want
    # Quiet unless it fails: it warns that .venv-clients/share/jupyter is not on the default path (by design).
    if ! out=$("$dir/bin/python" -m ipykernel install --prefix .venv-clients --name "$kernel" \
        --display-name "$display" 2>&1); then
      echo "$out" >&2
      exit 1
    fi
    echo "$want" >"$stamp"
  fi
}

node_packages() {  # dir
  if [ ! -d "$1/node_modules" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The unit tests run on Python 3.10 too, the oldest supported (scripts/test.sh), from $PYTHON310, else
# pyenv's newest 3.10.x, else python3.10 on PATH; without one, no .venv-py310 (test.sh says what that means).
# shellcheck source=scripts/python310.sh
source scripts/python310.sh
py310_venv() {
  local python venv=.venv-py310 stamp
  python=$(find_python310)
  if [ -z "$python" ] || ! "$python" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    return 0
  fi
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # Reinstall only when the dependencies may have changed (the editable install follows the sources).
  # (The package's version, in its metadata, comes from labextension/package.json.)
  stamp=$(cat pyproject.toml labextension/package.json | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$venv/.qcs-installed" 2>/dev/null)" != "$stamp" ]; then
    echo "== $venv: qcs-jupyter and its test extras on Python 3.10"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -e ".[test]"
    echo "$stamp" >"$venv/.qcs-installed"
  fi
}

# A Python that cannot make venvs (Debian's, without python3-venv) waits for the Debian packages.
if "$PYTHON" -c "import ensurepip" 2>/dev/null; then
  start debian system_packages
else
  system_packages
fi
start venv main_venv
start pyquil client_venv pyquil qcs-pyquil "Python (pyQuil 4.22)" "pyquil==4.22.0"
start qcs-sdk client_venv qcs-sdk qcs-sdk "Python (qcs-sdk-python 0.31)" "qcs-sdk-python==0.31.1"
for dir in devstack/idp devstack/proxy devstack/axe; do
  start "$dir" node_packages "$dir"
done

# The Docker user image's Debian base (debootstrap, from the archive) needs only the Debian packages.
finish debian
start docker-base "$PYTHON" -m devstack.docker --base
# The editable install builds the labextension once; the installs below find it built (skip-if-exists).
finish venv
if [ ! -d labextension/node_modules ]; then  # usually there: the editable install's build ran jlpm install
  (cd labextension && ../.venv/bin/jlpm install)
fi
# In a checkout built before, a source (or the version in package.json) newer than the build is rebuilt: the
# wheel the tests install must ship what is checked out, not an earlier build the editable install skipped.
built=qcs_jupyter/labextension/static/style.js
if [ -f "$built" ] && [ -n "$(find labextension/src labextension/style labextension/schema \
    labextension/package.json -newer "$built" -print -quit)" ]; then
  echo "== the labextension's sources changed since its build: building it again"
  (cd labextension && PATH="$PWD/../.venv/bin:$PATH" jlpm build:prod >/dev/null)
fi
# What the tests install, built here once (the wheel, a venv of it with JupyterLab, the single-user venv of real
# Unix users, the size benchmark's reference wheel): no test or benchmark talks to the package index.
start artifacts .venv/bin/python -m devstack.artifacts
start lowest bash scripts/test-lowest.sh --install
start py310 py310_venv
# The Docker tests' user image (the Debian base, the wheel, JupyterLab, pyQuil), built once per state of the
# sources into a private Docker engine's cache; skipped with a note where Docker cannot run (not root).
finish docker-base
if [ "$USER_IMAGE" = true ]; then
  start docker .venv/bin/python -m devstack.docker
fi
finish
