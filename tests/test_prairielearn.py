"""`grade export prairielearn`: the grader image built from the exported context (offline, on the
kit's base image) and run as PrairieLearn's grader host runs it, for a correct, a faulty and an
ungradable hand-in."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.cli import main
from grader.contract import msg
from grader.i18n import Speaker
from grader.platforms import prairielearn
from tests.conftest import EXPECTED_EPOLL, fixtures, reference_file
from tests.platform_support import expected_failures, prairielearn_grade, prairielearn_image

FAULTY = "select_selector"  # an epoll fixture with its expected failures in expected.toml
UNGRADABLE = "no_entry"  # two .py files, neither named server.py: no entry to start
CANNOT_START = "syntax_error"  # graded as everywhere else: every check fails, `runs` says why
IMAGE = "socketgrade-pl-test:latest"


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prairielearn") / "grader"
    argv = ["export", "prairielearn", "-a", "epoll", "--lang", "en", "--out", str(out)]
    assert main([*argv, "--image", "course/socketgrade-epoll:1"]) == 0
    return out


def test_the_context_holds_the_dockerfile_the_entry_script_and_the_snippet(context):
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BASE=python:3.12-slim" in dockerfile and "FROM ${BASE}" in dockerfile
    assert os.access(context / "entry.sh", os.X_OK)
    info = json.loads((context / "info.json").read_text(encoding="utf-8"))
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and options["enabled"] is True
    assert options["image"] == "course/socketgrade-epoll:1"
    assert options["entrypoint"] == prairielearn.ENTRYPOINT
    assert 240 < options["timeout"] <= 600 and options["enableNetworking"] is False
    readme = (context / "README.md").read_text(encoding="utf-8")
    assert "docker build -t course/socketgrade-epoll:1 ." in readme
    assert "docker push course/socketgrade-epoll:1" in readme
    names = {p.name.split("-")[0].lower() for p in (context / "wheels").glob("*.whl")}
    assert {"socketgrade", "pytest", "psutil", "rich"} <= names and "docker" not in names


def test_a_kit_failure_is_not_gradable_and_says_why():
    payload = prairielearn.kit_failure(msg("boom {x}", x="here"), Speaker("en"))
    assert payload["gradable"] is False and payload["message"].startswith("GRADER ERROR: boom")
    assert payload["format_errors"]


# --- the image, run as PrairieLearn's grader host runs it -----------------------------------


@pytest.fixture(scope="module")
def image(context):
    with prairielearn_image(context, IMAGE) as built:
        yield built


def grade_in(image, tmp_path: Path, hand_in: Path) -> tuple[dict, Path]:
    return prairielearn_grade(image, tmp_path, hand_in)


def _tests_by_name(results: dict) -> dict[str, dict]:
    return {t["name"]: t for t in results["tests"]}


@pytest.mark.docker
@pytest.mark.slow
def test_the_reference_scores_one(image, tmp_path):
    results, path = grade_in(image, tmp_path, reference_file("epoll"))
    assert results["gradable"] is True and results["score"] == 1.0, results["message"]
    specs = load_assignment("epoll").checks
    tests = _tests_by_name(results)
    assert set(tests) == {s.title.en for s in specs}
    for spec in specs:
        t = tests[spec.title.en]
        assert t["points"] == t["max_points"] == spec.points
        assert t["message"] == "Passed." and t["description"] == spec.explain.en
    # Root's alone: the student's uid can neither list the folder nor read the file.
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700  # /grade itself
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == 0


@pytest.mark.docker
@pytest.mark.slow
def test_a_faulty_hand_in_scores_what_it_earns(image, tmp_path):
    results, _ = grade_in(image, tmp_path, fixtures("epoll") / FAULTY)
    specs = load_assignment("epoll").checks
    fails, why = expected_failures(EXPECTED_EPOLL, FAULTY, [s.id for s in specs])
    assert results["gradable"] is True, results["message"]
    tests = _tests_by_name(results)
    for spec in specs:
        t = tests[spec.title.en]
        if spec.id in fails:
            assert t["points"] == 0 and why.get(spec.id, "") in t["message"], t
            assert t["output"], t  # what the check did and saw
        else:
            assert t["points"] == spec.points, t
    earned = sum(s.points for s in specs if s.id not in fails)
    assert results["score"] == pytest.approx(earned / sum(s.points for s in specs))


@pytest.mark.docker
@pytest.mark.slow
def test_a_hand_in_that_cannot_be_graded_is_not_gradable(image, tmp_path):
    results, _ = grade_in(image, tmp_path, fixtures("epoll") / UNGRADABLE)
    assert results["gradable"] is False
    assert any("several .py files" in e for e in results["format_errors"]), results
    assert "several .py files" in results["message"]


@pytest.mark.docker
@pytest.mark.slow
def test_a_hand_in_that_cannot_start_scores_zero_as_everywhere(image, tmp_path):
    """A syntax error is graded here as in every other sandbox: `runs` names it."""
    results, _ = grade_in(image, tmp_path, fixtures("epoll") / CANNOT_START)
    assert results["gradable"] is True and results["score"] == 0, results["message"]
    runs = next(s for s in load_assignment("epoll").checks if s.id == "runs")
    assert "SyntaxError" in _tests_by_name(results)[runs.title.en]["message"]


@pytest.mark.docker
@pytest.mark.slow
def test_the_kit_in_the_image_is_root_s_alone(image):
    client, _ = image
    out = client.containers.run(
        IMAGE,
        entrypoint=["sh", "-c", "cat /opt/socketgrade/socketgrade.json; ls /opt/socketgrade; true"],
        user="65534:65534",
        network_disabled=True,
        remove=True,
        stderr=True,
    ).decode("utf-8", "replace")
    assert out.count("Permission denied") == 2 and "epoll" not in out, out
