"""The class view's figures: rows with each student's main reason, pass rates, the most
common failure per check, the histogram and the class's provenance (pure)."""

from __future__ import annotations

from collections import Counter

from grader.contract.message import Message
from grader.models import GRADER_ERROR, NOT_GRADABLE, Assignment, CheckResult, SubmissionResult

HISTOGRAM_BINS = 10
EXAMPLE_STUDENTS = 3


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _num(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


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


def shape(reason: Message) -> str:
    """What makes two reasons the same mistake: the sentence's template, whatever values
    (client names, byte counts) it quotes; a reason made of parts, its English text."""
    return (reason.msgid if isinstance(reason, Message) else "") or str(reason)


def main_failure(r: SubmissionResult) -> CheckResult | None:
    """The first failed check in the rubric's order (the student's doing, not the grader's)."""
    return next((c for c in r.checks if c.status == "failed"), None)


def common_failures(results: list[SubmissionResult], check_id: str) -> dict | None:
    """The most frequent reason a check failed, how often, and a few students who got it."""
    failed = [
        (r.submission.id, c)
        for r in results
        for c in r.checks
        if c.spec.id == check_id and c.status == "failed"
    ]
    if not failed:
        return None
    counts = Counter(shape(c.reason) for _, c in failed)
    top, count = counts.most_common(1)[0]
    who = [(ident, c) for ident, c in failed if shape(c.reason) == top]
    return {
        "reason": who[0][1].reason,
        "count": count,
        "failed": len(failed),
        "examples": [ident for ident, _ in who[:EXAMPLE_STUDENTS]],
        "more": max(0, len(who) - EXAMPLE_STUDENTS),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def class_provenance(results: list[SubmissionResult]) -> dict:
    """The kit version(s) and the grading dates of a class, for the index's header."""
    found = [r.provenance for r in results if r.provenance is not None]
    versions = sorted({p.kit_version for p in found})
    dates = sorted(p.graded_at for p in found)
    if not dates:
        return {"kit_version": "", "graded": "", "graded_from": "", "graded_to": ""}
    graded = dates[0] if dates[0] == dates[-1] else f"{dates[0]} – {dates[-1]}"
    return {
        "kit_version": ", ".join(versions),
        "graded": graded,
        "graded_from": dates[0],
        "graded_to": dates[-1],
    }


def index_context(results: list[SubmissionResult], assignment: Assignment) -> dict:
    results = sorted(results, key=lambda r: r.submission.id)
    specs = list(assignment.checks)
    rows, problems = [], []
    for r in results:
        by_id = {c.spec.id: c for c in r.checks}
        errors = r.grader_errors
        main = main_failure(r)
        rows.append(
            {
                "result": r,
                "id": r.submission.id,
                "status": r.status,
                "score": _num(r.score, 2),
                "max": _num(r.max_score, 2),
                "percent": _num(_percent(r.score, r.max_score), 1),
                "error_reason": errors[0].reason if errors else "",
                "main": main,
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
                "percent": _num(_percent(passed, len(ran)), 1),
                "common": common_failures(results, s.id),
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
        "mean": _num(sum(scores) / len(scores), 1) if scores else "–",
        "median": _num(_median(scores), 1) if scores else "–",
        **class_provenance(results),
    }
