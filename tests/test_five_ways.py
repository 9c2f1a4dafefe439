"""One class, five ways to grade it, one set of verdicts: the local sandbox, Docker, the
Gradescope autograder (in place, in a plain offline container laid out as Gradescope lays it
out), the PrairieLearn grader image (run as its grader host runs it), and Docker spread over
two engines. Each way's verdicts must be the others' and the fixture table's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.cli import main
from grader.sandbox.docker.image import default_host
from tests.conftest import class_of, expected
from tests.engines_support import start_second_engine
from tests.platform_support import (
    gradescope_container,
    gradescope_grade,
    prairielearn_grade,
    prairielearn_image,
)
from tests.verdicts import failed, load_results

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ASSIGNMENT = "epoll"
# The reference and four bugs that fail different checks (several of them, for `threaded`),
# so that a verdict that moved with the way of grading would show.
CLASS = ("reference", "busy_poll", "threaded", "leaks_fds", "select_selector")
IMAGE = "socketgrade-five-ways:latest"


@pytest.fixture(scope="module")
def small_class(tmp_path_factory) -> Path:
    return class_of(ASSIGNMENT, CLASS, tmp_path_factory.mktemp("five-ways"))


def _the_table() -> dict[str, set[str]]:
    table = expected(ASSIGNMENT)
    checks = {c.id for c in load_assignment(ASSIGNMENT).checks}
    return {
        ident: checks if table[ident]["fails"] == "all" else set(table[ident]["fails"])
        for ident in CLASS
    }


def _grade(batch: Path, out: Path, *options: str) -> dict[str, set[str]]:
    """`grade` over the class; each hand-in's failed checks, read from its results.json."""
    argv = [str(batch), "-a", ASSIGNMENT, "--out", str(out), "--lang", "en", *options]
    assert main(argv) == 0
    return {ident: failed(load_results(out, ident)) for ident in CLASS}


def by_local(batch: Path, tmp: Path) -> dict[str, set[str]]:
    return _grade(batch, tmp / "local", "--sandbox", "local", "--jobs", "2")


def by_docker(batch: Path, tmp: Path) -> dict[str, set[str]]:
    return _grade(batch, tmp / "docker", "--sandbox", "docker", "--jobs", "2")


def by_two_engines(batch: Path, tmp: Path) -> dict[str, set[str]]:
    engine = start_second_engine()
    try:
        out = tmp / "engines"
        hosts = [f"{default_host()}#jobs=1", f"{engine.url}#jobs=1"]
        verdicts = _grade(batch, out, *(a for h in hosts for a in ("--docker-host", h)))
        return verdicts | {"(engines)": {_engine_of(out, ident) for ident in CLASS}}
    finally:
        engine.remove()


def _engine_of(out: Path, ident: str) -> str:
    return json.loads((out / ident / "result.json").read_text())["result"]["engine"]


def by_gradescope(batch: Path, tmp: Path) -> dict[str, set[str]]:
    autograder = tmp / "autograder.zip"
    argv = ["export", "gradescope", "-a", ASSIGNMENT, "--lang", "en", "--out", str(autograder)]
    assert main(argv) == 0
    verdicts = {}
    with gradescope_container(autograder) as box:
        for ident in CLASS:
            results = gradescope_grade(box, batch / ident)
            assert results["extra_data"]["status"] == "graded", results["output"]
            verdicts[ident] = failed(results)
    return verdicts


def by_prairielearn(batch: Path, tmp: Path) -> dict[str, set[str]]:
    context = tmp / "prairielearn"
    argv = ["export", "prairielearn", "-a", ASSIGNMENT, "--lang", "en", "--out", str(context)]
    assert main([*argv, "--image", IMAGE]) == 0
    ids = {c.title.en: c.id for c in load_assignment(ASSIGNMENT).checks}
    verdicts = {}
    with prairielearn_image(context, IMAGE) as image:
        for ident in CLASS:
            results, _ = prairielearn_grade(image, tmp / f"pl-{ident}", batch / ident)
            assert results["gradable"] is True, results["message"]
            verdicts[ident] = {
                ids[t["name"]] for t in results["tests"] if t["message"] != "Passed."
            }
    return verdicts


def test_five_ways_one_set_of_verdicts(small_class, tmp_path):
    table = _the_table()
    ways = {
        "local": by_local,
        "docker": by_docker,
        "gradescope (in place)": by_gradescope,
        "prairielearn (in place)": by_prairielearn,
        "two docker engines": by_two_engines,
    }
    got = {name: way(small_class, tmp_path) for name, way in ways.items()}
    engines = got["two docker engines"].pop("(engines)")
    assert len(engines) == 2, f"the class ran on {engines}, not on both engines"
    for name, verdicts in got.items():
        differ = {
            ident: (sorted(verdicts[ident]), sorted(table[ident]))
            for ident in CLASS
            if verdicts[ident] != table[ident]
        }
        assert not differ, f"{name}: (failed, expected) {differ}"
