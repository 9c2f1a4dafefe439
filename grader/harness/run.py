"""Harness entry: run an assignment's checks on one submission, write pytest-json-report JSON.

Usage: python -m grader.harness.run --checks-file F --submission DIR --entry server.py
                                    --report OUT.json --work DIR [--user UID] [--only a,b]
(the command line is grader.contract.HarnessArgs: the host builds it with to_argv)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grader.contract import HarnessArgs

INI = Path(__file__).with_name("harness.ini")
# pytest's own plugins a grading never uses (legacypath stays: pytest-json-report needs it).
UNUSED_PLUGINS = ("doctest", "junitxml", "pastebin", "stepwise", "setuponly", "setupplan")


def pytest_args(args: HarnessArgs) -> list[str]:
    """pytest's command line for one grading: only the kit's plugin and the checks file."""
    return [
        args.checks_file,
        "-c",
        str(INI),
        "--rootdir",
        str(Path(args.checks_file).parent),
        "-p",
        "grader.harness.plugin",
        # Not wanted in a grading, and their clean-up (rounds of garbage collection at the
        # end) costs up to a second: the checks report their own failures.
        "-p",
        "no:unraisableexception",
        "-p",
        "no:threadexception",
        # Nor these: each costs its start-up in every grading container.
        *[arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")],
        # The checks files call the kit's checks, which fail() with their own reasons:
        # rewriting their asserts would only cost a compile per module.
        "--assert=plain",
        "-q",
        "--no-header",
        "-rN",
        "--tb=short",
        # Captured in the process (not through shared files): checks may run in forked
        # children at once (lanes.py), each capturing its own.
        "--capture=sys",
        "--json-report",
        "--json-report-file",
        args.report,
        "--json-report-indent",
        "0",
        *args.plugin_argv(),
    ]


def main(argv: list[str] | None = None) -> int:
    args = HarnessArgs.from_argv(sys.argv[1:] if argv is None else argv)
    code = pytest.main(pytest_args(args))
    # 0: all passed, 1: some failed -- both are a finished grading.
    return 0 if code in (0, 1) else int(code)


if __name__ == "__main__":
    sys.exit(main())
