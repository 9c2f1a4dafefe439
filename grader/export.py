"""Export stage: Gradescope's results.json per submission and the class grades.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from grader.models import GRADER_ERROR, CheckResult, SubmissionResult


def write_results_json(result: SubmissionResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def write_grades_csv(results: list[SubmissionResult], path: Path) -> None:
    """One row per student: id, score, max, status, then the points of each check.

    `status` is graded, grader_error or not_gradable. Where the grader failed, the score and
    the points of the checks it could not judge are left empty: a blank is not a grade, a
    0 would read as the student's."""
    check_ids = []
    for r in results:
        for c in r.checks:
            if c.spec.id not in check_ids:
                check_ids.append(c.spec.id)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "score", "max", "status", *check_ids])
        for r in sorted(results, key=lambda r: r.submission.id):
            by_id = {c.spec.id: c for c in r.checks}
            status = r.status
            score = "" if status == GRADER_ERROR else f"{r.score:g}"
            writer.writerow(
                [
                    r.submission.id,
                    score,
                    f"{r.max_score:g}",
                    status,
                    *(_points(by_id.get(i)) for i in check_ids),
                ]
            )


def _points(check: CheckResult | None) -> str:
    if check is None or check.grader_error:
        return ""
    return f"{check.score:g}"
