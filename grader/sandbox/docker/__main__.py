"""`python -m grader.sandbox.docker build|status`: `grade sandbox` without the `grade` script."""

from __future__ import annotations

import sys

from grader.sandbox.docker.cli import cli_sandbox

sys.exit(cli_sandbox(sys.argv[1:]))
