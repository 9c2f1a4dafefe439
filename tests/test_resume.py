"""An interrupted batch resumes: `grade` keeps each saved result that grades the same files with
the same assignment, kit version and sandbox, grades the rest, and `--regrade` grades all."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grader import cli, resume, saved, score
from grader.assignment import load_assignment
from grader.contract import msg
from grader.models import GRADER_ERROR, Provenance
from tests.conftest import fixtures, reference_file

STUDENTS = ("alice", "bob", "carol")
KEPT = (
    "{kept} of {total} submissions already graded with the same files, assignment and kit "
    "version: kept (--regrade grades them again)"
)
# Far above the ~2 s a blocking submission takes in the local sandbox, on a loaded machine.
FIRST_RESULT_BOUND = 90.0
EXIT_BOUND = 60.0
POLL = 0.05


@pytest.fixture(autouse=True)
def english(monkeypatch):
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")


def make_class(dest: Path, students: tuple[str, ...] = STUDENTS) -> Path:
    """A class of correct blocking servers, one folder each."""
    for name in students:
        (dest / name).mkdir(parents=True)
        shutil.copyfile(reference_file("blocking"), dest / name / "server.py")
    return dest


def grade(subs: Path, out: Path, *extra: str) -> int:
    args = [str(subs), "-a", "blocking", "--sandbox", "local", "--out", str(out), "--lang", "en"]
    return cli.main([*args, *extra])


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory):
    """A class of three graded once (copied by each test, which may change it)."""
    root = tmp_path_factory.mktemp("graded")
    subs, out = make_class(root / "class"), root / "out"
    assert grade(subs, out) == 0
    return subs, out


@pytest.fixture
def graded(graded_once, tmp_path):
    subs, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(graded_once[0], subs)
    shutil.copytree(graded_once[1], out)
    return subs, out


@pytest.fixture
def spy(monkeypatch):
    """The ids of the submissions graded (each call of grade_one)."""
    seen: list[str] = []
    grade_one = cli.grade_one

    def counted(sandbox, assignment, sub, only, wall_clock):
        seen.append(sub.id)
        return grade_one(sandbox, assignment, sub, only, wall_clock)

    monkeypatch.setattr(cli, "grade_one", counted)
    return seen


def saved_bytes(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("*/result.json"))}


def rewrite(out: Path, ident: str, **changes) -> None:
    """The saved result of `ident` with its provenance changed."""
    path = out / ident / "result.json"
    found = saved.read(path)
    assert found.provenance is not None
    saved.write(replace(found, provenance=replace(found.provenance, **changes)), path)


def test_a_second_run_grades_nothing_and_the_class_still_lists_everyone(graded, spy, capsys):
    subs, out = graded
    before = saved_bytes(out)
    (out / "index.html").unlink()
    (out / "grades.csv").unlink()
    (out / "bob" / "report.html").unlink()
    assert grade(subs, out) == 0
    assert spy == []
    err = capsys.readouterr().err
    assert err.count(KEPT.format(kept=3, total=3)) == 1
    assert saved_bytes(out) == before  # not rewritten: each graded_at is the first run's
    with open(out / "grades.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == list(STUDENTS)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(f"{name}/report.html" in index for name in STUDENTS)
    # A missing report is rendered again from the saved result, with its links.
    report = (out / "bob" / "report.html").read_text(encoding="utf-8")
    assert "../alice/report.html" in report and "../carol/report.html" in report
    for name in STUDENTS:  # the terminal summary has everyone
        assert name in err


def test_only_the_submission_whose_file_changed_is_graded(graded, spy, capsys):
    subs, out = graded
    before = saved_bytes(out)
    with open(subs / "bob" / "server.py", "a", encoding="utf-8") as fh:
        fh.write("# handed in again\n")
    assert grade(subs, out) == 0
    assert spy == ["bob"]
    assert KEPT.format(kept=2, total=3) in capsys.readouterr().err
    after = saved_bytes(out)
    assert after["alice"] == before["alice"] and after["carol"] == before["carol"]
    assert after["bob"] != before["bob"]


def test_regrade_grades_everyone(graded, spy, capsys):
    subs, out = graded
    assert grade(subs, out, "--regrade") == 0
    assert sorted(spy) == list(STUDENTS)
    assert "already graded" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # half-written
        lambda p: p.write_text(""),
        lambda p: p.write_text(json.dumps({"schema": "socketgrade.result", "version": 99})),
        lambda p: p.write_text(json.dumps({"schema": "something else"})),
    ],
    ids=["truncated", "empty", "newer-version", "other-schema"],
)
def test_a_result_that_cannot_be_read_is_graded_again(graded, spy, damage):
    subs, out = graded
    damage(out / "carol" / "result.json")
    assert grade(subs, out) == 0
    assert spy == ["carol"]
    assert saved.read(out / "carol" / "result.json").submission.id == "carol"


def test_a_grader_error_is_graded_again(graded, spy):
    subs, out = graded
    path = out / "alice" / "result.json"
    found = saved.read(path)
    lost = replace(found.checks[0], passed=False, fault="infrastructure")
    saved.write(replace(found, checks=(lost, *found.checks[1:])), path)
    assert saved.read(path).status == GRADER_ERROR
    assert grade(subs, out) == 0
    assert spy == ["alice"]
    assert saved.read(path).status != GRADER_ERROR


def test_another_kit_version_grades_everyone_again(graded, spy, monkeypatch):
    subs, out = graded
    monkeypatch.setattr(score, "kit_version", lambda: "99.0")
    assert grade(subs, out) == 0
    assert sorted(spy) == list(STUDENTS)
    assert all(saved.read(p).provenance.kit_version == "99.0" for p in out.glob("*/result.json"))


@pytest.mark.parametrize(
    "changes",
    [{"assignment_hash": "0" * 64}, {"sandbox": "docker"}, {"kit_version": "0.0.1"}],
    ids=["assignment-hash", "sandbox", "kit-version"],
)
def test_a_result_of_another_grading_is_graded_again(graded, spy, changes):
    subs, out = graded
    rewrite(out, "bob", **changes)
    assert grade(subs, out) == 0
    assert spy == ["bob"]


def test_a_new_student_is_graded_and_the_neighbours_links_follow(graded, spy):
    subs, out = graded
    make_class(subs, ("bea",))
    before = saved_bytes(out)
    assert grade(subs, out) == 0
    assert spy == ["bea"]
    assert saved_bytes(out) == {**before, "bea": saved_bytes(out)["bea"]}
    # alice and bob now have bea between them: their reports' links say so.
    assert "../bea/report.html" in (out / "alice" / "report.html").read_text(encoding="utf-8")
    assert "../bea/report.html" in (out / "bob" / "report.html").read_text(encoding="utf-8")


def test_result_json_goes_first_and_comes_back_last(graded, monkeypatch):
    """result.json marks done: a grading stopped while the other files are written leaves the
    submission without one, to be graded again."""
    _, out = graded
    result = saved.read(out / "alice" / "result.json")
    writes: list[str] = []
    for module, name in ((resume.export, "write_results_json"), (resume.render, "write_report")):
        real = getattr(module, name)

        def spied(r, path, *a, _real=real, **k):
            writes.append(Path(path).name)
            assert not (out / "alice" / "result.json").exists()
            return _real(r, path, *a, **k)

        monkeypatch.setattr(module, name, spied)
    resume.write_submission(result, out)
    assert writes == ["results.json", "report.html"]
    assert saved.read(out / "alice" / "result.json") == result

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(resume.render, "write_report", crash)
    with pytest.raises(KeyboardInterrupt):
        resume.write_submission(result, out)
    assert not (out / "alice" / "result.json").exists()
    assert not [p for p in (out / "alice").iterdir() if p.name.startswith(".")]


# --- the decision, unit by unit -------------------------------------------------------------


@pytest.fixture(scope="module")
def done(graded_once):
    """A saved result, the submission as discovered now, and the grading now: kept."""
    out = graded_once[1]
    found = saved.read_saved(out / "alice" / "result.json")
    now = resume.now_for(load_assignment("blocking"), "local")
    return found, found.result.submission, now


def _with(found: saved.Saved, provenance: Provenance | None) -> saved.Saved:
    return replace(found, result=replace(found.result, provenance=provenance))


def test_the_same_grading_is_kept(done):
    assert resume.differs(*done) is None


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda f, s, n: (replace(f, self_check=True), s, n), "self_check"),
        (lambda f, s, n: (f, replace(s, id="bob"), n), "submission"),
        (
            lambda f, s, n: (replace(f, result=replace(f.result, provenance=None)), s, n),
            "provenance",
        ),
        (lambda f, s, n: (f, s, replace(n, kit_version="9")), "kit_version"),
        (
            lambda f, s, n: (f, s, replace(n, assignment=replace(n.assignment, name="epoll"))),
            "assignment",
        ),
        (
            lambda f, s, n: (f, s, replace(n, assignment=replace(n.assignment, digest="0"))),
            "assignment_hash",
        ),
        (lambda f, s, n: (f, replace(s, hashes=()), n), "no_files"),
        (
            lambda f, s, n: (f, replace(s, hashes=(replace(s.hashes[0], sha256="0" * 64),)), n),
            "files",
        ),
        (lambda f, s, n: (f, replace(s, hashes=(*s.hashes, s.hashes[0])), n), "files"),
        (lambda f, s, n: (f, s, replace(n, sandbox="docker")), "sandbox"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_what_differs_is_named(done, change, rule):
    assert resume.differs(*change(*done)) == rule


def test_a_grader_error_is_never_done(done):
    found, sub, now = done
    lost = replace(found.result.checks[0], passed=False, fault="infrastructure")
    broken = replace(found, result=replace(found.result, checks=(lost, *found.result.checks[1:])))
    assert resume.differs(broken, sub, now) == "grader_error"


def test_a_hand_in_that_ran_nowhere_is_kept_in_any_sandbox(done):
    found, sub, now = done
    problem = msg(
        "several .py files and none of them is named {entry}; found: {found}",
        entry="server.py",
        found="a.py, b.py",
    )
    not_gradable = replace(sub, problem=problem)
    assert found.result.provenance is not None
    nowhere = _with(found, replace(found.result.provenance, sandbox="none"))
    found = replace(nowhere, result=replace(nowhere.result, submission=not_gradable))
    assert resume.differs(found, not_gradable, replace(now, sandbox="docker")) is None


def test_regrade_keeps_nothing(graded_once):
    out = graded_once[1]
    found = saved.read_saved(out / "alice" / "result.json")
    now = resume.now_for(load_assignment("blocking"), "local")
    assert resume.split([found.result.submission], out, now, regrade=True) == (
        [],
        [found.result.submission],
    )


# --- Ctrl-C in the middle of a batch --------------------------------------------------------


def _wait_for(predicate, bound: float, what: str) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound} s: {what}")
        time.sleep(POLL)


def test_an_interrupted_batch_resumes_and_grades_each_submission_once(tmp_path, spy, capsys):
    names = ("ann", "ben", "cat", "dan")
    subs, out = make_class(tmp_path / "class", names), tmp_path / "out"
    # A fixture among them: the kept results must be the right ones, not only present.
    shutil.copytree(fixtures("blocking") / "upper_case", subs / "eve")
    names = (*names, "eve")
    env = dict(os.environ, LANG="en_US.UTF-8")
    args = [sys.executable, "-m", "grader.cli", str(subs), "-a", "blocking", "--jobs", "1"]
    proc = subprocess.Popen(
        [*args, "--sandbox", "local", "--out", str(out), "--lang", "en"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: any(out.glob("*/result.json")), FIRST_RESULT_BOUND, "a first result")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=EXIT_BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err
    first = saved_bytes(out)
    assert first and len(first) < len(names)
    for ident in first:  # what was written is whole, never half a file
        assert saved.read(out / ident / "result.json").submission.id == ident

    assert grade(subs, out) == 0
    assert KEPT.format(kept=len(first), total=len(names)) in capsys.readouterr().err
    assert sorted(spy) == sorted(set(names) - set(first))  # each graded exactly once overall
    after = saved_bytes(out)
    assert set(after) == set(names)
    assert {k: after[k] for k in first} == first
    verdicts = {n: saved.read(out / n / "result.json") for n in names}
    assert all(not verdicts[n].grader_errors for n in names)
    assert [c.spec.id for c in verdicts["eve"].checks if not c.passed] == ["echo"]
    assert all(all(c.passed for c in verdicts[n].checks) for n in names if n != "eve")
    with open(out / "grades.csv", encoding="utf-8-sig") as fh:
        assert sorted(r["id"] for r in csv.DictReader(fh)) == sorted(names)
