"""`grade export gradescope`: the zip as Gradescope gets it, run as Gradescope runs it (a plain
offline Debian container, Docker's default capabilities), and the results.json it leaves."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from grader.cli import main
from grader.platforms import gradescope
from tests.conftest import EXPECTED_EPOLL, fixtures, reference_file
from tests.platform_support import (
    STUDENT,
    expected_failures,
    gradescope_container,
    gradescope_grade,
    run,
)

FAULTY = "select_selector"  # an epoll fixture with its expected failures in expected.toml
UNGRADABLE = "no_entry"  # two .py files, neither named server.py: no entry to start
CANNOT_START = "syntax_error"  # graded as everywhere else: every check fails, `runs` says why
# What grading in place imports, and what it must not carry (the Docker SDK and its own).
NEEDED = {
    "socketgrade",
    "pytest",
    "pytest_json_report",
    "pytest_metadata",
    "psutil",
    "jinja2",
    "markupsafe",
    "babel",
    "rich",
}
NOT_CARRIED = {"docker", "requests", "urllib3"}


@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    assert main(["export", "gradescope", "-a", "epoll", "--lang", "en", "--out", str(out)]) == 0
    return out


def _wheels(zf: zipfile.ZipFile) -> dict[str, str]:
    names = [n for n in zf.namelist() if n.startswith("wheels/") and n.endswith(".whl")]
    return {Path(n).name.split("-")[0].lower(): n for n in names}


def test_the_zip_holds_the_scripts_at_its_root_and_the_wheels_grading_needs(autograder):
    with zipfile.ZipFile(autograder) as zf:
        names = set(zf.namelist())
        assert {"setup.sh", "run_autograder", "socketgrade.json", "unpack_wheels.py"} <= names
        wheels = _wheels(zf)
        assert set(wheels) >= NEEDED, sorted(wheels)
        assert not set(wheels) & NOT_CARRIED
        settings = json.loads(zf.read("socketgrade.json"))
        with zipfile.ZipFile(zf.open(wheels["socketgrade"])) as kit:
            inside = set(kit.namelist())
    assert settings["assignment"] == "epoll" and settings["lang"] == "en"
    # The kit's wheel carries what the export itself needs once installed: its templates.
    for name in ("setup.sh", "run_autograder", "Dockerfile", "entry.sh", "unpack_wheels.py"):
        assert f"grader/platforms/templates/{name}" in inside
    assert "grader/_kit/assignments/epoll/checks.py" in inside
    assert not any("/reference/" in n or "/fixtures/" in n for n in inside)


def _fake_wheel(folder: Path, name: str, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-7.0.0-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-7.0.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nTag: {tag}\n")
        zf.writestr(f"{name}-7.0.0.dist-info/METADATA", f"Name: {name}\nVersion: 7.0.0\n")
    return path


def test_a_wheel_that_is_not_for_linux_is_refused_with_the_fix(tmp_path, capsys):
    """A TA exporting from a Mac: its psutil cannot load on the graders."""
    _fake_wheel(tmp_path / "mac", "psutil", "cp36-abi3-macosx_11_0_arm64")
    out = tmp_path / "autograder.zip"
    argv = ["export", "gradescope", "-a", "epoll", "--lang", "en", "--out", str(out)]
    assert main([*argv, "--wheels", str(tmp_path / "mac")]) == 2
    said = capsys.readouterr().err
    assert "psutil" in said and "macOS" in said and "--wheels" in said
    assert said.count("\n") == 1 and not out.exists()


def test_a_kit_failure_still_says_why(tmp_path):
    from grader.contract import msg
    from grader.i18n import Speaker

    payload = gradescope.kit_failure(msg("boom {x}", x="here"), Speaker("en"))
    assert payload["score"] == 0 and payload["extra_data"]["status"] == "grader_error"
    assert payload["output"].startswith("GRADER ERROR: boom here")


# --- the zip in a plain offline container, laid out as Gradescope lays it out ---------------


@pytest.fixture(scope="module")
def container(autograder):
    """The zip unpacked and set up as Gradescope does, in a plain offline container."""
    with gradescope_container(autograder) as box:
        # The no-pip path is the one tested: the base image has neither pip nor venv.
        assert run(box, "python3 -m pip --version")[0] != 0
        # Nor does the bundle carry the Docker SDK: grading in place never imports it.
        assert run(box, "PYTHONPATH=/autograder/source/lib python3 -c 'import docker'")[0] != 0
        yield box


grade_in = gradescope_grade


def _check_tests(results: dict, fails: set[str], why: dict) -> None:
    specs = {c.id: c for c in load_assignment("epoll").checks}
    tests = {t["number"]: t for t in results["tests"]}
    assert set(tests) == set(specs)
    for ident, spec in specs.items():
        t = tests[ident]
        assert t["name"] == spec.title.en
        assert t["max_score"] == spec.points
        assert t["visibility"] == spec.visibility
        failed = ident in fails
        assert t["status"] == ("failed" if failed else "passed"), (ident, t["output"])
        assert t["score"] == (0 if failed else spec.points)
        assert t["output_format"] == "md"
        if failed:
            assert why.get(ident, "") in t["output"]
        else:
            assert t["output"] == "Passed."
    assert results["score"] == sum(s.points for i, s in specs.items() if i not in fails)


@pytest.mark.docker
@pytest.mark.slow
def test_the_reference_earns_every_point(container, tmp_path):
    shutil.copyfile(reference_file("epoll"), tmp_path / "server.py")
    results = grade_in(container, tmp_path)
    assert results["extra_data"]["status"] == "graded", results["output"]
    _check_tests(results, set(), {})
    assert results["score"] == 100
    # The after-due-date check is marked so: Gradescope shows it only then.
    assert {t["number"] for t in results["tests"] if t["visibility"] == "after_due_date"} == {
        "robustness"
    }


@pytest.mark.docker
@pytest.mark.slow
def test_a_faulty_hand_in_fails_what_the_fixture_table_says(container):
    results = grade_in(container, fixtures("epoll") / FAULTY)
    names = [c.id for c in load_assignment("epoll").checks]
    fails, why = expected_failures(EXPECTED_EPOLL, FAULTY, names)
    assert results["extra_data"]["status"] == "graded", results["output"]
    _check_tests(results, fails, why)


@pytest.mark.docker
@pytest.mark.slow
def test_a_hand_in_that_cannot_be_graded_gets_results_that_say_why(container):
    results = grade_in(container, fixtures("epoll") / UNGRADABLE)
    assert results["extra_data"]["status"] == "not_gradable"
    assert results["score"] == 0
    assert "several .py files" in results["output"]
    assert all(t["status"] == "failed" for t in results["tests"])


@pytest.mark.docker
@pytest.mark.slow
def test_a_hand_in_that_cannot_start_fails_what_the_fixture_table_says(container):
    """A syntax error is graded here as in every other sandbox: `runs` names it."""
    results = grade_in(container, fixtures("epoll") / CANNOT_START)
    specs = load_assignment("epoll").checks
    fails, why = expected_failures(EXPECTED_EPOLL, CANNOT_START, [s.id for s in specs])
    assert results["extra_data"]["status"] == "graded", results["output"]
    _check_tests(results, fails, why)


@pytest.mark.docker
@pytest.mark.slow
def test_the_student_cannot_read_the_kit_nor_the_results(container, tmp_path):
    shutil.copyfile(reference_file("epoll"), tmp_path / "server.py")
    grade_in(container, tmp_path)  # the student's user exists from here on
    for path in (
        "/autograder/source/socketgrade.json",
        "/autograder/source/lib/grader/_kit/assignments/epoll/checks.py",
        "/autograder/results/results.json",
    ):
        code, out = run(container, f"cat {path}", user=STUDENT)
        assert code != 0 and "Permission denied" in out, (path, out)
    code, out = run(container, "ls /autograder/source", user=STUDENT)
    assert code != 0, out


@pytest.mark.docker
@pytest.mark.slow
def test_a_fault_of_the_kit_still_leaves_results_that_say_so(container, tmp_path):
    shutil.copyfile(reference_file("epoll"), tmp_path / "server.py")
    settings = "/autograder/source/socketgrade.json"
    assert run(container, f"mv {settings} {settings}.aside")[0] == 0
    try:
        results = grade_in(container, tmp_path)
    finally:
        assert run(container, f"mv {settings}.aside {settings}")[0] == 0
    assert results["extra_data"]["status"] == "grader_error"
    assert results["output"].startswith("GRADER ERROR: the grader failed")
    assert "socketgrade.json" in results["output"]
