"""`requires` in assignment.toml: which checks a check needs, checked and applied."""

from __future__ import annotations

from dataclasses import replace

from grader.contract import Message, msg
from grader.models import CheckResult


def problems(checks: list, where: str) -> list[Message]:
    """One sentence per problem with the `requires` of the [[checks]] tables (already known to
    be tables with string ids): a list of other checks' ids, and no cycle among them."""
    ids = [raw["id"] for raw in checks]
    found: list[Message] = []
    needs: dict[str, list[str]] = {}
    for index, raw in enumerate(checks):
        if "requires" not in raw:
            continue
        at, value = f"{where}checks[{index}] ({raw['id']}): ", raw["requires"]
        if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
            found.append(
                msg('{at}requires must be a list of check ids, such as ["uses_epoll"]', at=at)
            )
            continue
        for req in value:
            if req == raw["id"]:
                found.append(
                    msg(
                        '{at}requires "{id}", itself: a check cannot need its own pass',
                        at=at,
                        id=req,
                    )
                )
            elif req not in ids:
                known = ", ".join(i for i in ids if i != raw["id"])
                found.append(
                    msg(
                        '{at}requires "{id}", which is no check of this assignment ({known})',
                        at=at,
                        id=req,
                        known=known,
                    )
                )
        needs[raw["id"]] = [r for r in value if r in ids and r != raw["id"]]
    cycle = _cycle(needs)
    if cycle:
        found.append(
            msg(
                "{where}requires goes round in a circle ({cycle}): no check of it could ever pass",
                where=where,
                cycle=" -> ".join(cycle),
            )
        )
    return found


def _cycle(needs: dict[str, list[str]]) -> list[str]:
    """One cycle of the requires graph as ids (first id repeated last), or []."""
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in needs.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for start in needs:
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []


def apply(checks: tuple[CheckResult, ...]) -> tuple[CheckResult, ...]:
    """A check that passed fails, with no points, while a check it requires did not pass:
    what it judged is not there to judge. Its own story stays for the report. A required
    check the kit could not judge makes this one a grader error too. Repeated until nothing
    changes, for chains; a required check that was not run (a self-check runs only the
    visible ones) decides nothing."""
    results = {c.spec.id: c for c in checks}
    changed = True
    while changed:
        changed = False
        for c in list(results.values()):
            failed = [results[r] for r in c.spec.requires if r in results]
            failed = [r for r in failed if not r.passed]
            if c.passed and failed:
                reason = msg(
                    "not applicable: it needs '{check}', which did not pass (on its own, "
                    "this check passed)",
                    check=failed[0].spec.id,
                )
                fault = "grader" if failed[0].grader_error else "submission"
                results[c.spec.id] = replace(c, passed=False, reason=reason, fault=fault)
                changed = True
    return tuple(results[c.spec.id] for c in checks)
