"""What every sandbox shares: the harness's command line, its report, and the sandbox error."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from grader.contract import HarnessArgs, Message, msg
from grader.models import RunRequest

# The wall-clock bound per submission, kept from outside the sandbox: it stops a submission
# that hangs the harness. Far above the time all checks take, so that a loaded or starved
# machine never turns a slow grading into a time-out (a verdict must not depend on load).
DEFAULT_WALL_CLOCK = 240.0


class SandboxError(Exception):
    """The sandbox itself cannot run (no engine, no image): the infrastructure's fault."""


def harness_args(
    req: RunRequest,
    checks_file: str,
    submission: str,
    report: str,
    work: str,
    user: int | None = None,
    python: str | None = None,
    lanes: int = 1,
    fork_server: bool = True,
) -> list[str]:
    """The harness command line, the same for every sandbox (paths as the harness sees them):
    the contract's HarnessArgs, so that host and harness spell it once."""
    return HarnessArgs(
        checks_file=checks_file,
        submission=submission,
        report=report,
        work=work,
        entry=req.submission.entry or "",
        user=user,
        python=python,
        only=tuple(req.only),
        lanes=lanes,
        fork_server=fork_server,
    ).to_argv()


def read_report(path: Path) -> dict | None:
    """The harness's pytest-json-report, or None when it wrote none (or not one we can use)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("tests"), list) else None


def how_it_ended(code: int | None) -> Message:
    """'code 1', or 'killed by SIGKILL' for a negative code (how Popen says that a process
    died of a signal): a signal's name says more to a reader than its number."""
    if code is None:
        return msg("no exit status")
    if code < 0:
        try:
            return msg("killed by {signal}", signal=signal.Signals(-code).name)
        except ValueError:
            return msg("killed by signal {signal}", signal=str(-code))
    return msg("code {code}", code=code)


def wall_clock_stop(seconds: float) -> Message:
    """Why a run has no report when the wall clock stopped it."""
    return msg(
        "grading was stopped after {seconds:.0f} s (the wall-clock bound per submission)",
        seconds=seconds,
    )


def no_report(ended: Message) -> Message:
    """Why a run has no report when the harness ended without writing one."""
    return msg("the grader's harness ended ({ended}) without a report", ended=ended)
