"""Shared fixtures: the epoll batch graded once per session, Docker engine access."""

from __future__ import annotations

import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EPOLL_FIXTURES = ROOT / "tests" / "submissions" / "epoll"
EXPECTED_EPOLL = tomllib.loads((EPOLL_FIXTURES / "expected.toml").read_text(encoding="utf-8"))

try:  # the Docker fixtures live beside the Docker tests
    from tests.docker_support import docker_engine  # noqa: F401
except ImportError:  # pragma: no cover - only while the Docker support is absent
    pass


def build_epoll_batch(dest: Path) -> Path:
    """A class folder with every epoll fixture, the reference, the course listing, and the
    odd hand-ins (a .zip that is not one, a zipped folder)."""
    dest.mkdir(parents=True)
    for child in EPOLL_FIXTURES.iterdir():
        if child.is_dir():
            shutil.copytree(child, dest / child.name)
    shutil.copytree(dest / "busy_poll", dest / "busy_neighbour")
    (dest / "reference").mkdir()
    shutil.copyfile(ROOT / "reference" / "epoll_server.py", dest / "reference" / "server.py")
    shutil.copytree(ROOT / "examples" / "epoll" / "course_listing", dest / "course_listing")
    (dest / "not_a_zip.zip").write_bytes(b"this is not a zip archive\n")
    with zipfile.ZipFile(dest / "zipped_threaded.zip", "w") as zf:
        for f in (EPOLL_FIXTURES / "threaded").iterdir():
            zf.write(f, f"my_homework/{f.name}")
    return dest


@pytest.fixture(scope="session")
def epoll_batch_local(tmp_path_factory):
    """The whole epoll batch graded once with the local sandbox, three at a time (so that the
    busy-loop submissions run beside the others)."""
    from grader.cli import main

    base = tmp_path_factory.mktemp("epoll-local")
    batch = build_epoll_batch(base / "class")
    out = base / "out"
    code = main([str(batch), "--assignment", "epoll", "--out", str(out), "--sandbox", "local",
                 "--jobs", "3"])
    return code, out
