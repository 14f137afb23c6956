#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (open docs/_build/html/index.html).
#
# Warnings are errors (-W; --keep-going reports every one), every cross-reference must resolve (-n, nitpicky),
# and every internal link and anchor of the built pages must resolve (checked when the build finishes, by
# docs/_ext/qcs_docs.py). The environment is read afresh (-E): pages generated from the code (the configuration
# reference, metrics, problem codes, the status schema, the CLI's help) always follow it. External links are not
# checked, so the build works offline. Extra arguments go to Sphinx.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if ! "$PYTHON" -c "import sphinx, myst_parser" 2>/dev/null; then
  echo "error: Sphinx is not installed for $PYTHON: run bash scripts/setup.sh (it installs the docs extra)" >&2
  exit 1
fi
"$PYTHON" -m sphinx -E -n -W --keep-going -q -b html docs docs/_build/html "$@"
echo "docs: docs/_build/html/index.html"
