"""The Docker sandbox gives the same verdicts as the local one: every assignment's class
(reference, every bug fixture; for epoll two busy loops among them) graded in Docker, two at
a time, against the same tables."""

from __future__ import annotations

import pytest

from grader.assignment import load_assignment
from tests.conftest import assignment_names, expected, reference_file
from tests.verdicts import assert_verdicts, load_results

pytestmark = pytest.mark.docker
ASSIGNMENTS = assignment_names()
CASES = [(a, ident) for a in ASSIGNMENTS for ident in sorted(expected(a))]


@pytest.mark.parametrize("assignment,ident", CASES, ids=[f"{a}/{i}" for a, i in CASES])
def test_same_verdicts_in_docker(graded_docker, assignment, ident):
    code, out = graded_docker(assignment)
    assert code == 0
    checks = {c.id for c in load_assignment(assignment).checks}
    assert_verdicts(load_results(out, ident), expected(assignment)[ident], checks)


def test_reports_name_the_docker_sandbox_and_its_limits(graded_docker):
    _, out = graded_docker("epoll")
    results = load_results(out, "reference")
    assert results["extra_data"]["sandbox"] == "docker"
    limits = " ".join(f"{k} {v}" for k, v in results["extra_data"]["limits"].items()).lower()
    for word in ("network", "memory", "process", "cpu", "read-only"):
        assert word in limits, word
    html = (out / "reference" / "report.html").read_text(encoding="utf-8")
    assert "docker" in html.lower() and "network" in html.lower()


@pytest.fixture(scope="module")
def references_in_docker(tmp_path_factory, docker_engine):
    """Every assignment's reference graded in Docker (one class per assignment)."""
    import shutil

    from grader.cli import main

    base = tmp_path_factory.mktemp("refs-docker")
    outs = {}
    for assignment in ASSIGNMENTS:
        source = reference_file(assignment)
        cls = base / assignment
        (cls / "reference").mkdir(parents=True)
        shutil.copyfile(source, cls / "reference" / source.name)
        outs[assignment] = (
            main(
                [
                    str(cls),
                    "-a",
                    assignment,
                    "-o",
                    str(base / f"o-{assignment}"),
                    "--sandbox",
                    "docker",
                    "--jobs",
                    "1",
                ]
            ),
            base / f"o-{assignment}",
        )
    return outs


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_reference_full_marks_in_docker(references_in_docker, assignment):
    code, out = references_in_docker[assignment]
    assert code == 0
    results = load_results(out, "reference")
    assert [t["number"] for t in results["tests"] if t["status"] != "passed"] == []
    assert results["score"] == 100
