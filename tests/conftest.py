"""Shared fixtures. Every table is found by walking assignments/*: an assignment's folder
holds its reference, its fixtures with their expected verdicts, its hold-out hand-ins and its
examples, so adding an assignment adds its tests."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
HOSTILE = ROOT / "tests" / "hostile"


def assignment_names() -> list[str]:
    """Every assignment of the kit (a folder of assignments/ with an assignment.toml)."""
    return sorted(p.name for p in ASSIGNMENTS.iterdir() if (p / "assignment.toml").is_file())


def _entry(assignment: str) -> str:
    meta = tomllib.loads((ASSIGNMENTS / assignment / "assignment.toml").read_text("utf-8"))
    return meta.get("entry", "server.py")


def reference_file(assignment: str) -> Path:
    """The assignment's reference solution: reference/<entry> in its folder."""
    return ASSIGNMENTS / assignment / "reference" / _entry(assignment)


def fixtures(assignment: str) -> Path:
    return ASSIGNMENTS / assignment / "fixtures"


def expected(assignment: str) -> dict:
    """The expected verdicts of an assignment's fixtures (fixtures/expected.toml)."""
    return tomllib.loads((fixtures(assignment) / "expected.toml").read_text(encoding="utf-8"))


EXPECTED_EPOLL = expected("epoll")

try:  # the Docker fixtures live beside the Docker tests
    from tests.docker_support import docker_engine  # noqa: F401
except ImportError:  # pragma: no cover - only while the Docker support is absent
    pass


def build_batch(assignment: str, dest: Path) -> Path:
    """A class folder: every fixture of the assignment (folders, files and odd hand-ins such
    as a .zip that is not one), a copy of each fixture whose table entry says `copy_of`, its
    reference (as `reference`) and the course's own listing from its examples/ (as
    `course_listing`)."""
    dest.mkdir(parents=True)
    for child in fixtures(assignment).iterdir():
        if child.name == "expected.toml":
            continue
        if child.is_dir():
            shutil.copytree(child, dest / child.name)
        else:
            shutil.copyfile(child, dest / child.name)
    for ident, entry in expected(assignment).items():
        if "copy_of" in entry:
            shutil.copytree(dest / entry["copy_of"], dest / ident)
    (dest / "reference").mkdir()
    shutil.copyfile(reference_file(assignment), dest / "reference" / _entry(assignment))
    listing = ASSIGNMENTS / assignment / "examples" / "course_listing"
    if listing.is_dir():
        shutil.copytree(listing, dest / "course_listing")
    return dest


def class_of(assignment: str, idents: tuple[str, ...], dest: Path) -> Path:
    """A class folder holding only `idents` of the assignment's batch (build_batch)."""
    everything = build_batch(assignment, dest / "all")
    batch = dest / "class"
    batch.mkdir()
    for ident in idents:
        shutil.move(everything / ident, batch / ident)
    return batch


def _grader(tmp_path_factory, sandbox: str, jobs: int):
    """grade(assignment) -> (exit code, out folder), each class graded once per session."""
    from grader.cli import main

    done: dict[str, tuple[int, Path]] = {}

    def grade(assignment: str) -> tuple[int, Path]:
        if assignment not in done:
            base = tmp_path_factory.mktemp(f"{assignment}-{sandbox}")
            batch = build_batch(assignment, base / "class")
            out = base / "out"
            code = main(
                [
                    str(batch),
                    "--assignment",
                    assignment,
                    "--out",
                    str(out),
                    "--sandbox",
                    sandbox,
                    "--jobs",
                    str(jobs),
                ]
            )
            done[assignment] = (code, out)
        return done[assignment]

    return grade


@pytest.fixture(scope="session")
def graded_local(tmp_path_factory):
    """Each assignment's class graded once with the local sandbox, three at a time (the
    busy loops among them run beside the others)."""
    return _grader(tmp_path_factory, "local", 3)


@pytest.fixture(scope="session")
def graded_docker(tmp_path_factory, docker_engine):
    """Each assignment's class graded once in Docker, two at a time."""
    return _grader(tmp_path_factory, "docker", 2)


@pytest.fixture(scope="session")
def epoll_batch_local(graded_local):
    return graded_local("epoll")


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`-n 2 --dist loadgroup`, as scripts/test.sh runs the suite), tests
    that share a session's graded classes run in one worker, so each class is graded once;
    every other file is a group of its own (its module fixtures are its state)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"graded_local", "epoll_batch_local"}:
            group = "graded_local"
        elif "graded_docker" in names:
            group = "graded_docker"
        else:
            group = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
