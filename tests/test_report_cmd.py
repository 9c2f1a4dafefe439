"""Saved results (OUT/<id>/result.json) and `grade report OUT`: every report and the index
rendered again, in any language, with no grading; a damaged file is named and skipped."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from grader import cli, cli_report, render, saved
from grader.assignment import load_assignment
from grader.cli import main
from grader.contract import msg
from grader.models import RunOutcome, Submission
from grader.score import score
from tests.test_lang import FakeSandbox, listing_report

STUDENTS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def epoll():
    return load_assignment("epoll")


def test_round_trip_of_a_graded_result(epoll, tmp_path):
    sub = Submission("alice", Path("/x/alice"), Path("/x/alice"), "server.py", files=("server.py",))
    result = score(epoll, sub, RunOutcome(listing_report(), 8.7, "local", {"memory": "512 MiB"}))
    assert saved.from_json(json.loads(json.dumps(saved.to_json(result)))) == result
    saved.write(result, tmp_path / "alice" / "result.json")
    back = saved.read(tmp_path / "alice" / "result.json")
    assert back == result
    # Sentences come back as Messages, ready for another language.
    robust = next(c for c in back.checks if c.spec.id == "robustness")
    assert robust.reason.msgid or robust.reason.parts
    assert all(type(n.text).__name__ == "Message" for p in robust.processes for n in p.notes)


def test_round_trip_of_a_hand_in_that_could_not_be_graded(epoll):
    problem = msg("{name} is not a valid zip file", name="dave.zip")
    sub = Submission("dave", Path("dave.zip"), None, None, problem)
    result = score(epoll, sub, None)
    back = saved.from_json(saved.to_json(result))
    assert back == result and back.submission.problem == problem


def test_a_newer_schema_or_a_broken_file_is_refused_with_its_name(epoll, tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"schema": "socketgrade.result", "version": 99, "result": {}}')
    with pytest.raises(saved.SavedError, match="version 99"):
        saved.read(path)
    path.write_text("{not json")
    with pytest.raises(saved.SavedError) as info:
        saved.read(path)
    assert info.value.path == path


@pytest.fixture
def graded_class(tmp_path, monkeypatch):
    """A class of three graded in English (the sandbox hands back a saved harness report)."""
    monkeypatch.setattr(cli, "make_sandbox", lambda *a, **k: FakeSandbox(listing_report()))
    subs = tmp_path / "subs"
    for name in STUDENTS:
        (subs / name).mkdir(parents=True)
        (subs / name / "server.py").write_text("print('hi')\n")
    out = tmp_path / "out"
    args = [str(subs), "-a", "epoll", "--sandbox", "local", "--out", str(out), "--lang", "en"]
    assert main(args) == 0
    return out


@pytest.fixture
def no_grading(monkeypatch):
    """`grade report` must not grade: any sandbox use fails the test."""

    def refuse(*a, **k):
        raise AssertionError("grade report started a sandbox")

    monkeypatch.setattr(cli, "make_sandbox", refuse)
    monkeypatch.setattr(cli, "grade_one", refuse)


@pytest.fixture
def rendered(monkeypatch):
    """What render is asked for: each report's speaker and links, and the index's speaker."""
    calls: dict[str, dict] = {}
    write_report, write_index = render.write_report, render.write_index

    def spy_report(result, path, **kw):
        calls[result.submission.id] = kw
        return write_report(result, path, **kw)

    def spy_index(results, assignment, path, **kw):
        calls["index"] = dict(kw, ids=[r.submission.id for r in results])
        return write_index(results, assignment, path, **kw)

    monkeypatch.setattr(render, "write_report", spy_report)
    monkeypatch.setattr(render, "write_index", spy_index)
    return calls


def test_grading_saves_each_result_and_links_reports_in_index_order(tmp_path, monkeypatch):
    calls: dict[str, dict] = {}
    monkeypatch.setattr(
        render, "write_report", lambda result, path, **kw: calls.update({result.submission.id: kw})
    )
    monkeypatch.setattr(cli, "make_sandbox", lambda *a, **k: FakeSandbox(listing_report()))
    subs = tmp_path / "subs"
    for name in STUDENTS:
        (subs / name).mkdir(parents=True)
        (subs / name / "server.py").write_text("print('hi')\n")
    out = tmp_path / "out"
    main([str(subs), "-a", "epoll", "--sandbox", "local", "--out", str(out), "--lang", "zh"])
    for name in STUDENTS:
        assert saved.read(out / name / "result.json").submission.id == name
        assert calls[name]["speaker"].lang == "zh"
    assert calls["alice"]["nav"] == {
        "index": "../index.html",
        "prev": None,
        "next": "../bob/report.html",
    }
    assert calls["bob"]["nav"]["prev"] == "../alice/report.html"
    assert calls["carol"]["nav"]["next"] is None


def test_grade_report_renders_everything_again_in_another_language(
    graded_class, no_grading, rendered, capsys
):
    before = {name: (graded_class / name / "results.json").read_text() for name in STUDENTS}
    for name in STUDENTS:
        (graded_class / name / "report.html").unlink()
    (graded_class / "index.html").unlink()
    assert main(["report", str(graded_class), "--lang", "zh"]) == 0
    for name in STUDENTS:
        assert (graded_class / name / "report.html").is_file()
        assert rendered[name]["speaker"].lang == "zh"
        assert rendered[name]["nav"]["index"] == "../index.html"
        # results.json is what the grading wrote (Gradescope's copy): left alone.
        assert (graded_class / name / "results.json").read_text() == before[name]
    assert (graded_class / "index.html").is_file()
    assert rendered["index"]["speaker"].lang == "zh" and rendered["index"]["ids"] == list(STUDENTS)
    assert "已重新生成 3 份报告" in capsys.readouterr().err


def test_a_damaged_result_is_named_and_the_others_are_rendered(
    graded_class, no_grading, rendered, capsys
):
    damaged = graded_class / "bob" / "result.json"
    damaged.write_text('{"schema": "socketgrade.result", "version": 1, "result": {"checks": 3}}')
    assert main(["report", str(graded_class), "--lang", "en"]) == 1
    err = capsys.readouterr().err
    assert f"could not read {damaged}" in err and "left as it was" in err
    assert set(rendered) == {"alice", "carol", "index"}
    assert rendered["alice"]["nav"]["next"] == "../carol/report.html"


def test_grade_report_on_a_folder_without_results_is_one_sentence(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--lang", "en"]) == 2
    assert "no saved results in" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope"), "--lang", "en"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_navigation_is_by_submission_id():
    nav = cli_report.navigation(["b", "a c", "c"], "b")
    assert nav == {
        "index": "../index.html",
        "prev": "../a%20c/report.html",
        "next": "../c/report.html",
    }


def test_a_result_saved_without_a_later_field_takes_its_default(epoll):
    sub = Submission("eve", Path("eve"), Path("eve"), "server.py")
    result = score(epoll, sub, RunOutcome(listing_report(), 1.0, "local", {}))
    data = saved.to_json(result)
    del data["result"]["note"], data["result"]["provenance"]
    back = saved.from_json(data)
    assert back == replace(result, note=back.note, provenance=None) and not back.note


def test_a_self_checks_report_stays_a_self_checks(tmp_path, monkeypatch, rendered):
    monkeypatch.setattr(cli, "make_sandbox", lambda *a, **k: FakeSandbox(listing_report()))
    sub = tmp_path / "server.py"
    sub.write_text("print('hi')\n")
    out = tmp_path / "report"
    main(["check", str(sub), "-a", "epoll", "--out", str(out), "--lang", "en"])
    assert saved.read_saved(out / "server" / "result.json").self_check
    rendered.clear()
    assert main(["report", str(out), "--lang", "zh"]) == 0
    assert rendered["server"]["self_check"] is True and rendered["server"]["nav"] is None
