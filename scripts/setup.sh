#!/usr/bin/env bash
# Creates .venv with socketgrade and its dependencies (idempotent). Prints the venv's bin dir.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv >&2
fi
stamp=.venv/.socketgrade-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ sandbox/requirements.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  # pyproject.toml's ranges, held to the grading image's pins (sandbox/requirements.txt, made
  # from the same ranges by scripts/lock_image.py): the local sandbox runs the harness on the
  # same pytest, pytest-json-report and psutil as the Docker one.
  .venv/bin/python -m pip install -q -e ".[test]" -c sandbox/requirements.txt >&2
  touch "$stamp"
fi
echo "$PWD/.venv/bin"
