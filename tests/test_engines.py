"""Several Docker engines: a class graded over this machine's engine and a second dockerd has
the verdicts of one engine, both engines grade, each report names its engine; and when the
second engine dies mid-batch, nothing is lost."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:  # the fixture is also imported by conftest.py; either way it is the same function
    from tests.docker_support import docker_engine
    from tests.engines_support import start_second_engine
except ImportError:
    from docker_support import docker_engine  # noqa: F401
    from engines_support import start_second_engine  # type: ignore[no-redef]
from grader.assignment import load_assignment
from grader.sandbox.docker import OWNER_LABEL, ROLE, ROLE_LABEL
from grader.sandbox.docker.image import default_host
from tests.conftest import build_batch, expected
from tests.verdicts import assert_verdicts, load_results

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ASSIGNMENT = "epoll"
# The reference and four bugs, each failing other checks: a class small enough to grade
# twice, varied enough that a verdict moved between engines would show.
CLASS = ("reference", "busy_poll", "threaded", "leaks_fds", "select_selector")
GRADE_SECONDS = 900.0  # deadline for grading the class (image load included) on a slow box
APPEAR_SECONDS = 300.0  # deadline for the second engine's first container to be running
POLL_SECONDS = 0.2


@pytest.fixture(scope="module")
def second_engine(docker_engine):
    engine = start_second_engine()
    try:
        yield engine
    finally:
        engine.remove()


@pytest.fixture
def small_class(tmp_path) -> Path:
    everything = build_batch(ASSIGNMENT, tmp_path / "all")
    batch = tmp_path / "class"
    batch.mkdir()
    for ident in CLASS:
        shutil.move(everything / ident, batch / ident)
    return batch


def grade_command(batch: Path, out: Path, urls: list[str]) -> list[str]:
    """The installed `grade`, as a TA runs it, over `urls` one submission at a time each."""
    installed = Path(sys.executable).with_name("grade")
    cmd = [str(installed)] if installed.exists() else [sys.executable, "-m", "grader.cli"]
    cmd += [str(batch), "--assignment", ASSIGNMENT, "--out", str(out), "--lang", "en"]
    for url in urls:
        cmd += ["--docker-host", f"{url}#jobs=1"]
    return cmd


def check_verdicts(out: Path) -> None:
    """Every hand-in of the class has the verdicts its expected.toml entry says."""
    table = expected(ASSIGNMENT)
    checks = {c.id for c in load_assignment(ASSIGNMENT).checks}
    for ident in CLASS:
        assert_verdicts(load_results(out, ident), table[ident], checks)


def engines_named(out: Path) -> dict[str, str]:
    """Each submission's engine, as its saved result says."""
    return {
        ident: json.loads((out / ident / "result.json").read_text())["result"]["engine"]
        for ident in CLASS
    }


def containers_created(client, owner: str, since: int) -> int:
    """How many grading containers the grader process `owner` created on this engine."""
    events = client.events(
        since=since,
        until=int(time.time()) + 1,
        decode=True,
        filters={
            "type": "container",
            "event": "create",
            "label": [f"{ROLE_LABEL}={ROLE}", f"{OWNER_LABEL}={owner}"],
        },
    )
    return sum(1 for _ in events)


def test_a_class_over_two_engines(docker_engine, second_engine, small_class, tmp_path):
    first, second = default_host(), second_engine.url
    out = tmp_path / "out"
    since = int(time.time()) - 1
    proc = subprocess.Popen(
        grade_command(small_class, out, [first, second]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    owner = f"{socket.gethostname()}:{proc.pid}"
    output, _ = proc.communicate(timeout=GRADE_SECONDS)
    assert proc.returncode == 0, output
    check_verdicts(out)

    client = second_engine.client()
    try:
        on_second = containers_created(client, owner, since)
    finally:
        client.close()
    on_first = containers_created(docker_engine, owner, since)
    assert on_first >= 1 and on_second >= 1, (on_first, on_second)
    assert on_first + on_second == len(CLASS)
    # The runner's own record agrees with the engines', and each report names its engine.
    named = engines_named(out)
    assert sorted(named.values()) == sorted([first] * on_first + [second] * on_second)
    for ident, url in named.items():
        assert url in (out / ident / "report.html").read_text(encoding="utf-8")


def test_an_engine_dying_mid_batch_loses_nothing(
    docker_engine, second_engine, small_class, tmp_path
):
    first, second = default_host(), second_engine.url
    out = tmp_path / "out"
    log = tmp_path / "grade.log"
    with open(log, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            grade_command(small_class, out, [first, second]),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
    owner = f"{socket.gethostname()}:{proc.pid}"
    try:
        # Its first container running: the engine dies under it.
        client = second_engine.client()
        deadline = time.monotonic() + APPEAR_SECONDS
        while not client.containers.list(
            filters={"label": f"{OWNER_LABEL}={owner}", "status": "running"}
        ):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no container on the second engine"
            time.sleep(POLL_SECONDS)
        client.close()
        second_engine.kill()
        proc.wait(timeout=GRADE_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, output
    check_verdicts(out)
    assert f"the Docker engine {second} is set aside" in " ".join(output.split()), output
    assert output.count("is set aside") == 1, output
    # What was on the dead engine was graded again on the first.
    assert set(engines_named(out).values()) == {first}
