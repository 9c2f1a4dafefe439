"""Score stage: pytest-json-report JSON + the assignment's rubric → a SubmissionResult (pure)."""

from __future__ import annotations

from grader.models import (Assignment, CheckResult, CheckSpec, RunOutcome, Submission,
                           SubmissionResult)

FAILED_PREFIX = "Failed: "


def _find(report: dict, check_id: str) -> dict | None:
    suffix = f"::test_{check_id}"
    for test in report.get("tests", []):
        if isinstance(test, dict) and str(test.get("nodeid", "")).endswith(suffix):
            return test
    return None


def _stage_failure(test: dict) -> tuple[str, str, str]:
    """(reason, fault, details) of the first stage that did not pass."""
    for stage in ("setup", "call", "teardown"):
        info = test.get(stage) or {}
        if info.get("outcome") in (None, "passed"):
            continue
        message = str((info.get("crash") or {}).get("message", ""))
        longrepr = str(info.get("longrepr", ""))
        if message.startswith(FAILED_PREFIX):
            # A verdict the check reached: pytest.fail(reason) with the student-facing sentence.
            return message[len(FAILED_PREFIX):].strip(), "submission", ""
        if info.get("outcome") == "skipped":
            return f"not run: {longrepr or message}", "grader", longrepr
        return (f"the grader itself failed while running this check ({message or 'no message'}); "
                f"this is not the submission's fault", "grader", longrepr)
    return "the check did not pass", "grader", ""


def check_result(spec: CheckSpec, test: dict | None, missing_reason: str,
                 missing_fault: str) -> CheckResult:
    if test is None:
        return CheckResult(spec, False, missing_reason, fault=missing_fault)
    meta = test.get("metadata") or {}
    story = meta.get("story") or {}
    common = dict(story=tuple(story.get("lines", ())),
                  measurements=dict(story.get("measurements", {})),
                  processes=tuple(meta.get("processes", ())))
    if test.get("outcome") == "passed":
        return CheckResult(spec, True, "", **common)
    reason, fault, details = _stage_failure(test)
    return CheckResult(spec, False, reason, fault=fault, details=details, **common)


def score(assignment: Assignment, submission: Submission, outcome: RunOutcome | None,
          only: tuple[str, ...] = ()) -> SubmissionResult:
    specs = [s for s in assignment.checks if not only or s.id in only]
    if submission.problem:
        problem = submission.problem
        checks = tuple(
            CheckResult(s, False, problem if s.id == "runs" else f"not graded: {problem}",
                        fault="submission") for s in specs)
        return SubmissionResult(submission, assignment, checks, 0.0,
                                outcome.sandbox if outcome else "none", {}, note=problem)
    if outcome is None:
        # A hand-in without a problem always reaches a sandbox: nothing came back is the kit's.
        problem = "the grader prepared nothing to run for this submission"
        checks = tuple(CheckResult(s, False, problem, fault="grader") for s in specs)
        return SubmissionResult(submission, assignment, checks, 0.0, "none", {}, note=problem)
    report = outcome.report or {}
    missing = outcome.error or "the harness reported nothing for this check"
    fault = outcome.error_fault or "infrastructure"
    checks = tuple(check_result(s, _find(report, s.id) if outcome.report else None, missing,
                                fault) for s in specs)
    return SubmissionResult(submission, assignment, checks, outcome.seconds, outcome.sandbox,
                            outcome.limits, note=outcome.error)
