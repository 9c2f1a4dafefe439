"""Render stage: SubmissionResults → a per-student report.html and the class index.html (Jinja2).

It reads grader.models only: what the harness recorded reaches it already explained."""

from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from grader.models import (
    GRADER_ERROR,
    GRADER_ERROR_NOTE,
    NOT_GRADABLE,
    Assignment,
    CheckResult,
    SubmissionResult,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
HISTOGRAM_BINS = 10

# Everything below is escaped on output: a report shows text the student's program chose
# (its output, and the tracer's notes, which run inside the student's process).
ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def num(value, digits: int = 2) -> str:
    """A number as people write it: 10, 8.7, 0.05 (no float noise, no exponent)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def size(value) -> str:
    """A byte count for people: 18 bytes, 4.2 MB (4213748 bytes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{value} bytes"
    if value < 10_000:
        return f"{value} byte{'' if value == 1 else 's'}"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{num(value / scale, 1)} {unit} ({value} bytes)"
    return f"{value} bytes"


def since(t) -> str:
    """A time in a check's timeline: +0.946 s after it started; blank when unknown."""
    return f"+{t:.3f} s" if isinstance(t, (int, float)) and math.isfinite(t) else ""


ENV.filters["num"] = num
ENV.filters["size"] = size
ENV.filters["since"] = since


# --- one check ----------------------------------------------------------------------------

FAULTS = {
    "grader": "Not the student's fault: the grader itself failed on this check.",
    "infrastructure": "Not the student's fault: the grading machine or sandbox failed.",
}


def check_view(check: CheckResult, problem: str = "", label: str = "Server run") -> dict:
    # A hint helps only where the student's code was judged: not when the grader failed, and
    # not on checks skipped because nothing could be run (the `runs` check says why).
    hint = check.hint_applies and (not problem or "runs" in check.spec.tags)
    return {
        "id": check.spec.id,
        "spec": check.spec,
        "passed": check.passed,
        "status": check.status,
        "grader_error": check.grader_error,
        "score": num(check.score),
        "points": num(check.spec.points),
        "reason": check.reason,
        "show_hint": hint,
        "fault_note": FAULTS.get(check.fault, "") if check.grader_error else "",
        "story": check.story,
        "measurements": check.measurements,
        "processes": check.processes,
        "run_label": label,
        "details": check.details,
    }


def ordered_checks(result: SubmissionResult) -> list[CheckResult]:
    """Failed checks first (what needs attention), each group in the rubric's order."""
    return sorted(result.checks, key=lambda c: c.passed)


# --- pages --------------------------------------------------------------------------------


def report_context(result: SubmissionResult, self_check: bool = False) -> dict:
    checks = ordered_checks(result)
    hidden = [s for s in result.assignment.checks if not s.self_check]
    # The sandbox may also describe itself among the limits ("local (no isolation)"): one line.
    limits = {str(k): v for k, v in (result.limits or {}).items()}
    described = str(limits.pop("sandbox", "") or "")
    sandbox = (
        result.sandbox
        if not described or described == result.sandbox
        else (
            described if described.startswith(result.sandbox) else f"{result.sandbox}: {described}"
        )
    )
    return {
        "result": result,
        "sub": result.submission,
        "assignment": result.assignment,
        "sandbox": sandbox,
        "limits": limits,
        "score": num(result.score),
        "max_score": num(result.max_score),
        "execution_time": num(result.execution_time, 1),
        "checks": [
            check_view(
                c,
                result.submission.problem,
                "Client run" if result.assignment.kind == "client" else "Server run",
            )
            for c in checks
        ],
        "failed": sum(c.status == "failed" for c in checks),
        "errors": sum(c.grader_error for c in checks),
        "status": result.status,
        "grader_error_note": GRADER_ERROR_NOTE,
        "self_check": self_check,
        "hidden_count": len(hidden),
        "show_details": not self_check,
    }


def render_report(
    result: SubmissionResult, *, self_check: bool = False, speaker=None, nav=None
) -> str:
    """One student's report. `self_check`: the student ran the visible checks themselves
    (a banner says so, and grader tracebacks meant for TAs are left out)."""
    return ENV.get_template("report.html").render(report_context(result, self_check))


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def histogram(results: list[SubmissionResult], bins: int = HISTOGRAM_BINS) -> list[dict]:
    """Counts of scores (as % of the maximum) in equal bins; 100% falls into the last one.
    A submission the grader failed on has no score yet: it is left out, never counted as 0."""
    counts = [0] * bins
    for r in results:
        if r.status == GRADER_ERROR:
            continue
        pct = _percent(r.score, r.max_score)
        counts[min(bins - 1, max(0, int(pct * bins // 100)))] += 1
    width = 100 // bins
    return [
        {"low": i * width, "high": 100 if i == bins - 1 else (i + 1) * width, "count": n}
        for i, n in enumerate(counts)
    ]


def index_context(results: list[SubmissionResult], assignment: Assignment) -> dict:
    results = sorted(results, key=lambda r: r.submission.id)
    specs = list(assignment.checks)
    rows, problems = [], []
    for r in results:
        by_id = {c.spec.id: c for c in r.checks}
        errors = r.grader_errors
        rows.append(
            {
                "result": r,
                "id": r.submission.id,
                "status": r.status,
                "score": num(r.score),
                "max": num(r.max_score),
                "percent": num(_percent(r.score, r.max_score), 1),
                "error_reason": errors[0].reason if errors else "",
                "cells": [by_id.get(s.id) for s in specs],
            }
        )
        if r.submission.problem or r.note or errors:
            problems.append(
                {
                    "id": r.submission.id,
                    "problem": r.submission.problem,
                    "note": r.note if r.note != r.submission.problem else "",
                    "not_theirs": [c.spec.id for c in errors],
                }
            )
    rates = []
    for s in specs:
        # A check the grader failed on was not judged: it counts neither way.
        ran = [c for r in results for c in r.checks if c.spec.id == s.id and not c.grader_error]
        passed = sum(c.passed for c in ran)
        rates.append(
            {
                "spec": s,
                "passed": passed,
                "ran": len(ran),
                "percent": num(_percent(passed, len(ran)), 1),
            }
        )
    scores = [_percent(r.score, r.max_score) for r in results if r.status != GRADER_ERROR]
    return {
        "assignment": assignment,
        "specs": specs,
        "rows": rows,
        "rates": rates,
        "histogram": histogram(results),
        "problems": problems,
        "count": len(results),
        "with_problem": sum(r.status == NOT_GRADABLE for r in results),
        "not_their_fault": sum(r.status == GRADER_ERROR for r in results),
        "full_marks": sum(r.max_score > 0 and r.score >= r.max_score for r in results),
        "mean": num(sum(scores) / len(scores), 1) if scores else "–",
        "median": num(_median(scores), 1) if scores else "–",
        **_class_provenance(results),
    }


def _class_provenance(results: list[SubmissionResult]) -> dict:
    """The kit version(s) and the grading dates of a class, for the index's header."""
    found = [r.provenance for r in results if r.provenance is not None]
    versions = sorted({p.kit_version for p in found})
    dates = sorted(p.graded_at for p in found)
    if not dates:
        return {"kit_version": "", "graded": ""}
    graded = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    return {"kit_version": ", ".join(versions), "graded": graded}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _script(name: str) -> tuple[Markup, str]:
    """Our own inline script and its CSP hash: the page runs this script and no other."""
    code = ENV.get_template(name).render()
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    return Markup(code), f"'sha256-{digest}'"


def render_index(results: list[SubmissionResult], assignment: Assignment, *, speaker=None) -> str:
    """The class overview for TAs: sortable table, per-check pass rates, score histogram."""
    script, script_hash = _script("_sort.js.html")
    return ENV.get_template("index.html").render(
        index_context(results, assignment), sort_script=script, script_hash=script_hash
    )


def _write(text: str, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def write_report(result: SubmissionResult, path: Path, **kw) -> Path:
    return _write(render_report(result, **kw), path)


def write_index(
    results: list[SubmissionResult], assignment: Assignment, path: Path, *, speaker=None
) -> Path:
    return _write(render_index(results, assignment, speaker=speaker), path)
