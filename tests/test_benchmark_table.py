"""scripts/benchmark.py's judging: issue 11 sets the class targets (per hand-in, and against
the bare-container floor) for a class of correct epoll servers, and the self-check, hang and
memory targets for every assignment. The table judges each figure where its target is set,
prints the others bare, and counts what was missed (wrong verdicts included)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import benchmark  # noqa: E402

FIGS = {f.key: f for f in benchmark.FIGURES}


def test_the_class_targets_are_epolls_and_the_others_every_assignments():
    for key in ("class", "ratio"):
        assert benchmark.verdict(FIGS[key], 9.0, "docker", "epoll") == "MISSED"
        assert benchmark.verdict(FIGS[key], 0.1, "docker", "epoll") == "ok"
        assert benchmark.verdict(FIGS[key], 9.0, "docker", "client") == ""
        assert benchmark.verdict(FIGS[key], 9.0, "local", "epoll") == ""  # Docker's alone
    for name in ("epoll", "client"):
        assert benchmark.verdict(FIGS["selfcheck"], 9.0, "docker", name) == "MISSED"
        assert benchmark.verdict(FIGS["hang"], 11.0, "local", name) == "MISSED"
        assert benchmark.verdict(FIGS["mem_ratio"], 1.1, "docker", name) == "ok"
    assert benchmark.verdict(FIGS["floor"], 99.0, "docker", "epoll") == ""


def _row(name: str, **values: float) -> benchmark.Row:
    return benchmark.Row(name, dict(values))


@pytest.mark.parametrize(
    ("rows", "missed"),
    [
        ([_row("epoll", ratio=2.9, selfcheck=1.0), _row("client", ratio=8.0, selfcheck=2.0)], 0),
        ([_row("epoll", ratio=3.1), _row("client", ratio=8.0)], 1),
        ([_row("epoll", ratio=2.0), _row("client", selfcheck=3.5)], 1),
    ],
)
def test_the_table_counts_what_is_missed_where_a_target_is_set(rows, missed, capsys):
    assert benchmark.table(rows, "docker") == missed
    out = capsys.readouterr().out
    for row in rows:  # every figure is shown, with a target or not
        assert all(f"{value:.2f}" in out for value in row.values.values())


def test_a_wrong_verdict_counts_as_missed_whatever_the_figures(capsys):
    row = _row("client", ratio=1.0)
    row.wrong.append("the class of correct submissions (round 1)")
    assert benchmark.table([row], "docker") == 1
    assert "WRONG" in capsys.readouterr().out
