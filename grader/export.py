"""Export stage: Gradescope's results.json per submission and the class grades.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from grader.models import SubmissionResult


def write_results_json(result: SubmissionResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def write_grades_csv(results: list[SubmissionResult], path: Path) -> None:
    """One row per student: id, score, max, then the points of each check."""
    check_ids = []
    for r in results:
        for c in r.checks:
            if c.spec.id not in check_ids:
                check_ids.append(c.spec.id)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "score", "max", *check_ids])
        for r in sorted(results, key=lambda r: r.submission.id):
            points = {c.spec.id: c.score for c in r.checks}
            writer.writerow([r.submission.id, f"{r.score:g}", f"{r.max_score:g}",
                             *(f"{points[i]:g}" if i in points else "" for i in check_ids)])
