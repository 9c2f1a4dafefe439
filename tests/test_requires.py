"""`requires` in assignment.toml: a check that needs another's pass fails "not applicable" with
no points when that one did not pass; the rule is validated on load, one sentence per problem,
and proved both ways on a course's assignment graded in the local sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import requires
from grader.assignment import load_folder
from grader.cli import main
from grader.contract import verbatim
from grader.models import CheckResult, CheckSpec, Text

CHECKS_PY = '''"""A course's checks that read the hand-in: quick, and no server needed."""

from pathlib import Path

from grader.contract import msg
from grader.harness.plugin import fail


def test_marked(submission):
    if "MARKED" not in (Path(submission.source) / submission.entry).read_text():
        fail(msg("not run: {why}", why="the hand-in has no MARKED line"))


def test_needs_mark():
    pass


def test_needs_both():
    pass


def test_free():
    pass
'''

CHECK = """
[[checks]]
id = "{id}"
points = {points}
tags = ["runs"]
title = {{ en = "{id}", zh = "{id}" }}
explain = {{ en = "Explains {id}.", zh = "说明 {id}。" }}
hint = {{ en = "Hint for {id}.", zh = "{id} 的提示。" }}
"""


def make_course(parent: Path, requires_of: dict[str, str], name: str = "marks") -> Path:
    """A course folder holding one assignment; `requires_of` maps a check id to the TOML
    value of its requires key."""
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "checks.py").write_text(CHECKS_PY, encoding="utf-8")
    meta = 'title = { en = "Marks", zh = "标记" }\nentry = "server.py"\n'
    for ident, points in (("marked", 40), ("needs_mark", 30), ("needs_both", 20), ("free", 10)):
        meta += CHECK.format(id=ident, points=points)
        if ident in requires_of:
            meta += f"requires = {requires_of[ident]}\n"
    (folder / "assignment.toml").write_text(meta, encoding="utf-8")
    return folder


CHAIN = {"needs_mark": '["marked"]', "needs_both": '["needs_mark", "marked"]'}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_requires_is_loaded_into_the_specs(tmp_path):
    item = load_folder(make_course(tmp_path / "course", CHAIN))
    assert item.problems == ()
    assert item.assignment is not None
    specs = {s.id: s.requires for s in item.assignment.checks}
    assert specs == {
        "marked": (),
        "needs_mark": ("marked",),
        "needs_both": ("needs_mark", "marked"),
        "free": (),
    }


@pytest.mark.parametrize(
    ("requires_of", "problem"),
    [
        (
            {"free": '"marked"'},
            'checks[3] (free): requires must be a list of check ids, such as ["uses_epoll"]',
        ),
        (
            {"free": '["marked", 3]'},
            'checks[3] (free): requires must be a list of check ids, such as ["uses_epoll"]',
        ),
        (
            {"free": '["free"]'},
            'checks[3] (free): requires "free", itself: a check cannot need its own pass',
        ),
        (
            {"free": '["uses_epoll"]'},
            'checks[3] (free): requires "uses_epoll", which is no check of this assignment '
            "(marked, needs_mark, needs_both)",
        ),
        (
            {"marked": '["needs_both"]', **CHAIN},
            "requires goes round in a circle (marked -> needs_both -> needs_mark -> marked): "
            "no check of it could ever pass",
        ),
    ],
)
def test_a_wrong_requires_is_one_sentence(tmp_path, requires_of, problem):
    item = load_folder(make_course(tmp_path / "course", requires_of))
    assert item.assignment is None
    assert item.problems == (f"course/marks/assignment.toml: {problem}",)


def _result(ident: str, passed: bool, needs: tuple[str, ...] = (), fault: str = "") -> CheckResult:
    spec = CheckSpec(ident, ("runs",), 10.0, "visible", Text(ident), Text(""), Text(""), needs)
    return CheckResult(spec, passed, verbatim("" if passed else "its own reason"), fault=fault)


def test_apply_fails_what_needs_a_failed_check_and_keeps_the_rest():
    results = requires.apply(
        (
            _result("a", False),
            _result("b", True, ("a",)),
            _result("c", True, ("b",)),
            _result("d", False, ("a",)),
            _result("e", True),
        )
    )
    by_id = {r.spec.id: r for r in results}
    assert [r.spec.id for r in results] == ["a", "b", "c", "d", "e"]
    assert str(by_id["b"].reason) == (
        "not applicable: it needs 'a', which did not pass (on its own, this check passed)"
    )
    assert by_id["b"].score == 0 and by_id["b"].fault == "submission"
    assert str(by_id["c"].reason).startswith("not applicable: it needs 'b'")  # a chain
    assert str(by_id["d"].reason) == "its own reason"  # its own failure says more
    assert by_id["e"].passed and by_id["a"].reason == verbatim("its own reason")


def test_apply_when_the_required_check_was_not_judged_or_not_run():
    grader = requires.apply((_result("a", False, fault="grader"), _result("b", True, ("a",))))
    assert grader[1].grader_error  # not judged either: it needs grading again
    alone = requires.apply((_result("b", True, ("a",)),))
    assert alone[0].passed  # a self-check that did not run `a` cannot hold it against b


def test_requires_both_ways_in_the_local_sandbox(tmp_path):
    make_course(tmp_path / "course", CHAIN)
    cls = tmp_path / "class"
    for student, source in (("alice", "# MARKED\n"), ("bob", "# nothing\n")):
        (cls / student).mkdir(parents=True)
        (cls / student / "server.py").write_text(source, encoding="utf-8")
    argv = ["class", "-a", "marks", "--assignments", "course", "--sandbox", "local", "--lang", "en"]
    assert main([*argv, "--out", "out", "--jobs", "2"]) == 0
    out = tmp_path / "out"
    alice = json.loads((out / "alice" / "results.json").read_text())
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert alice["score"] == 100
    assert all(t["status"] == "passed" for t in alice["tests"])
    tests = {t["number"]: t for t in bob["tests"]}
    assert bob["score"] == 10  # only `free`, which needs nothing
    assert tests["marked"]["output"].startswith("not run: the hand-in has no MARKED line")
    assert tests["needs_mark"]["score"] == 0
    assert tests["needs_mark"]["output"].startswith(
        "not applicable: it needs 'marked', which did not pass"
    )
    assert tests["needs_both"]["output"].startswith("not applicable: it needs 'needs_mark'")
    assert tests["free"]["status"] == "passed"
