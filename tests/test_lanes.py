"""Checks at the same time (grader/harness/lanes.py): the harness runs the first check alone,
then the rest several at once, each in a process of its own, and reports them as pytest
would have, in their order. Proved here on checks files of the tests' own (fast), and on
every fixture table: graded one check after another and several at once, the verdicts are
the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.contract import HarnessArgs
from grader.sandbox import LocalSandbox
from tests.conftest import assignment_names, build_batch, expected
from tests.verdicts import assert_verdicts, load_results

HARNESS_TIMEOUT = 60

# Each check notes the process it ran in and its lane; `meet` waits (with a deadline) until
# another check is waiting too: it passes only when two run at the same time.
CHECKS = """
import os, time
from pathlib import Path

NOTES = Path(os.environ["LANES_NOTES"])

def note(request, name):
    (NOTES / name).write_text(f"{os.getpid()} {request.config._sg_lane}")

def meet(name):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(p.name != name for p in NOTES.glob("meet-*")):
            return
        time.sleep(0.01)
    (NOTES / name).unlink()  # gone: a check after this one finds no one
    raise AssertionError("no other check ran at the same time")

def test_first(request):
    note(request, "first")

def test_a(request):
    note(request, "a")
    (NOTES / "meet-a").touch()
    meet("meet-a")

def test_b(request):
    note(request, "b")
    (NOTES / "meet-b").touch()
    meet("meet-b")

def test_fails(request):
    note(request, "fails")
    assert 1 == 2, "a failure of its own"

def test_dies(request):
    note(request, "dies")
    os._exit(3)

def test_last(request):
    note(request, "last")
"""


def _harness(tmp_path: Path, checks: str, lanes: int, env: dict | None = None) -> dict:
    folder = tmp_path / "assignment"
    folder.mkdir()
    (folder / "checks.py").write_text(textwrap.dedent(checks))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "server.py").write_text("pass\n")
    report = tmp_path / "report.json"
    args = HarnessArgs(
        str(folder / "checks.py"), str(sub), str(report), str(tmp_path / "work"), lanes=lanes
    )
    subprocess.run(
        [sys.executable, "-P", *args.to_argv()],
        env={**os.environ, **(env or {})},
        timeout=HARNESS_TIMEOUT,
        capture_output=True,
        check=False,
    )
    return json.loads(report.read_text())


def _notes(notes: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in notes.iterdir():
        if not path.name.startswith("meet-"):
            pid, lane = path.read_text().split()
            out[path.name] = (int(pid), int(lane))
    return out


def test_the_rest_run_at_once_in_lanes_of_their_own(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    report = _harness(tmp_path, CHECKS, lanes=3, env={"LANES_NOTES": str(notes)})
    names = [t["nodeid"].split("::")[-1] for t in report["tests"]]
    assert names == ["test_first", "test_a", "test_b", "test_fails", "test_dies", "test_last"]
    outcome = {t["nodeid"].split("::")[-1]: t["outcome"] for t in report["tests"]}
    assert outcome["test_a"] == outcome["test_b"] == "passed"  # they met: at the same time
    assert outcome["test_first"] == outcome["test_last"] == "passed"
    assert outcome["test_fails"] == "failed"
    fails = next(t for t in report["tests"] if t["nodeid"].endswith("test_fails"))
    assert "a failure of its own" in fails["call"]["longrepr"]
    # A check whose process ended without a verdict fails, and says so; the others stand.
    dies = next(t for t in report["tests"] if t["nodeid"].endswith("test_dies"))
    assert dies["outcome"] == "failed"
    # As an exception in the check: the host reads it as the kit's failure, not the student's.
    assert (
        "RuntimeError: the check's process ended without a verdict (exit code 3)"
        in (dies["call"]["crash"]["message"])
    )
    seen = _notes(notes)
    first_pid, first_lane = seen["first"]
    assert first_lane == 0
    others = {name: seen[name] for name in ("a", "b", "fails", "dies", "last")}
    assert first_pid not in {pid for pid, _ in others.values()}, "the rest run in lanes"
    assert {lane for _, lane in others.values()} <= {0, 1, 2}
    # A lane is one process: the checks it ran one after another, in its own number.
    lanes_of = {
        pid: {lane for p, lane in others.values() if p == pid} for pid, _ in others.values()
    }
    assert all(len(lanes) == 1 for lanes in lanes_of.values())
    assert len(lanes_of) <= 3, "three lanes, forked once"
    assert seen["a"][1] != seen["b"][1], "two checks at once are in two lanes"
    # The check after the one that ended its lane was run by a lane still there.
    assert seen["last"][0] != seen["dies"][0]
    assert report["summary"]["total"] == 6


def test_one_lane_is_one_check_after_another_in_the_harness(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    report = _harness(
        tmp_path, CHECKS.replace("os._exit(3)", "pass"), 1, {"LANES_NOTES": str(notes)}
    )
    pids = {pid for pid, _ in _notes(notes).values()}
    assert len(pids) == 1
    outcome = {t["nodeid"].split("::")[-1]: t["outcome"] for t in report["tests"]}
    # Alone, `a` and `b` never meet: the proof that the other test's meeting is real.
    assert outcome["test_a"] == outcome["test_b"] == "failed"


# Two lanes: `holds` keeps one busy until `after` has run, so `after` runs in the lane that
# ran `sets` just before it.
ONE_LANE_TWO_CHECKS = """
import os, time
from pathlib import Path

NOTES = Path(os.environ["LANES_NOTES"])

def test_first():
    pass

def test_sets(request):
    (NOTES / "sets").write_text(str(os.getpid()))
    request.config._sg_start_failure = "this run did not start"

def test_holds():
    deadline = time.monotonic() + 5
    while not (NOTES / "after").exists():
        assert time.monotonic() < deadline, "`after` never ran"
        time.sleep(0.01)

def test_after(request):
    (NOTES / "after").write_text(str(os.getpid()))
    assert request.config._sg_start_failure is None
"""


def test_a_check_in_a_lane_starts_as_after_runs_whatever_the_one_before_saw(tmp_path):
    """One after another in a lane, each check finds the harness as `runs` left it: a run
    that could not start in one check does not make the next "not judged"."""
    notes = tmp_path / "notes"
    notes.mkdir()
    report = _harness(tmp_path, ONE_LANE_TWO_CHECKS, 2, {"LANES_NOTES": str(notes)})
    outcome = {t["nodeid"].split("::")[-1]: t["outcome"] for t in report["tests"]}
    assert outcome == {n: "passed" for n in ("test_first", "test_sets", "test_holds", "test_after")}
    assert (notes / "sets").read_text() == (notes / "after").read_text(), "the same lane"


LONG_ONES_FIRST = """
import os
from pathlib import Path

NOTES = Path(os.environ["LANES_NOTES"])

def note(request, name):
    (NOTES / name).write_text(f"{os.getpid()} {request.config._sg_lane}")

def test_first(request):
    note(request, "first")

def test_a(request):
    note(request, "a")

def test_b(request):
    note(request, "b")

def test_robustness(request):
    note(request, "robustness")
"""


def test_the_long_checks_are_handed_out_first_and_reported_in_their_order(tmp_path):
    """plugin.LONG_FIRST: `robustness`, last in its file, is the first a lane is given (lane
    0, the first free one); the report keeps the file's order."""
    notes = tmp_path / "notes"
    notes.mkdir()
    report = _harness(tmp_path, LONG_ONES_FIRST, 2, {"LANES_NOTES": str(notes)})
    names = [t["nodeid"].split("::")[-1] for t in report["tests"]]
    assert names == ["test_first", "test_a", "test_b", "test_robustness"]
    assert all(t["outcome"] == "passed" for t in report["tests"])
    seen = _notes(notes)
    assert seen["robustness"][1] == 0 and seen["a"][1] == 1


# The first check's program never starts: the rest are judged at once, in the harness,
# without a run of their own (as one after another), and no lane is forked for them.
NEVER_STARTS = """
import os
from pathlib import Path

def test_runs(server):
    pass

def test_other(server, request):
    Path(os.environ["LANES_NOTES"], "other").write_text(str(os.getpid()))

def test_third(server):
    pass
"""


def test_a_program_that_cannot_start_is_not_run_again_in_lanes(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    report = _harness(tmp_path, NEVER_STARTS, 4, {"LANES_NOTES": str(notes)})
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert all(t["outcome"] in ("failed", "error") for t in tests.values())
    assert "stopped before it listened" in tests["test_runs"]["setup"]["longrepr"]
    for name in ("test_other", "test_third"):
        assert "not judged: see runs" in tests[name]["setup"]["longrepr"]
        # One run only: the first check's.
        assert len(tests[name].get("metadata", {}).get("processes", [])) == 0
    assert not (notes / "other").exists()


@pytest.mark.slow
@pytest.mark.parametrize("assignment", assignment_names())
def test_serial_and_concurrent_verdicts_are_the_same(
    graded_local, tmp_path, monkeypatch, assignment
):
    """Every fixture table graded with one check at a time, each run a fresh interpreter (no
    fork server): each check's verdict is the one the same class got with checks at once
    and runs forked from the fork servers (the session's local grading), and both match the
    table."""
    from grader.cli import main

    code, concurrent = graded_local(assignment)
    assert code == 0
    monkeypatch.setattr(LocalSandbox, "lanes", 1)
    monkeypatch.setattr(LocalSandbox, "fork_server", False)
    serial = tmp_path / "serial"
    batch = build_batch(assignment, tmp_path / "class")
    args = [str(batch), "-a", assignment, "-o", str(serial), "--sandbox", "local", "--jobs", "3"]
    assert main(args) == 0
    checks = {c.id for c in load_assignment(assignment).checks}
    differ = []
    for ident, want in expected(assignment).items():
        one, many = load_results(serial, ident), load_results(concurrent, ident)
        assert_verdicts(one, want, checks)
        verdicts_one = {t["name"]: t["status"] for t in one["tests"]}
        verdicts_many = {t["name"]: t["status"] for t in many["tests"]}
        if verdicts_one != verdicts_many:
            differ.append(f"{ident}: one at a time {verdicts_one}, at once {verdicts_many}")
    assert not differ, "\n".join(differ)
