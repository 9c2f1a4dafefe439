"""The report the harness writes for each check, as the host reads it back (pytest-json-report)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.contract.message import Message, verbatim
from grader.contract.trace import TraceEvent, finite_number

# The pytest-json-report metadata keys the harness writes for one check.
STORY_KEY = "story"
PROCESSES_KEY = "processes"
REASON_KEY = "reason"  # the verdict's sentence as a Message (its English is the crash message)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class StoryLine:
    """One thing a check did ("did") or saw ("saw"), seconds after the check started."""

    kind: str
    text: Message
    t: float | None = None

    def to_json(self) -> dict:
        # "text" is the English, for a human reading the JSON; "msg" is what translates.
        return {"t": self.t, "kind": self.kind, "text": str(self.text), "msg": self.text.to_json()}

    @classmethod
    def from_json(cls, data: object) -> StoryLine:
        if not isinstance(data, dict):
            return cls(kind="did", text=verbatim(str(data)))
        message = data.get("msg")
        return cls(
            kind="saw" if data.get("kind") == "saw" else "did",
            text=Message.from_json(message)
            if message is not None
            else verbatim(str(data.get("text", ""))),
            t=finite_number(data.get("t")),
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
    # Who ended it when it did not end by itself: "grader" (stopped after its check) or why
    # the kit killed it ("memory: 600 MiB resident, limit 512 MiB"); "" otherwise.
    ended_by: str = ""

    def to_json(self) -> dict:
        out = {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "output_bytes": self.output_bytes,
            "exit_code": self.exit_code,
            "trace": [e.to_json() for e in self.trace],
        }
        if self.ended_by:  # absent when the program ended by itself
            out["ended_by"] = self.ended_by
        return out

    @classmethod
    def from_json(cls, data: object) -> ProcessReport:
        data = data if isinstance(data, dict) else {}
        trace = data.get("trace")
        return cls(
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            output_bytes=_int(data.get("output_bytes")),
            exit_code=_int(data.get("exit_code")),
            ended_by=str(data.get("ended_by") or ""),
            trace=tuple(TraceEvent.from_json(e) for e in trace)
            if isinstance(trace, (list, tuple))
            else (),
        )


@dataclass(frozen=True)
class CheckMetadata:
    """What the kit's fixtures put into one check's pytest-json-report metadata."""

    story: Story = field(default_factory=Story)
    processes: tuple[ProcessReport, ...] = ()
    reason: Message | None = None  # the verdict's sentence, when the check failed

    def to_json(self) -> dict:
        out = {
            STORY_KEY: self.story.to_json(),
            PROCESSES_KEY: [p.to_json() for p in self.processes],
        }
        if self.reason is not None:
            out[REASON_KEY] = self.reason.to_json()
        return out

    @classmethod
    def from_json(cls, data: object) -> CheckMetadata:
        data = data if isinstance(data, dict) else {}
        procs = data.get(PROCESSES_KEY)
        reason = data.get(REASON_KEY)
        return cls(
            reason=Message.from_json(reason) if reason is not None else None,
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
