"""Export stage: Gradescope's results.json per submission and the class grades.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from grader.models import GRADER_ERROR, CheckResult, CheckSpec, SubmissionResult


def write_results_json(result: SubmissionResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


# Excel opens a UTF-8 file without a BOM in the locale's code page (GBK in a Chinese locale)
# and garbles the names; with the BOM it reads UTF-8. csv.DictReader needs
# encoding="utf-8-sig" to drop the BOM from the first column's name.
GRADES_CSV_ENCODING = "utf-8-sig"

# A 0-point check earns nothing either way, so its points column would read 0 for pass and
# fail alike; it is exported as one of these words instead.
PASS, FAIL = "pass", "fail"


def grades_csv_column(spec: CheckSpec) -> str:
    """A check's column name: its id with its max, `echo (15)`, or `waits_its_turn (pass/fail)`
    for a check worth no points.

    The max sits in the header rather than in a second "points" row: a points row would be
    read as one more student by a spreadsheet's sort or filter and by csv.DictReader, while
    the header keeps exactly one row per student."""
    worth = f"{spec.points:g}" if spec.points else f"{PASS}/{FAIL}"
    return f"{spec.id} ({worth})"


def write_grades_csv(results: list[SubmissionResult], path: Path) -> None:
    """One row per student: id, score, max, status, then a column per check.

    `status` is graded, grader_error or not_gradable. A check's cell is its points, or pass /
    fail for a check worth no points. Where the grader failed, the score and the cells of the
    checks it could not judge are left empty: a blank is not a grade, a 0 would read as the
    student's."""
    specs: dict[str, CheckSpec] = {}
    for r in results:
        for c in r.checks:
            specs.setdefault(c.spec.id, c.spec)
    with open(path, "w", newline="", encoding=GRADES_CSV_ENCODING) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            ["id", "score", "max", "status", *(grades_csv_column(s) for s in specs.values())]
        )
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
                    *(_cell(by_id.get(i)) for i in specs),
                ]
            )


def _cell(check: CheckResult | None) -> str:
    """Empty where the check did not run or the grader failed on it."""
    if check is None or check.grader_error:
        return ""
    if not check.spec.points:
        return PASS if check.passed else FAIL
    return f"{check.score:g}"
