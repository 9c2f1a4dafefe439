"""Name the line, always (issue 9 item 6): over the fixture tables' graded classes, at least
9 of 10 failed checks whose failure has a student line to name cite it as '<entry>:<n>'.

Left out, since there is no line of the student's to name: checks not judged (the server
never listened), programs that never ran (a syntax error, a hand-in that cannot be graded),
grader errors, and checks whose subject is absent ("not applicable")."""

from __future__ import annotations

import re

import pytest

from tests.conftest import assignment_names, expected
from tests.verdicts import load_results

GOAL = 0.9
# A student line as the reasons cite it: 'server.py:14', 'epoll_server.py:31'.
CITED = re.compile(r"\b[\w.-]+\.py:\d+")
# Reasons with no student line to name.
NO_LINE = (
    re.compile(r"^not judged"),
    re.compile(r"^not applicable"),
    re.compile(r"SyntaxError|IndentationError|TabError"),
    re.compile(r"never (listened|started listening)|did not listen|no listening socket"),
)


def _reason(test: dict) -> str:
    """The check's reason, without the assignment's hint (which is the same for everyone)."""
    return test["output"].split("\nHint: ")[0]


def has_line(test: dict, results: dict) -> bool:
    """Whether this failure is one where the student wrote a line the kit could name."""
    extra = test.get("extra_data", {})
    if extra.get("fault") in ("grader", "infrastructure") or extra.get("status") not in (
        None,
        "",
        "graded",
        "failed",
    ):
        return False
    if results.get("extra_data", {}).get("status") == "not_gradable":
        return False
    reason = _reason(test)
    return not any(p.search(reason) for p in NO_LINE)


def misses(assignment: str, out) -> tuple[int, list[str]]:
    """(how many failed checks have a line to name, those among them that name none)."""
    counted, missed = 0, []
    for ident in sorted(expected(assignment)):
        try:
            results = load_results(out, ident)
        except FileNotFoundError:
            continue
        for test in results["tests"]:
            if test["status"] != "failed" or not has_line(test, results):
                continue
            counted += 1
            if not CITED.search(_reason(test)):
                missed.append(f"{assignment}/{ident} {test['number']}: {_reason(test)[:200]}")
    return counted, missed


@pytest.mark.parametrize("assignment", assignment_names())
def test_failed_checks_name_the_line(graded_local, assignment, capsys):
    _, out = graded_local(assignment)
    counted, missed = misses(assignment, out)
    if not counted:
        pytest.skip(f"{assignment}: no failed check with a line to name")
    ratio = (counted - len(missed)) / counted
    with capsys.disabled():
        print(f"\n{assignment}: {counted - len(missed)}/{counted} cite a line ({ratio:.0%})")
        for m in missed:
            print("  miss:", m)
    assert ratio >= GOAL, "\n".join(missed)
