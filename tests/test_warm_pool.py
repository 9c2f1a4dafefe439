"""The order in which containers are started ahead of need (grader/sandbox/docker/warm.py),
with a stand-in engine: the real ones are in test_docker_sandbox.py."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from grader.sandbox.docker.warm import WarmPool

# Long against a thread's start; what should not happen is watched this long.
WINDOW = 0.3
DEADLINE = 5.0


class _Engine:
    """Records the containers created; each starts at once."""

    def __init__(self) -> None:
        self.created = threading.Semaphore(0)
        self.count = 0

    def create(self, **kwargs):
        self.count += 1
        self.created.release()
        return SimpleNamespace(start=lambda: None)


def _pool(tmp_path) -> tuple[WarmPool, _Engine]:
    engine = _Engine()
    sandbox = SimpleNamespace(
        scratch=tmp_path,
        client=SimpleNamespace(containers=engine),
        register=lambda name: None,
        forget=lambda name: None,
        create_kwargs=lambda req, name, given, out: {"command": [], "labels": {}},
    )
    return WarmPool(sandbox), engine


def test_containers_ahead_wait_for_the_cold_starts_under_way(tmp_path):
    """The first hand-ins of a batch start their own containers (none is ready yet): the
    ones started ahead for the next hand-ins wait until those are started, so as not to
    slow them down, then start."""
    pool, engine = _pool(tmp_path)
    pool.expect(4)
    req = SimpleNamespace(assignment=SimpleNamespace(folder=tmp_path))
    assert pool.take(req) is None and pool.take(req) is None  # two cold starts under way
    assert not engine.created.acquire(timeout=WINDOW), "one started beside the cold ones"
    pool.cold_started()
    assert not engine.created.acquire(timeout=WINDOW), "one started beside the second"
    pool.cold_started()
    assert engine.created.acquire(timeout=DEADLINE) and engine.created.acquire(timeout=DEADLINE)
    assert engine.count == 2  # for the two hand-ins still to come, no more
    pool.close()


def test_containers_ahead_wait_until_the_cold_gradings_checks_have_begun(tmp_path, monkeypatch):
    """Started is not enough: a cold grading's harness still loads its interpreter, pytest
    and the kit, the heaviest part of its start. The containers ahead start once every cold
    grading under way has begun its checks (its CHECKS_BEGUN file), or is over. (COLD_FIRST,
    the bound on that wait, is made long here: it is not what lets them start.)"""
    from grader.contract import checks_begun
    from grader.sandbox.docker import warm

    monkeypatch.setattr(warm, "COLD_FIRST", 60.0)
    pool, engine = _pool(tmp_path)
    pool.expect(4)
    req = SimpleNamespace(assignment=SimpleNamespace(folder=tmp_path))
    assert pool.take(req) is None and pool.take(req) is None
    first, second = checks_begun(tmp_path / "1" / "report.json"), checks_begun(tmp_path / "2" / "r")
    first.parent.mkdir()
    pool.cold_started(first)
    pool.cold_started(second)
    assert not engine.created.acquire(timeout=WINDOW), "one started while both were loading"
    first.touch()  # the first has begun its checks
    assert not engine.created.acquire(timeout=WINDOW), "one started while the second loaded"
    pool.cold_over(second)  # the second ended without beginning them (its harness failed)
    assert engine.created.acquire(timeout=DEADLINE) and engine.created.acquire(timeout=DEADLINE)
    assert engine.count == 2
    pool.close()


def test_containers_ahead_start_once_the_file_says_the_checks_began(tmp_path, monkeypatch):
    from grader.contract import checks_begun
    from grader.sandbox.docker import warm

    monkeypatch.setattr(warm, "COLD_FIRST", 60.0)
    pool, engine = _pool(tmp_path)
    pool.expect(2)
    req = SimpleNamespace(assignment=SimpleNamespace(folder=tmp_path))
    assert pool.take(req) is None
    begun = checks_begun(tmp_path / "report.json")
    pool.cold_started(begun)
    assert not engine.created.acquire(timeout=WINDOW)
    begun.touch()
    assert engine.created.acquire(timeout=DEADLINE)
    assert engine.count == 1
    pool.close()


def test_a_closed_pool_starts_nothing_more(tmp_path):
    pool, engine = _pool(tmp_path)
    pool.expect(3)
    req = SimpleNamespace(assignment=SimpleNamespace(folder=tmp_path))
    assert pool.take(req) is None
    pool.close()  # the batch ended (Ctrl-C) before the cold start said it was done
    assert not engine.created.acquire(timeout=WINDOW)
    assert engine.count == 0


def test_a_warm_harness_is_told_the_checks_file_of_the_command_it_stands_in_for():
    from grader.sandbox.docker.warm import _checks_file

    assert _checks_file(["-m", "grader.harness.run", "--checks-file", "/k/c.py", "--x"]) == [
        "/k/c.py"
    ]
    assert _checks_file(["-m", "grader.harness.run"]) == []
    assert _checks_file(["--checks-file"]) == []
