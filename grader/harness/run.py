"""Harness entry: run an assignment's checks on one submission, write pytest-json-report JSON.

Usage: python -m grader.harness.run --checks-file F --submission DIR --entry server.py
                                    --report OUT.json --work DIR [--user UID] [--only a,b]
(the command line is grader.contract.HarnessArgs: the host builds it with to_argv)
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

from grader.contract import HarnessArgs, checks_begun

INI = Path(__file__).with_name("harness.ini")
# Plugins a grading never uses (legacypath stays: pytest-json-report needs it). pytest's own,
# and pytest-metadata (a dependency of pytest-json-report): its platform line costs a fork of
# the harness (`uname -p`), and pytest-json-report no longer reads what it gathers.
UNUSED_PLUGINS = (
    "doctest",
    "junitxml",
    "pastebin",
    "stepwise",
    "setuponly",
    "setupplan",
    "metadata",
)


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
        *args.plugin_argv(),
    ]


# A warm harness (`--wait-request FILE [CHECKS]`): started in its container ahead of need, it
# loads the kit and waits for its request, the JSON {"argv": [...]} of a harness command
# line, written at FILE by the host (grader/sandbox/docker/warm.py). Past WAIT_LIMIT without
# one, it ends: a host that went away leaves nothing running.
WAIT_FLAG = "--wait-request"
WAIT_LIMIT = 600.0
WAIT_POLL = (0.002, 0.01)  # first and longest pause between two looks


def kit_imports(checks_file: str) -> list[str]:
    """The kit's modules a checks file imports at its top (`from grader.harness import
    checklib`, `import grader.harness.clientlib`): [] if it cannot be read or parsed, which
    its collection will then say."""
    try:
        tree = ast.parse(Path(checks_file).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "grader"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "grader":
                found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def preload(checks_file: str | None) -> None:
    """What a grading imports, loaded while the host is still busy with the one before: the
    kit's plugin, and what the assignment's checks import of the kit (no more: an epoll
    grading has no use for the client checks)."""
    import grader.harness.plugin  # noqa: F401

    for name in kit_imports(checks_file) if checks_file else []:
        # `from grader.x import a_name`: the module itself, then. Whatever fails here is the
        # collection's to report, where the student's report can say it.
        for candidate in (name, name.rpartition(".")[0]):
            try:
                importlib.import_module(candidate)
                break
            except Exception:
                continue


def wait_for_request(
    path: Path, limit: float = WAIT_LIMIT, checks_file: str | None = None
) -> list[str] | None:
    preload(checks_file)
    deadline = time.monotonic() + limit
    pause = WAIT_POLL[0]
    while time.monotonic() < deadline:
        try:
            argv = json.loads(path.read_text(encoding="utf-8"))["argv"]
        except FileNotFoundError:
            time.sleep(pause)
            pause = min(pause * 2, WAIT_POLL[1])
            continue
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            return argv
        break
    return None


class _OneShotJson:
    """The `json` module as pytest-json-report sees it, but for `dump` (of the report), done
    in one go: json.dump encodes in Python, one call per value, where json.dumps (no indent)
    takes the C encoder, for the same JSON (some 4 ms of a grading container's CPU)."""

    @staticmethod
    def dump(obj, fp, **kwargs) -> None:
        fp.write(json.dumps(obj, **kwargs))

    def __getattr__(self, name: str):
        return getattr(json, name)


class _SayBegun:
    """Creates the file that says this harness's checks begin (grader.contract.CHECKS_BEGUN),
    first thing in pytest's test loop."""

    def __init__(self, report: str) -> None:
        self.path = checks_begun(report)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtestloop(self, session):
        try:
            self.path.touch()
        except OSError:
            pass  # only a hint to the host's scheduling
        yield


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [WAIT_FLAG]:
        request = wait_for_request(Path(argv[1]), checks_file=argv[2] if argv[2:] else None)
        if request is None:
            print("socketgrade: no request came for this warm harness", file=sys.stderr)
            return 0
        argv = request
    args = HarnessArgs.from_argv(argv)
    import pytest_jsonreport.plugin  # type: ignore[import-untyped]

    pytest_jsonreport.plugin.json = _OneShotJson()
    code = pytest.main(pytest_args(args), plugins=[_SayBegun(args.report)])
    # 0: all passed, 1: some failed -- both are a finished grading.
    return 0 if code in (0, 1) else int(code)


def exit_now(code: int) -> None:
    """End without tearing the interpreter down: the report is written and pytest has
    cleaned up (the runs, their fork servers), and freeing the tens of megabytes pytest and
    the kit hold, object by object, costs a grading container CPU and time for nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
