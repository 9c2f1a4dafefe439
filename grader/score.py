"""Score stage: the harness's report (grader.contract) + the rubric → a SubmissionResult (pure).

Everything that knows the harness's shapes and the tracer's vocabulary is here: what reaches
render is models only, its sentences already made.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime

from grader import __version__, requires
from grader.contract import (
    CheckMetadata,
    HarnessReport,
    Message,
    Story,
    TestReport,
    as_message,
    msg,
    verbatim,
)

# The tracer's sentences and how a run ended live in grader.explain; named here as before.
from grader.explain import TRACE_NOTES as TRACE_NOTES
from grader.explain import describe_exit as describe_exit
from grader.explain import program_run
from grader.explain import trace_note as trace_note
from grader.models import (
    Assignment,
    CheckResult,
    CheckSpec,
    Measurement,
    Provenance,
    RunOutcome,
    Submission,
    SubmissionResult,
    TimelineEntry,
)

FAILED_PREFIX = "Failed: "


# --- what a check measured and did ----------------------------------------------------------

# key → label, in the order shown; a key not listed is shown by its name after these.
MEASUREMENT_LABELS = {
    "cpu_fresh_percent": msg("CPU while idle, freshly started, no client"),
    "cpu_silent_percent": msg("CPU while idle, silent clients connected"),
    "cpu_after_percent": msg("CPU while idle, after the clients left"),
    "start_seconds": msg("time until it listened"),
}
UNITS = (("_percent", "%"), ("_seconds", "s"), ("_bytes", "bytes"))


def measurement(key: str, value) -> Measurement:
    clean = re.sub(r"[^a-z0-9_]", "", str(key).lower())
    unit = next((u for suffix, u in UNITS if clean.endswith(suffix)), "")
    label = MEASUREMENT_LABELS.get(clean) or verbatim(clean.replace("_", " ").strip() or str(key))
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return Measurement(
        key=str(key),
        label=label,
        value=value if numeric else str(value),
        unit=unit,
        cpu=clean.startswith("cpu") and unit == "%",
    )


def measurements(story: Story) -> tuple[Measurement, ...]:
    """CPU readings first, then the rest, each group in MEASUREMENT_LABELS' order."""
    rows = [measurement(k, v) for k, v in story.measurements.items()]
    order = list(MEASUREMENT_LABELS.values())
    rows.sort(key=lambda m: (not m.cpu, order.index(m.label) if m.label in order else len(order)))
    return tuple(rows)


def timeline(story: Story) -> tuple[TimelineEntry, ...]:
    return tuple(
        TimelineEntry(
            line.kind, line.text, line.t if line.t is None or math.isfinite(line.t) else None
        )
        for line in story.lines
    )


def explained(meta: CheckMetadata) -> dict:
    """The CheckResult fields that explain a verdict: timeline, figures, program runs."""
    return dict(
        story=timeline(meta.story),
        measurements=measurements(meta.story),
        processes=tuple(program_run(p) for p in meta.processes),
    )


# --- provenance -----------------------------------------------------------------------------


def kit_version() -> str:
    """The kit's version: grader.__version__, which the package's metadata is built from."""
    return __version__


def grading_date(now: datetime | None = None) -> str:
    """`now` (default: this moment) as ISO 8601 in UTC, to the second."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def provenance(
    assignment: Assignment,
    submission: Submission,
    outcome: RunOutcome | None,
    graded_at: str | None = None,
) -> Provenance:
    """What this grading was: kit, date, sandbox and image, assignment and files hashed."""
    return Provenance(
        kit_version=kit_version(),
        graded_at=graded_at or grading_date(),
        sandbox=outcome.sandbox if outcome else "none",
        image_id=outcome.image_id if outcome else "",
        image_digest=outcome.image_digest if outcome else "",
        assignment_hash=assignment.digest,
        files=submission.hashes,
        files_hashed=submission.hashed,
    )


# --- verdicts -------------------------------------------------------------------------------


def _stage_failure(test: TestReport) -> tuple[Message, str, str]:
    """(reason, fault, details) of the first stage that did not pass."""
    for _, stage in test.stages:
        if stage.outcome == "passed":
            continue
        if stage.message.startswith(FAILED_PREFIX):
            # A verdict the check reached: fail(reason), the sentence as a Message beside
            # pytest's message (which holds its English).
            english = stage.message[len(FAILED_PREFIX) :].strip()
            return test.metadata.reason or verbatim(english), "submission", ""
        if stage.outcome == "skipped":
            return (
                msg("not run: {why}", why=stage.longrepr or stage.message),
                "grader",
                stage.longrepr,
            )
        return (
            msg(
                "the grader itself failed while running this check ({error}); "
                "this is not the submission's fault",
                error=stage.message or "no message",
            ),
            "grader",
            stage.longrepr,
        )
    return msg("the check did not pass"), "grader", ""


def check_result(
    spec: CheckSpec, test: TestReport | None, missing_reason: Message, missing_fault: str
) -> CheckResult:
    if test is None:
        return CheckResult(spec, False, missing_reason, fault=missing_fault)
    common = explained(test.metadata)
    if test.outcome == "passed":
        return CheckResult(spec, True, verbatim(""), **common)
    reason, fault, details = _stage_failure(test)
    return CheckResult(spec, False, reason, fault=fault, details=details, **common)


def score(
    assignment: Assignment,
    submission: Submission,
    outcome: RunOutcome | None,
    only: tuple[str, ...] = (),
    graded_at: str | None = None,
) -> SubmissionResult:
    """The verdicts, with the provenance of this grading (`graded_at` default: now)."""
    result = _score(assignment, submission, outcome, only)
    return replace(result, provenance=provenance(assignment, submission, outcome, graded_at))


def _score(
    assignment: Assignment,
    submission: Submission,
    outcome: RunOutcome | None,
    only: tuple[str, ...],
) -> SubmissionResult:
    specs = [s for s in assignment.checks if not only or s.id in only]
    if submission.problem:
        problem = submission.problem
        checks = tuple(
            CheckResult(
                s,
                False,
                as_message(problem)
                if s.id == "runs"
                else msg("not graded: {problem}", problem=problem),
                fault="submission",
            )
            for s in specs
        )
        return SubmissionResult(
            submission,
            assignment,
            checks,
            0.0,
            outcome.sandbox if outcome else "none",
            {},
            note=as_message(problem),
        )
    if outcome is None:
        # A hand-in without a problem always reaches a sandbox: nothing came back is the kit's.
        nothing = msg("the grader prepared nothing to run for this submission")
        checks = tuple(CheckResult(s, False, nothing, fault="grader") for s in specs)
        return SubmissionResult(submission, assignment, checks, 0.0, "none", {}, note=nothing)
    report = HarnessReport.from_json(outcome.report) if outcome.report else None
    missing = (
        as_message(outcome.error)
        if outcome.error
        else msg("the harness reported nothing for this check")
    )
    fault = outcome.error_fault or "infrastructure"
    checks = requires.apply(
        tuple(check_result(s, report.find(s.id) if report else None, missing, fault) for s in specs)
    )
    return SubmissionResult(
        submission,
        assignment,
        checks,
        outcome.seconds,
        outcome.sandbox,
        outcome.limits,
        note=as_message(outcome.error),
    )
