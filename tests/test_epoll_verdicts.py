"""The epoll class graded as a TA would: exit code, results.json format, grades.csv, bounded
time for bad input, no process left behind, reports in terms of the student's code."""

from __future__ import annotations

import csv

import psutil

from grader import export
from grader.assignment import load_assignment
from tests.conftest import EXPECTED_EPOLL
from tests.verdicts import load_results

EPOLL = load_assignment("epoll")
ALL_CHECKS = {c.id for c in EPOLL.checks}


def test_batch_exit_code_is_zero_whatever_the_scores(epoll_batch_local):
    code, out = epoll_batch_local
    assert code == 0
    assert (out / "index.html").is_file()
    assert not (out / ".work").exists(), "scratch files were left behind"


def test_reference_full_marks_and_results_json_format(epoll_batch_local):
    _, out = epoll_batch_local
    results = load_results(out, "reference")
    assert results["score"] == EPOLL.max_score == 100
    assert set(results) >= {"score", "execution_time", "output", "tests"}
    assert 0 < results["execution_time"] < 60
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "tags", "output", "visibility"}
        assert test["status"] == "passed" and test["score"] == test["max_score"]
        assert test["tags"] == list(EPOLL.check(test["number"]).tags)
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")


def test_grades_csv(epoll_batch_local):
    _, out = epoll_batch_local
    with open(out / "grades.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == set(EXPECTED_EPOLL)
    assert by_id["reference"]["score"] == "100" and by_id["reference"]["max"] == "100"
    col = {s.id: export.grades_csv_column(s) for s in EPOLL.checks}
    assert by_id["busy_poll"][col["idle_cpu"]] == "0" and by_id["busy_poll"][col["echo"]] == "15"
    assert list(rows[0])[:4] == ["id", "score", "max", "status"]
    assert set(list(rows[0])[4:]) == {col[i] for i in ALL_CHECKS}
    assert by_id["reference"]["status"] == "graded"
    assert by_id["not_a_zip"]["status"] == "not_gradable"


def test_bad_input_graded_in_bounded_time(epoll_batch_local):
    _, out = epoll_batch_local
    for ident in ("never_listens", "floods", "syntax_error"):
        assert load_results(out, ident)["execution_time"] < 40, ident


def test_nothing_of_the_submissions_survives(epoll_batch_local):
    """Grading made this process a subreaper: whatever a submission left behind (a daemon that
    exec'd something else included) would now be our child. None may be."""
    _, out = epoll_batch_local
    leftovers = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                leftovers.append(" ".join(proc.cmdline()))
        except psutil.Error:
            pass
    assert leftovers == []
    for proc in psutil.process_iter(["cmdline"]):
        assert str(out) not in " ".join(proc.info["cmdline"] or [])


def test_report_explains_in_terms_of_the_students_code(epoll_batch_local):
    _, out = epoll_batch_local
    html = (out / "close_then_unregister" / "report.html").read_text(encoding="utf-8")
    assert "server.py:18" in html and "conn.close()" in html
    html = (out / "blocking" / "report.html").read_text(encoding="utf-8")
    assert "client A connected and sent nothing" in html


def test_a_failed_start_shows_the_students_traceback(epoll_batch_local):
    _, out = epoll_batch_local
    html = (out / "import_error" / "report.html").read_text(encoding="utf-8")
    assert "import selector  # typo: the module is selectors" in html  # only in the traceback
    assert "boot.py" not in html and "runpy" not in html
