"""Hand-ins the checks were not written against, labelled by hand property by property as a
TA would (assignments/<assignment>/holdout/labels.toml): every label must agree, in the Docker
sandbox and in the local one while two busy loops run beside the grader."""

from __future__ import annotations

import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.cli import grade_one
from grader.discover import discover
from grader.sandbox import DEFAULT_WALL_CLOCK
from tests.conftest import ASSIGNMENTS as KIT_ASSIGNMENTS
from tests.test_stability import busy_loops  # noqa: F401  (a fixture)

ASSIGNMENTS = sorted(
    p.name for p in KIT_ASSIGNMENTS.iterdir() if (p / "holdout" / "labels.toml").is_file()
)
pytestmark = pytest.mark.slow


def holdout(assignment: str) -> Path:
    return KIT_ASSIGNMENTS / assignment / "holdout"


def labels(assignment: str) -> dict:
    return tomllib.loads((holdout(assignment) / "labels.toml").read_text(encoding="utf-8"))


def _disagreements(assignment: str, sandbox, tmp: Path) -> list[str]:
    spec = load_assignment(assignment)
    checks = {c.id for c in spec.checks}
    subs = discover(holdout(assignment), spec.entry, tmp / "prepared")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = {
            r.submission.id: r
            for r in pool.map(lambda s: grade_one(sandbox, spec, s, (), DEFAULT_WALL_CLOCK), subs)
        }
    wrong = []
    for ident, label in labels(assignment).items():
        want = checks if label["fails"] == "all" else set(label["fails"])
        result = results[ident]
        got = {c.spec.id for c in result.checks if not c.passed}
        if got != want:
            reasons = "; ".join(
                f"{c.spec.id}: {c.reason}" for c in result.checks if c.spec.id in got ^ want
            )
            wrong.append(f"{ident}: failed {sorted(got)}, labelled {sorted(want)} ({reasons})")
    return wrong


def test_every_holdout_is_labelled():
    for assignment in ASSIGNMENTS:
        folders = {p.name for p in holdout(assignment).iterdir() if p.is_dir()}
        assert folders == set(labels(assignment)), assignment


@pytest.mark.docker
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_labels_agree_in_docker(docker_engine, tmp_path, assignment):
    from grader.sandbox.docker import DockerSandbox

    assert _disagreements(assignment, DockerSandbox(), tmp_path) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_labels_agree_locally_beside_busy_loops(busy_loops, tmp_path, assignment):  # noqa: F811
    from grader.sandbox import LocalSandbox

    assert _disagreements(assignment, LocalSandbox(), tmp_path) == []
    assert all(p.poll() is None for p in busy_loops)
