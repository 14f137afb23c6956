# Sourced by scripts/setup.sh and scripts/test-lowest.sh: find_python310 prints the Python 3.10 to use, the
# oldest supported: $PYTHON310, else pyenv's newest 3.10.x, else python3.10 on PATH; nothing if there is none.
find_python310() {
  if [ -n "${PYTHON310:-}" ]; then echo "$PYTHON310"; return; fi
  local root found
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  found=$(ls -d "$root"/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$found" ]; then echo "$found"; return; fi
  command -v python3.10 || true
}
