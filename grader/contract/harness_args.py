"""The harness's command line: what the host asks of it (HarnessArgs), the plugin's options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

HARNESS_MODULE = "grader.harness.run"

# Checks that each need their own run of the student's program run this many at a time, each
# in its own process (grader/harness/lanes.py): a grading then takes about as long as its
# slowest check rather than the sum of all. Each lane's program runs as its own uid where
# the harness switches uid (STUDENT_UID + lane), so that no run can signal another's.
CHECK_LANES = 4


# Beside its report, the harness creates this empty file once its checks begin: its
# interpreter, pytest and the kit are loaded, the checks collected. The Docker sandbox starts
# no container ahead of need while a batch's first gradings have not got that far
# (grader/sandbox/docker/warm.py): on a small machine they would only slow each other.
CHECKS_BEGUN = "checks-begun"


def checks_begun(report: str | Path) -> Path:
    """Where the harness writing `report` says that its checks have begun."""
    return Path(report).with_name(CHECKS_BEGUN)


def _only(text: str) -> tuple[str, ...]:
    return tuple(c for c in text.split(",") if c)


@dataclass(frozen=True)
class HarnessArgs:
    """What the host asks of the harness: these checks, on this submission, report here.
    Paths are as the harness sees them (inside a container, they are the container's)."""

    checks_file: str
    submission: str
    report: str
    work: str
    entry: str = "server.py"
    user: int | None = None  # uid (and gid) the student's code runs as
    python: str | None = None  # the interpreter the student's code runs with; None: the harness's
    only: tuple[str, ...] = ()  # check ids to run; empty: all
    lanes: int = 1  # checks run at once, each with its own run (1: one after another)
    # Runs forked from an interpreter started once (grader/harness/forkserver.py); False: each
    # run a fresh interpreter.
    fork_server: bool = True

    def to_argv(self) -> list[str]:
        """The interpreter's arguments: `python <to_argv()>`."""
        argv = [
            "-m",
            HARNESS_MODULE,
            "--checks-file",
            self.checks_file,
            "--submission",
            self.submission,
            "--entry",
            self.entry,
            "--report",
            self.report,
            "--work",
            self.work,
            "--only",
            ",".join(self.only),
            "--lanes",
            str(self.lanes),
        ]
        if not self.fork_server:
            argv.append("--no-fork-server")
        if self.user is not None:
            argv += ["--user", str(self.user)]
        if self.python is not None:
            argv += ["--python", self.python]
        return argv

    @classmethod
    def from_argv(cls, argv: list[str]) -> HarnessArgs:
        """The inverse of to_argv; the leading `-m grader.harness.run` may be left out.
        A bad command line exits with argparse's usage message (it is the harness's CLI)."""
        argv = list(argv)
        if argv[:2] == ["-m", HARNESS_MODULE]:
            argv = argv[2:]
        ns = _parser().parse_args(argv)
        return cls(
            checks_file=ns.checks_file,
            submission=ns.submission,
            report=ns.report,
            work=ns.work,
            entry=ns.entry,
            user=ns.user,
            python=ns.python,
            only=_only(ns.only),
            lanes=ns.lanes,
            fork_server=not ns.no_fork_server,
        )

    def plugin_argv(self) -> list[str]:
        """The same request as the kit's pytest plugin options (see PLUGIN_OPTIONS)."""
        argv = [
            PLUGIN_OPTIONS["submission"],
            self.submission,
            PLUGIN_OPTIONS["entry"],
            self.entry,
            PLUGIN_OPTIONS["work"],
            self.work,
            PLUGIN_OPTIONS["only"],
            ",".join(self.only),
            PLUGIN_OPTIONS["lanes"],
            str(self.lanes),
        ]
        if not self.fork_server:
            argv.append(PLUGIN_OPTIONS["no_fork_server"])
        if self.user is not None:
            argv += [PLUGIN_OPTIONS["user"], str(self.user)]
        if self.python is not None:
            argv += [PLUGIN_OPTIONS["python"], self.python]
        return argv


# The plugin's spelling of HarnessArgs' fields (the report path goes to pytest-json-report).
PLUGIN_OPTIONS = {
    "submission": "--sg-submission",
    "entry": "--sg-entry",
    "work": "--sg-work",
    "user": "--sg-user",
    "python": "--sg-python",
    "only": "--sg-checks",
    "lanes": "--sg-lanes",
    "no_fork_server": "--sg-no-fork-server",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=HARNESS_MODULE)
    parser.add_argument("--checks-file", required=True)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--entry", default="server.py")
    parser.add_argument("--report", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--user", type=int, default=None)
    parser.add_argument("--python", default=None)
    parser.add_argument("--only", default="")
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--no-fork-server", action="store_true")
    return parser
