"""The in-place sandbox where it is meant to run: as root inside a plain container of the kit's
base image (Debian's python3, no pip) with Docker's default capabilities (no SYS_PTRACE, not
privileged), as Gradescope and PrairieLearn run their graders. The hostile fixtures get their
verdicts there (or the gap expected.toml records), and nothing of the student's uid survives.
Ordinary hand-ins in place: tests/test_five_ways.py grades epoll's evidence-heavy fixtures in
place twice (Gradescope's layout and PrairieLearn's), and the Docker sandbox reads every
table's evidence without SYS_PTRACE the same way (tests/test_docker_verdicts.py)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from tests.conftest import HOSTILE, ROOT
from tests.verdicts import assert_verdicts, load_results

pytestmark = [pytest.mark.docker, pytest.mark.slow]
BASE_IMAGE = "socketgrade-base:bookworm"
# Far above what grading a class one submission at a time takes (2-4 min for a table).
CONTAINER_SECONDS = 1500
SITE = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None)
# Debian's python3 reads this folder as a site folder: the kit's dependencies, as setup.sh
# of a platform bundle would install them. The kit itself comes in on PYTHONPATH.
DIST = "/usr/local/lib/python3.11/dist-packages"
# Run in the container after the grading: every process of the student's uid still alive.
LEFTOVERS = (
    "import json, pwd, psutil\n"
    "uid = pwd.getpwnam('sgstudent').pw_uid\n"
    "print('LEFT', json.dumps([p.pid for p in psutil.process_iter()"
    " if p.uids().real == uid and p.status() != psutil.STATUS_ZOMBIE]))\n"
)


def grade_in_container(engine, assignment: str, batch: Path, out: Path) -> tuple[int, list, str]:
    """(the grading's exit code, the pids of the student's uid left, the container's output)
    for `grade BATCH --assignment A --sandbox inplace` as root in a plain container."""
    if SITE is None:
        pytest.skip("no worktree venv to take the kit's dependencies from")
    out.mkdir(parents=True)
    script = (
        f"python3 -m grader.cli /class --assignment {assignment} --out /out "
        f'--sandbox inplace --lang en; echo EXIT=$?; python3 -c "$LEFTOVERS"'
    )
    container = engine.containers.run(
        BASE_IMAGE,
        ["sh", "-c", script],
        detach=True,
        network_mode="none",
        working_dir="/tmp",
        environment={"PYTHONPATH": "/kit", "LEFTOVERS": LEFTOVERS},
        volumes={
            str(ROOT / "grader"): {"bind": "/kit/grader", "mode": "ro"},
            str(ROOT / "assignments"): {"bind": "/kit/assignments", "mode": "ro"},
            str(SITE): {"bind": DIST, "mode": "ro"},
            str(batch): {"bind": "/class", "mode": "ro"},
            str(out): {"bind": "/out", "mode": "rw"},
        },
    )
    try:
        container.wait(timeout=CONTAINER_SECONDS)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    code = next((int(x[5:]) for x in logs.splitlines() if x.startswith("EXIT=")), -1)
    left = next((json.loads(x[5:]) for x in logs.splitlines() if x.startswith("LEFT ")), None)
    assert left is not None, logs[-3000:]
    return code, left, logs


@pytest.fixture(scope="module")
def graded_in_place(tmp_path_factory, docker_engine) -> tuple[int, list, str, Path]:
    """(exit code, pids left, output, out folder) of the hostile class (tests/hostile/, graded
    as epoll) graded in place, once."""
    from tests.test_hostile import build

    base = tmp_path_factory.mktemp("hostile-inplace")
    batch = build(base / "class")
    out = base / "out"
    return (*grade_in_container(docker_engine, "epoll", batch, out), out)


def hostile_expected() -> dict:
    """tests/hostile/expected.toml, each fixture's `[<fixture>.inplace]` table (its own
    `fails`/`why` where they differ, and the `gap` only Docker closes) over its Docker entry."""
    table = tomllib.loads((HOSTILE / "expected.toml").read_text(encoding="utf-8"))
    out = {}
    for ident, entry in table.items():
        here = {k: v for k, v in entry.items() if k != "inplace"}
        here.update(entry.get("inplace", {}))
        out[ident] = here
    return out


@pytest.mark.parametrize("ident", sorted(hostile_expected()))
def test_hostile_fixtures_in_place(graded_in_place, ident):
    code, _, logs, out = graded_in_place
    assert code == 0, logs[-3000:]
    checks = {c.id for c in load_assignment("epoll").checks}
    assert_verdicts(load_results(out, ident), hostile_expected()[ident], checks)


def test_nothing_of_the_hostile_fixtures_survives(graded_in_place):
    _, left, logs, out = graded_in_place
    assert left == [], logs[-3000:]
    for ident in hostile_expected():
        assert load_results(out, ident)["execution_time"] < 250, ident


def test_every_gap_is_a_sentence_the_report_also_names():
    from grader.sandbox.inplace import GAPS

    gaps = {ident: e["gap"] for ident, e in hostile_expected().items() if "gap" in e}
    assert gaps, "the table records no gap"
    for ident, gap in gaps.items():
        assert gap.endswith("."), ident
        assert any(gap.lower().startswith(f"no {name.lower()}:") for name in GAPS), ident
