"""Harness entry: run an assignment's checks on one submission, write pytest-json-report JSON.

Usage: python -m grader.harness.run --checks-file F --submission DIR --entry server.py
                                    --report OUT.json --work DIR [--user UID] [--only a,b]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

INI = Path(__file__).with_name("harness.ini")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grader.harness.run")
    parser.add_argument("--checks-file", required=True)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--entry", default="server.py")
    parser.add_argument("--entry-problem", default="")
    parser.add_argument("--report", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--user", type=int, default=None)
    parser.add_argument("--only", default="")
    ns = parser.parse_args(argv)
    args = [
        ns.checks_file, "-c", str(INI), "--rootdir", str(Path(ns.checks_file).parent),
        "-p", "grader.harness.plugin", "-q", "--no-header", "-rN", "--tb=short",
        "--json-report", "--json-report-file", ns.report, "--json-report-indent", "0",
        "--sg-submission", ns.submission, "--sg-entry", ns.entry,
        "--sg-entry-problem", ns.entry_problem, "--sg-work", ns.work, "--sg-checks", ns.only,
    ]
    if ns.user is not None:
        args += ["--sg-user", str(ns.user)]
    code = pytest.main(args)
    # 0: all passed, 1: some failed -- both are a finished grading.
    return 0 if code in (0, 1) else int(code)


if __name__ == "__main__":
    sys.exit(main())
