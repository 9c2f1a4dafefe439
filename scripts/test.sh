#!/usr/bin/env bash
# One command: set up, check the code (lint, format, types), make sure a Docker engine and the
# grading image are there (when this machine can have them), and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(bash scripts/setup.sh)
export PATH="$BIN:$PATH"
# Static checks first: they take seconds, the suite takes many minutes. All three run so that one
# pass shows every finding; any failure stops here. Settings: pyproject.toml ([tool.ruff],
# [tool.mypy]); `ruff format .` and `ruff check --fix .` repair most findings.
static_ok=1
echo "ruff check" >&2
ruff check . || static_ok=0
echo "ruff format --check" >&2
ruff format --check . || static_ok=0
echo "mypy" >&2
mypy || static_ok=0
if [ "$static_ok" != 1 ]; then
  echo "lint, format or type check failed (above); the tests were not run" >&2
  exit 1
fi
if [ -n "${CI:-}" ] || [ -n "${SOCKETGRADE_REQUIRE_DOCKER:-}" ]; then
  # On CI the Docker tests must run: provision the engine and image, or fail.
  export SOCKETGRADE_REQUIRE_DOCKER=1
  bash scripts/provision-docker.sh
elif docker info >/dev/null 2>&1 || [ "$(id -u)" = 0 ]; then
  bash scripts/provision-docker.sh || echo "note: no Docker engine; the Docker tests will be skipped" >&2
fi
# Headless Chromium for tests/test_browser.py, likewise: on CI it must be there (the tests fail
# without it), elsewhere it is installed when this machine can and those tests skip when not.
if [ -n "${CI:-}" ]; then
  bash scripts/provision-browser.sh
else
  bash scripts/provision-browser.sh || echo "note: no headless Chromium; the browser tests will be skipped" >&2
fi
# Two workers (pytest-xdist): the Docker-heavy and the local groups of the suite run side by
# side; tests that share graded classes stay in one worker (tests/conftest.py).
exec python -m pytest -q -n 2 --dist loadgroup "$@"
