"""The harness ↔ host contract: the harness's argv, the report it writes, the tracer's events."""

# Stdlib only: the host imports it, and so does the harness inside the sandbox. The tracer
# (harness/boot.py) runs in the student's interpreter and imports nothing of the kit; a test
# holds its event strings to TraceKind.

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

HARNESS_MODULE = "grader.harness.run"

# The pytest-json-report metadata keys the harness writes for one check.
STORY_KEY = "story"
PROCESSES_KEY = "processes"


# --- the harness's command line ------------------------------------------------------------


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
    only: tuple[str, ...] = ()  # check ids to run; empty: all

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
        ]
        if self.user is not None:
            argv += ["--user", str(self.user)]
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
            only=_only(ns.only),
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
        ]
        if self.user is not None:
            argv += [PLUGIN_OPTIONS["user"], str(self.user)]
        return argv


# The plugin's spelling of HarnessArgs' fields (the report path goes to pytest-json-report).
PLUGIN_OPTIONS = {
    "submission": "--sg-submission",
    "entry": "--sg-entry",
    "work": "--sg-work",
    "user": "--sg-user",
    "only": "--sg-checks",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=HARNESS_MODULE)
    parser.add_argument("--checks-file", required=True)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--entry", default="server.py")
    parser.add_argument("--report", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--user", type=int, default=None)
    parser.add_argument("--only", default="")
    return parser


# --- the tracer's vocabulary ---------------------------------------------------------------


class TraceKind(StrEnum):
    """Every event kind the tracer writes (its `ev` field)."""

    START = "start"  # the entry file is about to run
    BIND = "bind"  # fd, requested (host, port)
    LISTEN = "listen"  # fd, backlog
    REGISTER = "register"  # fd, events, selector (its class or mechanism)
    UNREGISTER = "unregister"  # fd
    MODIFY = "modify"  # fd, events, selector
    CLOSE = "close"  # fd
    CLOSE_REGISTERED = "close_registered"  # fd, registered_at: closed while still registered
    SELECTOR_NEW = "selector_new"  # selector: a selectors.* object was made
    SELECT = "select"  # timeout, selector: a selectors.* select() call
    SELECTOR_CLOSE = "selector_close"  # selector
    SELECT_CALL = "select_call"  # timeout (s): a plain select.select() call
    POLL_NEW = "poll_new"  # a select.poll() object was made
    POLL_REGISTER = "poll_register"  # fd, events
    POLL_UNREGISTER = "poll_unregister"  # fd
    POLL_MODIFY = "poll_modify"  # fd, events
    POLL_WAIT = "poll_wait"  # timeout (ms; None or negative: no timeout)
    EPOLL_NEW = "epoll_new"  # epfd: a select.epoll() object was made
    EPOLL_REGISTER = "epoll_register"  # fd, events, epfd
    EPOLL_UNREGISTER = "epoll_unregister"  # fd, epfd
    EPOLL_MODIFY = "epoll_modify"  # fd, events, epfd
    EPOLL_WAIT = "epoll_wait"  # timeout (s; None or negative: no timeout), epfd
    EPOLL_CLOSE = "epoll_close"  # epfd
    BLOCKING_CALL = "blocking_call"  # call, fd: accept/recv on a blocking socket
    SETBLOCKING = "setblocking"  # fd, flag
    SETTIMEOUT = "settimeout"  # fd, value
    THREAD = "thread"  # name
    FORK = "fork"
    CRASH = "crash"  # type, message
    EXIT = "exit"  # code
    TRACER_ERROR = "tracer_error"  # error: the tracer could not be installed

    @classmethod
    def of(cls, value: object) -> TraceKind | None:
        try:
            return cls(value) if isinstance(value, str) else None
        except ValueError:
            return None


# A wait whose timeout is at most this many seconds returns at once: in a loop, it never
# sleeps (select(timeout=0) is the tutorial's busy-loop mistake; 1 ms is below any tick).
BUSY_TIMEOUT = 0.001
# The waits, and the unit of their timeout in seconds (select.poll's poll() counts in ms).
WAIT_SECONDS_PER_UNIT = {
    TraceKind.SELECT: 1.0,
    TraceKind.SELECT_CALL: 1.0,
    TraceKind.POLL_WAIT: 0.001,
    TraceKind.EPOLL_WAIT: 1.0,
}


@dataclass(frozen=True)
class TraceEvent:
    """One tracer event. The student's process wrote it: its fields explain, never decide."""

    kind: str  # a TraceKind value, or what an unknown tracer wrote
    at: str | None = None  # the student's line, as "server.py:16"
    t: float | None = None  # the tracer's monotonic clock
    fields: Mapping[str, Any] = field(default_factory=dict)  # the rest (fd, timeout, ...)

    @property
    def known(self) -> TraceKind | None:
        return TraceKind.of(self.kind)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def fd(self) -> Any:
        return self.fields.get("fd")

    @property
    def never_sleeps(self) -> bool:
        """A wait (select, poll) that returns at once."""
        timeout = self.fields.get("timeout")
        seconds = WAIT_SECONDS_PER_UNIT.get(self.known) if self.known is not None else None
        # A negative timeout means "no timeout" to poll() and epoll.poll(): it sleeps.
        return (
            seconds is not None
            and isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and 0 <= timeout * seconds <= BUSY_TIMEOUT
        )

    def to_json(self) -> dict:
        out = dict(self.fields)
        if self.at is not None:
            out["at"] = self.at
        out["ev"] = self.kind
        if self.t is not None:
            out["t"] = self.t
        return out

    @classmethod
    def from_json(cls, data: object) -> TraceEvent:
        if not isinstance(data, dict):
            return cls(kind="", fields={"value": data})
        rest = {str(k): v for k, v in data.items() if k not in ("ev", "at", "t")}
        at = data.get("at")
        return cls(
            kind=str(data.get("ev", "")),
            at=at if isinstance(at, str) else None,
            t=_number(data.get("t")),
            fields=rest,
        )


# The events a report explains failures with (the harness keeps these, at most TRACE_KEPT).
EXPLAINING = frozenset(
    {
        TraceKind.BIND,
        TraceKind.LISTEN,
        TraceKind.CLOSE_REGISTERED,
        TraceKind.THREAD,
        TraceKind.FORK,
        TraceKind.SELECT,
        TraceKind.SELECT_CALL,
        TraceKind.POLL_WAIT,
        TraceKind.EPOLL_WAIT,
        TraceKind.BLOCKING_CALL,
        TraceKind.CRASH,
        TraceKind.SETBLOCKING,
        TraceKind.SETTIMEOUT,
        TraceKind.TRACER_ERROR,
        TraceKind.EXIT,
    }
)
TRACE_KEPT = 200


# --- the report the harness writes for each check ------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class StoryLine:
    """One thing a check did ("did") or saw ("saw"), seconds after the check started."""

    kind: str
    text: str
    t: float | None = None

    def to_json(self) -> dict:
        return {"t": self.t, "kind": self.kind, "text": self.text}

    @classmethod
    def from_json(cls, data: object) -> StoryLine:
        if not isinstance(data, dict):
            return cls(kind="did", text=str(data))
        return cls(
            kind="saw" if data.get("kind") == "saw" else "did",
            text=str(data.get("text", "")),
            t=_number(data.get("t")),
        )


@dataclass(frozen=True)
class Story:
    """What a check did and saw, and what it measured (name → number or text)."""

    lines: tuple[StoryLine, ...] = ()
    measurements: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "lines": [line.to_json() for line in self.lines],
            "measurements": dict(self.measurements),
        }

    @classmethod
    def from_json(cls, data: object) -> Story:
        data = data if isinstance(data, dict) else {}
        lines = data.get("lines")
        measured = data.get("measurements")
        return cls(
            lines=tuple(StoryLine.from_json(x) for x in lines)
            if isinstance(lines, (list, tuple))
            else (),
            measurements={str(k): v for k, v in measured.items()}
            if isinstance(measured, dict)
            else {},
        )


@dataclass(frozen=True)
class ProcessReport:
    """One run of the student's program during a check: its output (bounded), how it ended
    (None: still running when the check ended; negative: killed by that signal), its trace."""

    stdout: str = ""
    stderr: str = ""
    output_bytes: int | None = None
    exit_code: int | None = None
    trace: tuple[TraceEvent, ...] = ()

    def to_json(self) -> dict:
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "output_bytes": self.output_bytes,
            "exit_code": self.exit_code,
            "trace": [e.to_json() for e in self.trace],
        }

    @classmethod
    def from_json(cls, data: object) -> ProcessReport:
        data = data if isinstance(data, dict) else {}
        trace = data.get("trace")
        return cls(
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            output_bytes=_int(data.get("output_bytes")),
            exit_code=_int(data.get("exit_code")),
            trace=tuple(TraceEvent.from_json(e) for e in trace)
            if isinstance(trace, (list, tuple))
            else (),
        )


@dataclass(frozen=True)
class CheckMetadata:
    """What the kit's fixtures put into one check's pytest-json-report metadata."""

    story: Story = field(default_factory=Story)
    processes: tuple[ProcessReport, ...] = ()

    def to_json(self) -> dict:
        return {
            STORY_KEY: self.story.to_json(),
            PROCESSES_KEY: [p.to_json() for p in self.processes],
        }

    @classmethod
    def from_json(cls, data: object) -> CheckMetadata:
        data = data if isinstance(data, dict) else {}
        procs = data.get(PROCESSES_KEY)
        return cls(
            story=Story.from_json(data.get(STORY_KEY)),
            processes=tuple(ProcessReport.from_json(p) for p in procs)
            if isinstance(procs, (list, tuple))
            else (),
        )


# --- pytest-json-report, as far as the host reads it ---------------------------------------

STAGES = ("setup", "call", "teardown")


@dataclass(frozen=True)
class StageReport:
    """One pytest stage of a check: its outcome and, when it did not pass, why."""

    outcome: str
    message: str = ""  # the crash message: "Failed: <reason>" for a verdict
    longrepr: str = ""

    def to_json(self) -> dict:
        out: dict = {"outcome": self.outcome}
        if self.message:
            out["crash"] = {"message": self.message}
        if self.longrepr:
            out["longrepr"] = self.longrepr
        return out

    @classmethod
    def from_json(cls, data: object) -> StageReport | None:
        if not isinstance(data, dict) or data.get("outcome") is None:
            return None
        crash = data.get("crash")
        message = crash.get("message", "") if isinstance(crash, dict) else ""
        return cls(
            outcome=str(data["outcome"]),
            message=str(message),
            longrepr=str(data.get("longrepr", "")),
        )


@dataclass(frozen=True)
class TestReport:
    """One check as pytest-json-report wrote it."""

    nodeid: str
    outcome: str
    stages: tuple[tuple[str, StageReport], ...] = ()
    metadata: CheckMetadata = field(default_factory=CheckMetadata)

    __test__ = False  # not a pytest test class, whatever its name

    @property
    def check_id(self) -> str:
        name = self.nodeid.rpartition("::")[2]
        return name[5:] if name.startswith("test_") else name

    def to_json(self) -> dict:
        out = {"nodeid": self.nodeid, "outcome": self.outcome, "metadata": self.metadata.to_json()}
        out.update({name: stage.to_json() for name, stage in self.stages})
        return out

    @classmethod
    def from_json(cls, data: object) -> TestReport | None:
        if not isinstance(data, dict):
            return None
        stages = tuple(
            (name, s) for name in STAGES if (s := StageReport.from_json(data.get(name))) is not None
        )
        return cls(
            nodeid=str(data.get("nodeid", "")),
            outcome=str(data.get("outcome", "")),
            stages=stages,
            metadata=CheckMetadata.from_json(data.get("metadata")),
        )


@dataclass(frozen=True)
class HarnessReport:
    """The harness's whole report: one TestReport per check that ran."""

    tests: tuple[TestReport, ...] = ()

    def find(self, check_id: str) -> TestReport | None:
        return next((t for t in self.tests if t.check_id == check_id), None)

    def to_json(self) -> dict:
        return {"tests": [t.to_json() for t in self.tests]}

    @classmethod
    def from_json(cls, data: object) -> HarnessReport:
        tests = data.get("tests") if isinstance(data, dict) else None
        if not isinstance(tests, list):
            return cls()
        return cls(tuple(t for x in tests if (t := TestReport.from_json(x)) is not None))
