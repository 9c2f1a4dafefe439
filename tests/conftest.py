"""Shared fixtures: the epoll batch graded once per session, Docker engine access."""

from __future__ import annotations

import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
REFERENCES = {"epoll": "epoll_server.py", "blocking": "blocking_server.py",
              "blocking-nb": "blocking_nb_server.py", "nonblocking": "nonblocking_server.py",
              "client": "nonblocking_client.py"}


def expected(assignment: str) -> dict:
    """The expected verdicts of an assignment's submissions (its expected.toml)."""
    text = (SUBMISSIONS / assignment / "expected.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


EXPECTED_EPOLL = expected("epoll")

try:  # the Docker fixtures live beside the Docker tests
    from tests.docker_support import docker_engine  # noqa: F401
except ImportError:  # pragma: no cover - only while the Docker support is absent
    pass


def build_batch(assignment: str, dest: Path) -> Path:
    """A class folder: every fixture of the assignment, its reference (as `reference`) and
    the course's own listing from examples/ (as `course_listing`). The epoll class also gets
    a second busy loop and the odd hand-ins (a .zip that is not one, a zipped folder)."""
    dest.mkdir(parents=True)
    fixtures = SUBMISSIONS / assignment
    for child in fixtures.iterdir():
        if child.is_dir():
            shutil.copytree(child, dest / child.name)
    from grader.assignment import load_assignment

    (dest / "reference").mkdir()
    shutil.copyfile(ROOT / "reference" / REFERENCES[assignment],
                    dest / "reference" / load_assignment(assignment).entry)
    listing = ROOT / "examples" / assignment / "course_listing"
    if listing.is_dir():
        shutil.copytree(listing, dest / "course_listing")
    if assignment == "epoll":
        shutil.copytree(dest / "busy_poll", dest / "busy_neighbour")
        (dest / "not_a_zip.zip").write_bytes(b"this is not a zip archive\n")
        with zipfile.ZipFile(dest / "zipped_threaded.zip", "w") as zf:
            for f in (fixtures / "threaded").iterdir():
                zf.write(f, f"my_homework/{f.name}")
    return dest


def _grader(tmp_path_factory, sandbox: str, jobs: int):
    """grade(assignment) -> (exit code, out folder), each class graded once per session."""
    from grader.cli import main

    done: dict[str, tuple[int, Path]] = {}

    def grade(assignment: str) -> tuple[int, Path]:
        if assignment not in done:
            base = tmp_path_factory.mktemp(f"{assignment}-{sandbox}")
            batch = build_batch(assignment, base / "class")
            out = base / "out"
            code = main([str(batch), "--assignment", assignment, "--out", str(out),
                         "--sandbox", sandbox, "--jobs", str(jobs)])
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
