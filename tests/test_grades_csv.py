"""grades.csv as a TA's spreadsheet and a script read it: UTF-8 with a BOM, the max of each
check in its column name, and pass / fail for a check worth no points. No grading here: the
SubmissionResults are built by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader import export
from grader.assignment import load_assignment
from grader.models import CheckResult, Submission, SubmissionResult

NO_POINTS = "waits_its_turn"


@pytest.fixture(scope="module")
def blocking():
    return load_assignment("blocking")


def result(ident: str, assignment, failing: set[str] = frozenset(), fault: str = ""):
    """A graded hand-in that passes every check but those in `failing`."""
    sub = Submission(ident, Path("/nonexistent") / ident, Path("/nonexistent") / ident, "server.py")
    checks = tuple(
        CheckResult(s, s.id not in failing, "it did not" if s.id in failing else "", fault=fault)
        for s in assignment.checks
    )
    return SubmissionResult(sub, assignment, checks, 4.2, "local")


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_starts_with_a_utf8_bom(tmp_path, blocking):
    export.write_grades_csv([result("alice", blocking)], tmp_path / "grades.csv")
    assert (tmp_path / "grades.csv").read_bytes()[:3] == b"\xef\xbb\xbf"


def test_header_carries_each_checks_max(tmp_path, blocking):
    export.write_grades_csv([result("alice", blocking)], tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh))
    assert header == [
        "id",
        "score",
        "max",
        "status",
        "runs (30)",
        "echo (40)",
        "disconnect (30)",
        "waits_its_turn (pass/fail)",
    ]
    # One row per student: no points row a sort or a DictReader would take for a student.
    assert [r["id"] for r in read(tmp_path / "grades.csv")] == ["alice"]


def test_a_zero_point_check_reads_pass_or_fail(tmp_path, blocking):
    col = export.grades_csv_column(blocking.check(NO_POINTS))
    results = [
        result("alice", blocking),
        result("bob", blocking, failing={NO_POINTS, "disconnect"}),
        result("carol", blocking, failing={NO_POINTS}, fault="infrastructure"),
    ]
    export.write_grades_csv(results, tmp_path / "grades.csv")
    rows = {r["id"]: r for r in read(tmp_path / "grades.csv")}
    assert rows["alice"][col] == "pass" and rows["alice"]["score"] == "100"
    assert rows["bob"][col] == "fail" and rows["bob"]["disconnect (30)"] == "0"
    assert rows["bob"]["score"] == "70" and rows["bob"]["status"] == "graded"
    # The grader broke on it: not judged, so neither pass nor fail, and no score.
    assert rows["carol"][col] == "" and rows["carol"]["status"] == "grader_error"
    assert rows["carol"]["score"] == "" and rows["carol"]["echo (40)"] == "40"
    assert "0" not in {r[col] for r in rows.values()}


def test_a_chinese_student_id_round_trips(tmp_path, blocking):
    ident = "张伟_2023011234"
    export.write_grades_csv([result(ident, blocking)], tmp_path / "grades.csv")
    rows = read(tmp_path / "grades.csv")
    assert next(iter(rows[0])) == "id"  # utf-8-sig drops the BOM from the first column's name
    assert rows[0]["id"] == ident
