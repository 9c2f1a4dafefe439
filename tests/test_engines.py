"""Several Docker engines: a class graded over this machine's engine and a second dockerd has
the verdicts of one engine, both engines grade, each report names its engine; and when the
second engine dies mid-batch, nothing is lost. The pool's rules (slots, set aside, retry) and
the `--docker-host` command line are also proved without Docker, on fake engines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

try:  # the fixture is also imported by conftest.py; either way it is the same function
    from tests.docker_support import docker_engine
    from tests.engines_support import start_second_engine
except ImportError:
    from docker_support import docker_engine  # noqa: F401
    from engines_support import start_second_engine  # type: ignore[no-redef]
from grader.assignment import load_assignment
from grader.cli import main
from grader.contract import msg
from grader.models import RunOutcome, RunRequest, Submission
from grader.sandbox import SandboxError
from grader.sandbox.docker import OWNER_LABEL, ROLE, ROLE_LABEL
from grader.sandbox.docker import pool as engine_pool
from grader.sandbox.docker.engines import EngineSpec, EngineSpecError, parse_engines
from grader.sandbox.docker.image import default_host
from grader.sandbox.docker.runner import EngineError
from tests.conftest import class_of, expected
from tests.verdicts import assert_verdicts, load_results

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
    return class_of(ASSIGNMENT, CLASS, tmp_path)


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


@pytest.mark.docker  # a second engine beside the first: minutes
@pytest.mark.slow
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
    # Read back from result.json: `grade report` names them again.
    for report in out.glob("*/report.html"):
        report.unlink()
    assert main(["report", str(out), "--lang", "zh"]) == 0
    for ident, url in named.items():
        assert url in (out / ident / "report.html").read_text(encoding="utf-8")


@pytest.mark.docker  # a second engine beside the first: minutes
@pytest.mark.slow
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


# --- the pool's rules on fake engines ---------------------------------------------------------


class FakeClient:
    def __init__(self, answers: bool = True):
        self.answers = answers

    def ping(self) -> bool:
        if not self.answers:
            raise EngineError(msg("gone"))
        return True


class FakeSandbox:
    """An engine whose runs do what `behaviour[url]` says: "ok", "raises" (the engine fails
    under the run) or "silent" (no report, and the engine stops answering)."""

    behaviour: ClassVar[dict[str, str]] = {}
    running: ClassVar[Counter] = Counter()
    most: ClassVar[Counter] = Counter()
    lock = threading.Lock()

    def __init__(self, wall_clock, scratch=None, limits=None, client=None, engine="", **_):
        self.engine = engine
        self.client = client or FakeClient()

    def describe(self) -> dict:
        return {"memory": "1 MiB"}

    def run(self, req: RunRequest) -> RunOutcome:
        what = self.behaviour[self.engine]
        with self.lock:
            self.running[self.engine] += 1
            self.most[self.engine] = max(self.most[self.engine], self.running[self.engine])
        try:
            time.sleep(0.05)
            if what == "raises":
                raise EngineError(msg("the engine went away"))
            if what == "silent":
                self.client.answers = False
                return RunOutcome(None, 0.1, "docker", error_fault="infrastructure")
            return RunOutcome({"tests": []}, 0.1, "docker", engine=self.engine)
        finally:
            with self.lock:
                self.running[self.engine] -= 1

    def stop_all(self) -> None:
        pass


@pytest.fixture
def fake_engines(monkeypatch):
    FakeSandbox.running.clear()
    FakeSandbox.most.clear()
    monkeypatch.setattr(engine_pool, "provide_image", lambda urls, **_: list(urls))
    monkeypatch.setattr(engine_pool, "connect", lambda url=None, **_: FakeClient())
    monkeypatch.setattr(engine_pool, "DockerSandbox", FakeSandbox)
    monkeypatch.setattr(engine_pool, "SETTLE_SECONDS", 0.0)

    def make(behaviour: dict[str, tuple[str, int]]):
        FakeSandbox.behaviour = {url: what for url, (what, _) in behaviour.items()}
        said: list[str] = []
        specs = [EngineSpec(url, jobs) for url, (_, jobs) in behaviour.items()]
        return engine_pool.EnginePool(specs, 60, notify=lambda m: said.append(str(m))), said

    return make


def grade_all(pool, count: int) -> list[RunOutcome]:
    req = RunRequest(
        Submission("s", Path("."), Path("."), "server.py"),
        load_assignment(ASSIGNMENT),
        (),
        60,
    )
    with ThreadPoolExecutor(max_workers=pool.jobs) as workers:
        return list(workers.map(lambda _: pool.run(req), range(count)))


def test_each_engine_keeps_to_its_own_jobs(fake_engines):
    pool, said = fake_engines({"tcp://a:1": ("ok", 2), "tcp://b:1": ("ok", 1)})
    assert pool.jobs == 3
    outcomes = grade_all(pool, 12)
    assert all(o.report is not None for o in outcomes)
    assert {o.engine for o in outcomes} == {"tcp://a:1", "tcp://b:1"}
    assert FakeSandbox.most["tcp://a:1"] <= 2 and FakeSandbox.most["tcp://b:1"] <= 1
    assert said == []


@pytest.mark.parametrize("failure", ["raises", "silent"])
def test_a_failing_engine_is_set_aside_once_and_nothing_is_lost(fake_engines, failure):
    pool, said = fake_engines({"tcp://a:1": (failure, 1), "tcp://b:1": ("ok", 1)})
    outcomes = grade_all(pool, 6)
    assert [o.engine for o in outcomes] == ["tcp://b:1"] * 6
    assert all(o.report is not None for o in outcomes)
    assert len(said) == 1 and "the Docker engine tcp://a:1 is set aside" in said[0]
    assert any("after tcp://a:1 failed" in o.log for o in outcomes)


def test_with_every_engine_gone_a_submission_is_a_grader_error(fake_engines):
    pool, said = fake_engines({"tcp://a:1": ("raises", 1), "tcp://b:1": ("raises", 2)})
    outcomes = grade_all(pool, 3)
    assert all(o.report is None and o.error_fault == "infrastructure" for o in outcomes)
    assert all(str(o.error).startswith("every Docker engine failed") for o in outcomes)
    assert len(said) == 2


def test_no_engine_that_can_grade_is_one_sentence(fake_engines, monkeypatch):
    def refuse(urls, set_aside, **_):
        for url in urls:
            set_aside(url, SandboxError(msg("the grading image is missing")))
        return []

    monkeypatch.setattr(engine_pool, "provide_image", refuse)
    with pytest.raises(SandboxError, match=r"none of the Docker engines can grade: tcp://a:1: "):
        fake_engines({"tcp://a:1": ("ok", 1)})


def test_an_engine_unreachable_at_the_start_is_set_aside(fake_engines, monkeypatch):
    def half(urls, set_aside, **_):
        set_aside(urls[0], SandboxError(msg("no Docker engine is reachable")))
        return urls[1:]

    monkeypatch.setattr(engine_pool, "provide_image", half)
    pool, said = fake_engines({"tcp://a:1": ("ok", 1), "tcp://b:1": ("ok", 1)})
    assert len(said) == 1 and "tcp://a:1 is set aside" in said[0]
    assert {o.engine for o in grade_all(pool, 3)} == {"tcp://b:1"}


# --- the command line ---------------------------------------------------------------------------


def test_engine_urls_and_their_jobs():
    specs = parse_engines(["unix:///run/a.sock", "tcp://h:2376#jobs=3", "ssh://u@h"], 2)
    assert specs == (
        EngineSpec("unix:///run/a.sock", 2),
        EngineSpec("tcp://h:2376", 3),
        EngineSpec("ssh://u@h", 2),
    )
    for bad in (["ftp://h"], [""], ["tcp://h:1#jobs=0"], ["tcp://h:1#cpus=2"], ["x://", "x://"]):
        with pytest.raises(EngineSpecError):
            parse_engines(bad, 1)


@pytest.mark.parametrize(
    "args,sentence",
    [
        (["--docker-host", "ftp://h"], "--docker-host 'ftp://h' is not a Docker engine's URL"),
        (["--docker-host", "tcp://h:1#jobs=x"], "after '#' give the engine's parallelism"),
        (
            ["--docker-host", "unix:///a", "--docker-host", "unix:///a"],
            "--docker-host unix:///a is given twice",
        ),
        (
            ["--sandbox", "local", "--docker-host", "unix:///a"],
            "--docker-host needs --sandbox docker",
        ),
    ],
)
def test_a_bad_docker_host_is_a_usage_error(tmp_path, capsys, args, sentence):
    assert main([str(tmp_path), "-a", ASSIGNMENT, "--lang", "en", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade: ") and sentence in err and err.count("\n") == 1, err
