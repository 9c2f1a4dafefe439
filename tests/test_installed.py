"""The product as users get it: a wheel built from this checkout, installed (not editable)
into a fresh venv, its `grade` run from a student's folder with relative paths."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXPECTED_EPOLL, ROOT, fixtures, reference_file
from tests.verdicts import assert_verdicts, load_results

# What the build does not need: version control, venvs, build leftovers, outputs, tests.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    "out",
    "socketgrade-report",
    "tests",
    "examples",
)
INSTALL_TIMEOUT = 900  # pip may fetch the dependencies from PyPI on a cold cache
GRADE_TIMEOUT = 600  # far above a class of two: the batch's own bounds end it first
FAULTY = "select_selector"  # a faulty epoll fixture with its verdicts in expected.toml
VISIBLE = 90  # the epoll self-check's points (robustness is hidden from it)


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv holding the wheel built from this checkout. The wheel
    is built from a copy, so the shared checkout gets no build/ of this run's."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            base / "dist",
            source,
        ],
        timeout=INSTALL_TIMEOUT,
    )
    (wheel,) = (base / "dist").glob("socketgrade-*.whl")
    _run([sys.executable, "-m", "venv", base / "venv"], timeout=INSTALL_TIMEOUT)
    _run(
        [
            base / "venv" / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            wheel,
        ],
        timeout=INSTALL_TIMEOUT,
    )
    return base / "venv" / "bin"


def grade(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed console script, as a student runs it: from their folder, nothing of
    this checkout on the import path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return subprocess.run(
        [str(bin_dir / "grade"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=GRADE_TIMEOUT,
    )


def student_folder(parent: Path, name: str = "lab3") -> Path:
    lab = parent / name
    lab.mkdir(parents=True)
    shutil.copyfile(reference_file("epoll"), lab / "server.py")
    return lab


def a_class(parent: Path) -> Path:
    """The reference and one faulty hand-in."""
    cls = parent / "class"
    student_folder(cls, "reference")
    shutil.copytree(fixtures("epoll") / FAULTY, cls / FAULTY)
    return cls


def assert_class_verdicts(out: Path) -> None:
    for ident in ("reference", FAULTY):
        results = load_results(out, ident)
        assert_verdicts(results, EXPECTED_EPOLL[ident], {t["number"] for t in results["tests"]})
    assert (out / "index.html").is_file() and (out / "grades.csv").is_file()


def assert_self_check_passed(done: subprocess.CompletedProcess, report: Path) -> None:
    assert done.returncode == 0, done.stderr
    assert "all visible checks pass" in done.stderr
    results = load_results(report.parent, report.name)
    assert results["score"] == VISIBLE
    assert (report / "report.html").is_file()


def test_the_wheel_carries_what_grade_needs(installed):
    """The installed kit finds its own assignments and sandbox files (not this checkout's),
    byte for byte those of the checkout, so the grading image's source hash agrees."""
    probe = (
        "import grader.kitpaths as k, grader.assignment as a, grader.sandbox.docker.image as d;"
        "print(k.PACKAGE); print(k.ROOT); print(k.harness_pythonpath());"
        "print(','.join(a.available())); print(d.source_hash())"
    )
    done = _run([installed / "python", "-c", probe], cwd=installed)
    package, root, pythonpath, names, digest = done.stdout.splitlines()
    assert Path(package).parent.name == "site-packages"
    assert Path(root) == Path(package) / "_kit"
    assert pythonpath == "None", "site-packages must not go on the harness's PYTHONPATH"
    assert names.split(",") == sorted(p.name for p in (ROOT / "assignments").iterdir())
    for folder in ("assignments", "sandbox"):
        compared = filecmp.dircmp(ROOT / folder, Path(root) / folder, ignore=["__pycache__"])
        assert not (compared.left_only or compared.right_only or compared.diff_files)
    assert (Path(package) / "harness" / "harness.ini").is_file()
    from grader.sandbox.docker.image import source_hash

    assert digest == source_hash()


@pytest.mark.parametrize(
    "args, ident",
    [(["server.py"], "server"), (["."], "lab3"), ([], "lab3")],
    ids=["server.py", "dot", "no-path"],
)
def test_self_check_from_the_students_folder(installed, tmp_path, args, ident):
    lab = student_folder(tmp_path)
    done = grade(installed, lab, "check", *args, "-a", "epoll")
    assert_self_check_passed(done, lab / "socketgrade-report" / ident)


def test_self_check_of_a_relative_folder_into_a_relative_out(installed, tmp_path):
    student_folder(tmp_path)
    done = grade(
        installed, tmp_path, "check", "lab3/", "--assignment", "epoll", "--out", "reports/"
    )
    assert_self_check_passed(done, tmp_path / "reports" / "lab3")
    missing = grade(installed, tmp_path, "check", "lab4/", "-a", "epoll", "--lang", "en")
    assert (missing.returncode, missing.stderr) == (2, "grade: 'lab4/' does not exist\n")


def test_local_batch_with_relative_paths(installed, tmp_path):
    a_class(tmp_path)
    done = grade(installed, tmp_path, "class", "-a", "epoll", "--out", "out", "--sandbox", "local")
    assert done.returncode == 0, done.stderr
    assert_class_verdicts(tmp_path / "out")


@pytest.mark.docker
def test_docker_batch_with_relative_paths(installed, tmp_path, docker_engine):
    """Docker is `grade`'s default sandbox; it mounts the kit from site-packages."""
    a_class(tmp_path)
    done = grade(installed, tmp_path, "class/", "-a", "epoll", "--out", "out/")
    assert done.returncode == 0, done.stderr
    assert_class_verdicts(tmp_path / "out")
    assert load_results(tmp_path / "out", "reference")["extra_data"]["sandbox"] == "docker"


@pytest.mark.docker
def test_self_check_in_docker(installed, tmp_path, docker_engine):
    """What a student on macOS or Windows runs."""
    lab = student_folder(tmp_path)
    done = grade(installed, lab, "check", "--sandbox", "docker", "-a", "epoll")
    assert_self_check_passed(done, lab / "socketgrade-report" / "lab3")
    assert load_results(lab / "socketgrade-report", "lab3")["extra_data"]["sandbox"] == "docker"


def test_a_checkout_uses_its_own_data_folders():
    """In a checkout (and an editable install) the kit reads assignments/ and sandbox/ where
    they are, and the harness gets the checkout on its PYTHONPATH (it may not be installed)."""
    from grader import kitpaths

    assert kitpaths.ROOT == ROOT and kitpaths.ASSIGNMENTS == ROOT / "assignments"
    assert kitpaths.SANDBOX == ROOT / "sandbox"
    assert kitpaths.harness_pythonpath() == str(ROOT)
    assert not kitpaths.BUNDLED.exists()
