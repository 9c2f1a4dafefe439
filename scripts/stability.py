"""Grades an assignment's test class (reference, every bug fixture; for epoll two busy loops
among them) N times and checks that every verdict matches its expected.toml each time.

Usage: python scripts/stability.py [--assignment epoll] [--runs 5] [--jobs 3]
                                   [--sandbox local|docker]
Prints one line per run and the submissions whose verdicts ever differed; exit 1 if any did.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.assignment import load_assignment  # noqa: E402
from grader.cli import main as grade  # noqa: E402
from tests.conftest import build_batch, expected  # noqa: E402
from tests.verdicts import assert_verdicts, load_results  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--sandbox", default="local")
    ap.add_argument("--assignment", default="epoll")
    ns = ap.parse_args()
    checks = {c.id for c in load_assignment(ns.assignment).checks}
    table = expected(ns.assignment)
    bad: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        batch = build_batch(ns.assignment, Path(tmp) / "class")
        for run in range(1, ns.runs + 1):
            out = Path(tmp) / f"out{run}"
            start = time.monotonic()
            code = grade(
                [
                    str(batch),
                    "-a",
                    ns.assignment,
                    "-o",
                    str(out),
                    "--sandbox",
                    ns.sandbox,
                    "--jobs",
                    str(ns.jobs),
                ]
            )
            wrong = []
            for ident, want in table.items():
                try:
                    assert_verdicts(load_results(out, ident), want, checks)
                except AssertionError as exc:
                    wrong.append(ident)
                    bad.setdefault(ident, []).append(f"run {run}: {exc}")
            ref = load_results(out, "reference")
            print(
                f"run {run}: exit {code}, {time.monotonic() - start:.0f} s, "
                f"{len(table) - len(wrong)}/{len(table)} as expected, "
                f"reference {ref['score']:g} in {ref['execution_time']:.1f} s",
                flush=True,
            )
    for ident, lines in bad.items():
        print(f"DIFFERED: {ident}")
        for line in lines:
            print("   ", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
