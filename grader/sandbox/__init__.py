"""Sandbox stage: runs the in-sandbox harness on one submission and brings back its report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from grader.contract import Message
from grader.models import RunOutcome, RunRequest
from grader.sandbox.common import DEFAULT_WALL_CLOCK, SandboxError
from grader.sandbox.local import LocalSandbox

if TYPE_CHECKING:  # the docker SDK is imported only where Docker is used
    from grader.sandbox.docker.engines import EngineSpec

__all__ = [
    "DEFAULT_WALL_CLOCK",
    "LocalSandbox",
    "Sandbox",
    "SandboxError",
    "batch_pool",
    "end_batch",
    "make_sandbox",
]

SANDBOXES = ("docker", "local", "inplace")


class Sandbox(Protocol):
    """What the command line needs of a sandbox (`local`, `docker`)."""

    name: str

    def describe(self) -> dict:
        """Its bounds, for the report's sandbox details ({"memory": "1024 MiB ...", ...})."""
        ...

    def run(self, req: RunRequest) -> RunOutcome:
        """Grade one submission. A submission's fault is an outcome; SandboxError means the
        sandbox itself cannot run."""
        ...

    def stop_all(self) -> None:
        """Ctrl-C: stop every run still going, with everything it started."""
        ...


def make_sandbox(
    name: str,
    wall_clock: float = DEFAULT_WALL_CLOCK,
    scratch: Path | None = None,
    docker_hosts: Sequence[EngineSpec] = (),
    notify: Callable[[Message], None] | None = None,
) -> Sandbox:
    """The sandbox called `name`; `scratch` is a host folder for its temporary files.
    `docker_hosts`: the Docker engines to spread the submissions over (default: the one of
    DOCKER_HOST, or the local socket); `notify` hears of an engine set aside."""
    if name == "local":
        return LocalSandbox(wall_clock, scratch)
    if name == "docker" and docker_hosts:
        from grader.sandbox.docker.pool import EnginePool

        return EnginePool(docker_hosts, wall_clock, scratch=scratch, notify=notify)
    if name == "docker":
        # Imported here: the docker SDK is needed only for Docker, and a student's self-check
        # in the local sandbox must start (and work) without it.
        from grader.sandbox.docker import DockerSandbox

        return DockerSandbox(wall_clock, scratch=scratch)
    if name == "inplace":
        from grader.sandbox.inplace import InPlaceSandbox

        return InPlaceSandbox(wall_clock, scratch)
    raise ValueError(f"unknown sandbox {name!r}: choose {' or '.join(map(repr, SANDBOXES))}")


def batch_pool(sandbox: Sandbox, jobs: int, count: int) -> ThreadPoolExecutor:
    """The threads grading a batch of `count` hand-ins, `jobs` at once (several engines: as
    many as all their slots, each keeping to its own). A sandbox that starts containers
    ahead of need is told how many hand-ins are coming, so as to start none too many."""
    expect = getattr(sandbox, "expect", None)
    if expect is not None:
        expect(count)
    return ThreadPoolExecutor(max_workers=getattr(sandbox, "jobs", jobs))


def end_batch(pool: ThreadPoolExecutor, sandbox: Sandbox) -> None:
    """Wait for the batch's threads, then let the sandbox remove what it started ahead."""
    pool.shutdown(wait=True, cancel_futures=True)
    close = getattr(sandbox, "close", None)
    if close is not None:
        close()
