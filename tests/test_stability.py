"""Verdicts do not move when the machine is loaded or the sandbox is starved of CPU: every
server and client assignment's whole fixture table is graded (1) in Docker with each
container limited to a quarter of a core, and (2) in the local sandbox with two busy loops
running beside the grader, and must match the same expected.toml tables as a calm run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.cli import grade_one
from grader.discover import discover
from grader.export import gradescope_results
from grader.sandbox import DEFAULT_WALL_CLOCK
from tests.conftest import assignment_names, build_batch, expected
from tests.verdicts import assert_verdicts

pytestmark = pytest.mark.slow
ASSIGNMENTS = assignment_names()
# A quarter of a core for the whole container (harness and student alike): four times less
# than the default, enough to show any verdict that rests on how fast something happens.
STARVED_CPUS = 0.25
BUSY_LOOPS = 2  # as many as this machine's (and CI's) cores


def _grade_class(assignment: str, sandbox, jobs: int) -> dict[str, dict]:
    """{submission id: its results.json} for the assignment's whole class."""
    spec = load_assignment(assignment)
    with tempfile.TemporaryDirectory(prefix="stability-") as tmp:
        batch = build_batch(assignment, Path(tmp) / "class")
        subs = discover(batch, spec.entry, Path(tmp) / "prepared")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(
                pool.map(lambda s: grade_one(sandbox, spec, s, (), DEFAULT_WALL_CLOCK), subs)
            )
    return {r.submission.id: gradescope_results(r) for r in results}


def _check_table(assignment: str, graded: dict[str, dict]) -> None:
    checks = {c.id for c in load_assignment(assignment).checks}
    wrong = []
    for ident, want in expected(assignment).items():
        try:
            assert_verdicts(graded[ident], want, checks)
        except AssertionError as exc:
            wrong.append(f"{ident}: {exc}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def busy_loops():
    """Processes that want every core, beside the grader, for the length of one test."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_LOOPS)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.docker
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_same_verdicts_in_a_starved_container(docker_engine, assignment):
    from grader.sandbox.docker import DockerLimits, DockerSandbox

    sandbox = DockerSandbox(limits=DockerLimits(cpus=STARVED_CPUS))
    assert sandbox.describe()["CPU"].startswith(f"{STARVED_CPUS:g}")
    _check_table(assignment, _grade_class(assignment, sandbox, jobs=2))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_same_verdicts_beside_busy_loops(busy_loops, assignment):
    from grader.sandbox import LocalSandbox

    assert all(p.poll() is None for p in busy_loops)
    _check_table(assignment, _grade_class(assignment, LocalSandbox(), jobs=2))
    assert all(p.poll() is None for p in busy_loops), "the load ended before the grading did"
