"""Faults by whose they are: a fault of the kit or the machine is a grader error everywhere
(terminal, results.json, grades.csv, index and report), never a student's failure."""

from __future__ import annotations

import copy
import csv
import html
import json
import shutil
from pathlib import Path

import pytest

from grader import export, render
from grader.assignment import load_assignment
from grader.cli import CHECK_GRADER_ERROR, main
from grader.export import gradescope_results
from grader.i18n import Speaker
from grader.models import RunOutcome, Submission
from grader.sandbox import local as sandbox_module
from grader.score import score
from tests.conftest import reference_file

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
FIX = ROOT / "assignments" / "epoll" / "fixtures"
NO_REPORT = "the grader's harness ended (code 0) without a report"


@pytest.fixture(scope="module")
def epoll():
    return load_assignment("epoll")


@pytest.fixture(scope="module")
def report() -> dict:
    """A real harness report: the course's listing passes 9 checks and fails robustness."""
    return json.loads((DATA / "course_listing_report.json").read_text(encoding="utf-8"))


def sub(ident: str, problem: str = "") -> Submission:
    folder = None if problem else Path("/nonexistent") / ident
    return Submission(
        ident,
        Path("/nonexistent") / ident,
        folder,
        None if problem else "server.py",
        problem=problem,
    )


def no_report(ident: str, epoll):
    return score(
        epoll,
        sub(ident),
        RunOutcome(None, 3.0, "local", error=NO_REPORT, error_fault="infrastructure"),
    )


def graded(ident: str, epoll, report):
    return score(epoll, sub(ident), RunOutcome(report, 8.7, "local"))


def not_gradable(ident: str, epoll):
    return score(epoll, sub(ident, problem="no server.py was handed in"), None)


def errored_in_setup(report: dict, check_id: str) -> dict:
    """The report with one check that the kit itself broke on (an error in its fixture)."""
    broken = copy.deepcopy(report)
    for test in broken["tests"]:
        if test["nodeid"].endswith(f"::test_{check_id}"):
            test["outcome"] = "error"
            test["setup"] = {
                "outcome": "failed",
                "crash": {"message": "OSError: [Errno 24] Too many open files"},
                "longrepr": "Traceback ...\nOSError: [Errno 24] Too many open files",
            }
            test.pop("call", None)
    return broken


# --- score and models ---------------------------------------------------------------------


def test_no_report_is_a_grader_error_on_every_check(epoll):
    result = no_report("bob", epoll)
    assert result.status == "grader_error"
    assert [c.status for c in result.checks] == ["grader_error"] * len(epoll.checks)
    assert all(str(c.reason) == NO_REPORT for c in result.checks)


def test_results_json_of_a_grader_error_has_its_status_and_no_hint(epoll):
    data = gradescope_results(no_report("bob", epoll))
    assert data["extra_data"]["status"] == "grader_error"
    assert data["output"].startswith("GRADER ERROR: the grader could not judge runs, echo")
    for test in data["tests"]:
        # Gradescope knows only "passed" and "failed": the grader error is said elsewhere.
        assert test["status"] == "failed"
        assert test["extra_data"]["status"] == "grader_error"
        assert test["extra_data"]["fault"] == "infrastructure"
        assert test["output"].startswith(f"GRADER ERROR: {NO_REPORT}\n")
        assert "not of the submitted code" in test["output"]
        assert "Hint" not in test["output"]


def test_a_student_failure_keeps_its_hint_and_the_submission_is_graded(epoll, report):
    data = gradescope_results(graded("alice", epoll, report))
    assert data["extra_data"]["status"] == "graded"
    assert not data["output"].startswith("GRADER ERROR")
    robustness = next(t for t in data["tests"] if t["number"] == "robustness")
    assert robustness["status"] == "failed"
    assert robustness["extra_data"]["status"] == "failed"
    assert "\nHint: " in robustness["output"]
    assert {t["extra_data"]["status"] for t in data["tests"] if t["number"] != "robustness"} == {
        "passed"
    }


def test_one_check_the_kit_broke_on_makes_the_submission_a_grader_error(epoll, report):
    result = graded("carol", epoll, errored_in_setup(report, "cleanup"))
    assert result.status == "grader_error"
    by_id = {c.spec.id: c for c in result.checks}
    assert by_id["cleanup"].status == "grader_error" and by_id["cleanup"].fault == "grader"
    assert "Too many open files" in str(by_id["cleanup"].reason)
    assert by_id["robustness"].status == "failed"  # still judged, still the student's
    assert by_id["echo"].status == "passed"
    assert [c.spec.id for c in result.grader_errors] == ["cleanup"]


def test_a_hand_in_that_cannot_be_graded_is_not_gradable_not_a_grader_error(epoll):
    result = not_gradable("dave", epoll)
    assert result.status == "not_gradable"
    assert {c.status for c in result.checks} == {"failed"}
    data = gradescope_results(result)
    assert data["extra_data"]["status"] == "not_gradable"
    assert data["output"].startswith("Not gradable: no server.py was handed in")


def test_nothing_to_run_without_a_problem_is_the_kits_fault(epoll):
    result = score(epoll, sub("erin"), None)
    assert result.status == "grader_error"
    assert {c.fault for c in result.checks} == {"grader"}


# --- grades.csv ---------------------------------------------------------------------------


def test_grades_csv_has_a_status_and_no_zero_where_the_grader_failed(tmp_path, epoll, report):
    results = [
        graded("alice", epoll, report),
        no_report("bob", epoll),
        graded("carol", epoll, errored_in_setup(report, "cleanup")),
        not_gradable("dave", epoll),
    ]
    export.write_grades_csv(results, tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    col = {s.id: export.grades_csv_column(s) for s in epoll.checks}
    assert list(rows["alice"])[:4] == ["id", "score", "max", "status"]
    assert {i: r["status"] for i, r in rows.items()} == {
        "alice": "graded",
        "bob": "grader_error",
        "carol": "grader_error",
        "dave": "not_gradable",
    }
    assert rows["alice"]["score"] == "90" and rows["alice"][col["robustness"]] == "0"
    assert rows["bob"]["score"] == "" and rows["bob"]["max"] == "100"
    assert {rows["bob"][c] for c in col.values()} == {""}
    # carol: what was judged keeps its points; the check the kit broke on has none.
    assert rows["carol"]["score"] == "" and rows["carol"][col["cleanup"]] == ""
    assert rows["carol"][col["echo"]] == "15" and rows["carol"][col["robustness"]] == "0"
    # A hand-in that cannot be graded is the student's: its 0 is a grade.
    assert rows["dave"]["score"] == "0" and rows["dave"][col["runs"]] == "0"


# --- index.html and report.html -----------------------------------------------------------


def _row(page: str, ident: str) -> str:
    """One student's row of the class table, entities decoded."""
    start = page.index(f'<td data-v="{ident}">')
    return html.unescape(page[start : page.index("</tr>", start)])


def test_index_says_could_not_be_graded_instead_of_a_zero(epoll, report):
    results = [graded("alice", epoll, report), no_report("bob", epoll), not_gradable("dave", epoll)]
    html = render.render_index(results, epoll, speaker=Speaker("en"))
    bob = _row(html, "bob")
    assert "could not be graded" in bob and f"grader error: {NO_REPORT}" in bob
    assert "0 / 100" not in bob
    assert "90 / 100" in _row(html, "alice")
    dave = _row(html, "dave")
    assert "not gradable" in dave and "0 / 100" in dave
    assert "<strong>1</strong> could not be graded (grader error)" in html
    assert "<strong>1</strong> not gradable (the hand-in)" in html
    ctx = render.index_context(results, epoll)
    # bob has no score yet: mean and histogram are over alice (90%) and dave (0%) only.
    assert ctx["mean"] == "45"
    assert sum(b["count"] for b in ctx["histogram"]) == 2
    runs = next(r for r in ctx["rates"] if r["spec"].id == "runs")
    assert (runs["passed"], runs["ran"]) == (1, 2)


def test_report_shows_a_grader_error_as_such_without_a_hint(epoll, report):
    result = graded("carol", epoll, errored_in_setup(report, "cleanup"))
    html = render.render_report(result, speaker=Speaker("en"))
    assert "Grader error." in html and "could not judge 1 of 10 checks" in html
    start = html.index('id="check-cleanup"')
    cleanup = html[start : html.index("</section>", start)]
    assert '<span class="badge notyours">grader error</span>' in cleanup
    assert "Why it could not be graded:" in cleanup and "Why it failed" not in cleanup
    assert "<h4>Hint</h4>" not in cleanup
    start = html.index('id="check-robustness"')
    robustness = html[start : html.index("</section>", start)]
    assert "Why it failed:" in robustness and "<h4>Hint</h4>" in robustness


# --- the command line, with a harness that really ends without a report ------------------


@pytest.fixture
def harness_fails_for(monkeypatch):
    """The harness of the named submissions runs and exits 0 without writing a report, as
    it did when a relative --out sent the report elsewhere."""
    real = sandbox_module.harness_args
    broken: set[str] = set()

    def args(req, *a, **kw):
        if req.submission.id in broken:
            return ["-c", "import sys; sys.exit(0)"]
        return real(req, *a, **kw)

    monkeypatch.setattr(sandbox_module, "harness_args", args)
    return broken


def test_self_check_with_a_failing_harness_exits_4_with_grader_errors(
    tmp_path, capsys, harness_fails_for
):
    lab = tmp_path / "lab3"
    lab.mkdir()
    shutil.copyfile(reference_file("epoll"), lab / "server.py")
    harness_fails_for.add("lab3")
    out = tmp_path / "report"
    code = main(["check", str(lab), "-a", "epoll", "--out", str(out), "--sandbox", "local"])
    err = capsys.readouterr().err
    assert code == CHECK_GRADER_ERROR == 4, err
    assert "GRADER ERROR runs" in err and "FAIL" not in err and "hint:" not in err
    assert f"why:  {NO_REPORT}" in err
    assert (
        "GRADER ERROR: the grader could not check 9 of 9 checks, through no fault of "
        "your code" in " ".join(err.split())
    )
    results = json.loads((out / "lab3" / "results.json").read_text())
    assert results["extra_data"]["status"] == "grader_error"
    assert {t["extra_data"]["status"] for t in results["tests"]} == {"grader_error"}
    assert not any("Hint" in t["output"] for t in results["tests"])
    html = (out / "lab3" / "report.html").read_text()
    assert "Grader error." in html and "<h4>Hint</h4>" not in html


def test_self_check_exit_codes_for_pass_and_fail_stay_0_and_1(tmp_path, capsys):
    """Beside 4: a submission's own failures exit 1 (the syntax error fails fast)."""
    out = tmp_path / "report"
    code = main(
        ["check", str(FIX / "syntax_error"), "-a", "epoll", "--out", str(out), "--sandbox", "local"]
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert "FAIL runs" in err and "GRADER ERROR" not in err and "some checks fail" in err
    data = json.loads((out / "syntax_error" / "results.json").read_text())
    assert data["extra_data"]["status"] == "graded"


def test_batch_with_a_failing_harness(tmp_path, capsys, harness_fails_for):
    cls = tmp_path / "class"
    cls.mkdir()
    shutil.copytree(FIX / "syntax_error", cls / "alice")  # graded: the student's 0
    (cls / "bob").mkdir()
    shutil.copyfile(reference_file("epoll"), cls / "bob" / "server.py")
    (cls / "dave").mkdir()  # nothing handed in
    (cls / "dave" / "notes.txt").write_text("I will hand it in tomorrow\n")
    harness_fails_for.add("bob")
    out = tmp_path / "out"
    args = [str(cls), "-a", "epoll", "-o", str(out), "--sandbox", "local", "--jobs", "1"]
    code = main([*args, "--lang", "en"])  # the English wording of results.json
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert "GRADER ERROR" in err and "could not be graded" in err and "not gradable" in err
    assert (
        "1 submission(s) could not be graded because of the grader or the sandbox, not "
        "the students: bob" in err
    )
    with open(out / "grades.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert {i: (r["status"], r["score"]) for i, r in rows.items()} == {
        "alice": ("graded", "0"),
        "bob": ("grader_error", ""),
        "dave": ("not_gradable", "0"),
    }
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert bob["extra_data"]["status"] == "grader_error"
    assert all(t["output"].startswith(f"GRADER ERROR: {NO_REPORT}") for t in bob["tests"])
    index = (out / "index.html").read_text()
    assert "could not be graded" in _row(index, "bob") and "0 / 100" not in _row(index, "bob")
    assert "0 / 100" in _row(index, "alice")
    assert "not gradable" in _row(index, "dave")
