"""Typed, frozen records between the stages (discover → sandbox → score → render/export)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.contract.message import Message, msg

# How a check that could not judge the code begins its reason (the harness says it).
NOT_JUDGED_PREFIX = "not judged"

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")

# Faults that are nobody's but the kit's or the machine's: such a check was not judged, so it
# is shown as a grader error, never as the student's failure, and gets no student hint.
GRADER_FAULTS = ("grader", "infrastructure")

# A submission's status (results.json extra_data, grades.csv): its checks were all judged;
# the kit or the machine failed on some of them; or the hand-in itself cannot be graded (no
# entry file, not a zip, ...), which is the submission's own doing.
GRADED, GRADER_ERROR, NOT_GRADABLE = "graded", "grader_error", "not_gradable"
GRADER_ERROR_LABEL = msg("GRADER ERROR")
GRADER_ERROR_NOTE = msg(
    "This is a fault of the grader or the grading machine, not of the "
    "submitted code; it needs to be graded again."
)
# An empty sentence: the default of every Message field that may say nothing.
NOTHING = Message("")


@dataclass(frozen=True)
class Text:
    """A sentence in the course's two languages."""

    en: str
    zh: str = ""

    @classmethod
    def of(cls, value) -> Text:
        if isinstance(value, dict):
            return cls(en=str(value.get("en", "")), zh=str(value.get("zh", "")))
        return cls(en=str(value or ""))


@dataclass(frozen=True)
class CheckSpec:
    id: str
    tags: tuple[str, ...]
    points: float
    visibility: str
    title: Text
    explain: Text
    hint: Text
    # Checks of the same assignment this one needs: when one did not pass, neither does this.
    requires: tuple[str, ...] = ()

    @property
    def self_check(self) -> bool:
        """Whether a student's self-check runs it (only what students may see)."""
        return self.visibility == "visible"


@dataclass(frozen=True)
class Assignment:
    name: str
    title: Text
    entry: str
    kind: str  # "server" or "client"
    checks: tuple[CheckSpec, ...]
    folder: Path
    digest: str = ""  # SHA-256 of assignment.toml + checks.py, so a regrade can tell versions

    @property
    def checks_file(self) -> Path:
        return self.folder / "checks.py"

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    def check(self, check_id: str) -> CheckSpec:
        for spec in self.checks:
            if spec.id == check_id:
                return spec
        raise KeyError(check_id)


@dataclass(frozen=True)
class FileHash:
    """One handed-in file: its path relative to the submission, size and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Provenance:
    """What a regrade dispute needs: which kit, when, in which sandbox and image, against
    which version of the assignment, on exactly which files."""

    kit_version: str
    graded_at: str  # ISO 8601, UTC
    sandbox: str
    image_id: str = ""  # Docker only: the engine's id of the grading image
    image_digest: str = ""  # Docker only, and only for an image pulled from a registry
    assignment_hash: str = ""
    files: tuple[FileHash, ...] = ()
    files_hashed: str = ""  # "as handed in" or "prepared copy"

    def to_json(self) -> dict:
        return {
            "kit_version": self.kit_version,
            "graded_at": self.graded_at,
            "sandbox": self.sandbox,
            "image_id": self.image_id or None,
            "image_digest": self.image_digest or None,
            "assignment_hash": self.assignment_hash,
            "files_hashed": self.files_hashed,
            "files": {f.path: f.sha256 for f in self.files},
        }


@dataclass(frozen=True)
class Submission:
    """One student's hand-in, prepared as a folder the sandbox can copy."""

    id: str
    source: Path  # what the TA gave: a folder, a .py file or a .zip
    folder: Path | None  # the prepared folder (None when nothing could be prepared)
    entry: str | None  # entry file inside `folder`
    problem: Message = NOTHING  # why no entry could be chosen; graded as a failed `runs`
    files: tuple[str, ...] = ()
    hashes: tuple[FileHash, ...] = ()  # of `folder`'s files, what the sandbox is given
    hashed: str = ""  # "as handed in" or "prepared copy" (unzipped, or without tool folders)


@dataclass(frozen=True)
class RunRequest:
    """What a sandbox is asked to do: run these checks of this assignment on this folder."""

    submission: Submission
    assignment: Assignment
    only: tuple[str, ...]  # check ids to run; empty = all
    wall_clock: float  # seconds, enforced from outside the harness


@dataclass(frozen=True)
class RunOutcome:
    """What came back from a sandbox. `report` is pytest-json-report's JSON as written by the
    harness (never anything the student's code could write); `error` says why there is no
    complete report, and whose fault it is."""

    report: dict | None
    seconds: float
    sandbox: str
    limits: dict = field(default_factory=dict)
    error: Message = NOTHING
    error_fault: str = ""  # "submission" (e.g. wall clock exceeded) or "infrastructure"
    log: str = ""  # the harness's own output, for TAs debugging the kit
    image_id: str = ""  # the grading image, where the sandbox runs one (Docker)
    image_digest: str = ""
    engine: str = ""  # where it ran, where a sandbox runs on an engine (Docker: its URL)


@dataclass(frozen=True)
class TimelineEntry:
    """One thing a check did ("did") or saw ("saw"), `t` seconds after it started."""

    kind: str
    text: Message
    t: float | None = None

    @property
    def scenario(self) -> bool:
        """A heading within the timeline: a check that tries several scenarios says so."""
        return str(self.text).startswith("— ")


@dataclass(frozen=True)
class Measurement:
    """One figure a check measured, with its label and unit for people."""

    key: str  # the check's name for it (results.json keeps this)
    label: Message
    value: float | int | str
    unit: str = ""  # "%", "s", "bytes" or ""
    cpu: bool = False  # a CPU share, in percent

    @property
    def numeric(self) -> bool:
        return (
            isinstance(self.value, (int, float))
            and not isinstance(self.value, bool)
            and math.isfinite(self.value)
        )

    @property
    def bar(self) -> float | None:
        """How full a 0 to 100% bar is, for a CPU share."""
        return max(0.0, min(100.0, float(self.value))) if self.cpu and self.numeric else None


@dataclass(frozen=True)
class TraceNote:
    """One tracer event as a sentence; `alarm` when it points at a fault."""

    text: Message
    kind: str = "other"
    alarm: bool = False


@dataclass(frozen=True)
class ProgramRun:
    """One run of the student's program during a check, explained."""

    stdout: str = ""
    stderr: str = ""
    output_bytes: int | None = None
    exit: Message = NOTHING  # how it ended, as a phrase: "exited with code 1"
    notes: tuple[TraceNote, ...] = ()

    @property
    def traceback(self) -> bool:
        """Its error output holds a Python traceback with at least one line after its
        header (a lone header is not shown as a traceback)."""
        head = "Traceback (most recent call last)"
        if head not in self.stderr:
            return False
        return bool(self.stderr.split(head, 1)[1].strip(": \n"))


@dataclass(frozen=True)
class CheckResult:
    spec: CheckSpec
    passed: bool
    reason: Message  # one sentence; empty when passed
    story: tuple[TimelineEntry, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    processes: tuple[ProgramRun, ...] = ()
    fault: str = ""  # "", "submission", "grader", "infrastructure"
    details: str = ""  # a grader traceback, for TAs only

    @property
    def score(self) -> float:
        return self.spec.points if self.passed else 0.0

    @property
    def grader_error(self) -> bool:
        """The kit or the machine failed on this check: it was not judged."""
        return not self.passed and self.fault in GRADER_FAULTS

    @property
    def status(self) -> str:
        """ "passed", "failed" (the submission's doing) or "grader_error"."""
        if self.passed:
            return "passed"
        return GRADER_ERROR if self.grader_error else "failed"

    @property
    def hint_applies(self) -> bool:
        """A hint helps only where this check judged the student's code: not when the grader
        failed, nor when the check could not judge ("not judged: see runs")."""
        return (
            not self.passed
            and not self.grader_error
            and not str(self.reason).startswith(NOT_JUDGED_PREFIX)
        )


@dataclass(frozen=True)
class SubmissionResult:
    submission: Submission
    assignment: Assignment
    checks: tuple[CheckResult, ...]
    execution_time: float
    sandbox: str
    limits: dict = field(default_factory=dict)
    note: Message = NOTHING  # a grading-wide remark (e.g. "grading stopped after 120 s")
    provenance: Provenance | None = None
    engine: str = ""  # the Docker engine it ran on (its URL), when it ran on one

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.spec.points for c in self.checks)

    @property
    def status(self) -> str:
        """GRADED, GRADER_ERROR (the kit or the machine failed on at least one check) or
        NOT_GRADABLE (the hand-in cannot be graded: `submission.problem` says why)."""
        if self.submission.problem:
            return NOT_GRADABLE
        if any(c.grader_error for c in self.checks):
            return GRADER_ERROR
        return GRADED

    @property
    def grader_errors(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.grader_error)

    def in_brief(self) -> SubmissionResult:
        """What a batch keeps of it once its own files are written, for the class overview,
        grades.csv and the terminal: every check's verdict and reason, without its timeline,
        measurements, program runs or traceback. So a class of 200 takes no more memory than
        a class of 20."""
        brief = tuple(
            replace(c, story=(), measurements=(), processes=(), details="") for c in self.checks
        )
        return replace(self, checks=brief)
