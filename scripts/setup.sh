#!/usr/bin/env bash
# Set up everything the demo and the tests need, idempotently:
#   Debian's chromium (browser tests), .venv with qcs-jupyter (editable, labextension built) and its test
#   extras, and the Node packages of the local identity provider, the proxy and the labextension.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian) for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; browser tests will be skipped (sudo apt-get install chromium)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,dev]"

for dir in demo/idp demo/proxy; do
  if [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
if [ ! -d labextension/node_modules ]; then
  (cd labextension && ../.venv/bin/jlpm install)
fi
