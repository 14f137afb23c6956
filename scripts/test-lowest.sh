#!/usr/bin/env bash
# The Hub, server and credentials tests (no end-to-end) against the lowest versions pyproject.toml allows: every
# `>=` floor of the runtime dependencies and the `hub` extra is pinned with a constraints file, so a floor that is
# too low for the code fails here instead of on a user's machine. Extra arguments replace the default test paths.
# Installed: the package with its `hub` extra, and the `test` extra's tools except JupyterLab (JupyterLab 4.6 needs
# a newer jupyter_server than the package does; these tests do not use it).
#
# Its own venv (.venv-lowest), on the oldest supported Python when one is found ($PYTHON310, pyenv's newest
# 3.10.x, python3.10), else python3; reinstalled only when pyproject.toml changes. `--install` only makes the venv
# (scripts/setup.sh does, beside its other steps).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lowest

# shellcheck source=scripts/python310.sh
source scripts/python310.sh
find_python() {  # the oldest supported Python when there is one, else python3
  local found
  found=$(find_python310)
  if [ -n "$found" ]; then echo "$found"; else command -v python3; fi
}

# Writes DIR/constraints.txt (name==floor for every "name>=floor" of [project] dependencies and the hub extra,
# markers kept) and DIR/requirements.txt (the test extra without JupyterLab).
lowest_files() {
  "$1" - "$2" <<'PY'
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:
    import tomli as tomllib
out = Path(sys.argv[1])
with open("pyproject.toml", "rb") as fh:
    project = tomllib.load(fh)["project"]
extras = project["optional-dependencies"]
pins = []
for req in project["dependencies"] + extras["hub"]:
    spec, _, marker = req.partition(";")
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,\s]+)\s*(,.*)?", spec)
    if m:
        pins.append(f"{m.group(1)}=={m.group(2)}" + (f"; {marker.strip()}" if marker else ""))
(out / "constraints.txt").write_text("\n".join(pins) + "\n")
tools = [r for r in extras["test"] if not re.match(r"jupyterlab\b", r)]
(out / "requirements.txt").write_text("\n".join(tools) + "\n")
PY
}

if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python)" -m venv "$VENV"
fi
# (The package's version, in its metadata, comes from labextension/package.json.)
stamp=$(cat pyproject.toml labextension/package.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.qcs-installed" 2>/dev/null)" != "$stamp" ]; then
  reader=python3
  [ -x .venv/bin/python ] && reader=.venv/bin/python # any Python with tomllib (3.11+) will do
  lowest_files "$reader" "$VENV"
  echo "== lowest allowed versions:" $(cut -d';' -f1 "$VENV/constraints.txt")
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c "$VENV/constraints.txt" -e ".[hub]" -r "$VENV/requirements.txt"
  echo "$stamp" >"$VENV/.qcs-installed"
fi
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
"$VENV/bin/python" - <<'PY'
import sys
from importlib.metadata import version

names = ("jupyterhub", "oauthenticator", "jupyter_server", "tornado", "cryptography", "tomlkit", "PyJWT", "filelock")
print("Python", sys.version.split()[0], "with", ", ".join(f"{n} {version(n)}" for n in names))
PY
status=0
if [ $# -gt 0 ]; then
  "$VENV/bin/python" -m pytest -m "not e2e" "$@" || status=$?
else
  "$VENV/bin/python" -m pytest -m "not e2e" tests/hub tests/server tests/credentials || status=$?
fi
# 5 (no test selected) passes only when arguments selected nothing but end-to-end tests, which this run leaves out.
if [ "$status" -ne 0 ] && { [ "$status" -ne 5 ] || [ $# -eq 0 ]; }; then
  exit "$status"
fi
