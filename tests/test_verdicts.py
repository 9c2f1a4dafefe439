"""Every check of every server assignment proved both ways: the reference passes it, and a
submission with exactly that bug fails it (and only what its expected.toml says). Each class
is graded as a TA would, in one batch, three at a time."""

from __future__ import annotations

import pytest

from grader.assignment import load_assignment
from tests.conftest import assignment_names, expected
from tests.verdicts import assert_verdicts, load_results

ASSIGNMENTS = assignment_names()
CASES = [(a, ident) for a in ASSIGNMENTS for ident in sorted(expected(a))]


@pytest.mark.parametrize("assignment,ident", CASES, ids=[f"{a}/{i}" for a, i in CASES])
def test_verdicts(graded_local, assignment, ident):
    code, out = graded_local(assignment)
    assert code == 0
    checks = {c.id for c in load_assignment(assignment).checks}
    assert_verdicts(load_results(out, ident), expected(assignment)[ident], checks)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_check_is_proved_both_ways(assignment):
    """The tables themselves: the reference passes everything, every check but `runs` fails
    on some partial submission, and `runs` fails on one that cannot start."""
    table = expected(assignment)
    checks = {c.id for c in load_assignment(assignment).checks}
    assert table["reference"]["fails"] == []
    failing = set()
    for entry in table.values():
        if entry["fails"] != "all":
            failing.update(entry["fails"])
    assert failing == checks - {"runs"}
    assert any(e["fails"] == "all" for e in table.values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_full_marks(graded_local, assignment):
    _, out = graded_local(assignment)
    results = load_results(out, "reference")
    assert results["score"] == load_assignment(assignment).max_score == 100
