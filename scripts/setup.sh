#!/usr/bin/env bash
# Set up everything the demo and the tests need, idempotently:
#   Debian's chromium (browser tests), .venv with qcs-jupyter (editable, labextension built) and its test
#   extras, and the Node packages of the local identity provider, the proxy and the labextension.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# chromium: the browser tests; python3-venv: the real-Unix-users test builds a single-user env from Debian's Python;
# docker.io and debootstrap: the Docker tests start their own dockerd and build a user image without a registry.
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

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,dev,docs]"

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
client_venv pyquil qcs-pyquil "Python (pyQuil 4.22)" "pyquil==4.22.0"
client_venv qcs-sdk qcs-sdk "Python (qcs-sdk-python 0.31)" "qcs-sdk-python==0.31.1"

for dir in devstack/idp devstack/proxy devstack/axe; do
  if [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
if [ ! -d labextension/node_modules ]; then
  (cd labextension && ../.venv/bin/jlpm install)
fi

# What the tests install, built here once (the wheel, a venv of it with JupyterLab, the single-user venv of real
# Unix users, the size benchmark's reference wheel): no test or benchmark talks to the package index.
.venv/bin/python -m devstack.artifacts
# The Docker tests' user image (Debian from its archive, the wheel, JupyterLab, pyQuil), built once per state of
# the sources into a private Docker engine's cache; skipped with a note where Docker cannot run (not root).
.venv/bin/python -m devstack.docker
