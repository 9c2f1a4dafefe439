"""The Docker sandbox: one fresh, hardened container per submission, removed whatever happens."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import requests

from grader import kitpaths
from grader.contract import CHECK_LANES, Message, checks_begun, msg
from grader.models import RunOutcome, RunRequest
from grader.sandbox.common import (
    DEFAULT_WALL_CLOCK,
    SandboxError,
    how_it_ended,
    no_report,
    read_report,
    wall_clock_stop,
)
from grader.sandbox.docker.container import (
    DEFAULT_LIMITS,
    OWNER_LABEL,
    ROLE,
    ROLE_LABEL,
    DockerLimits,
    as_popen,
    bounded_log,
    create_kwargs,
    describe,
    for_engine,
    pid_alive,
)
from grader.sandbox.docker.image import (
    IMAGE,
    connect,
    default_host,
    image_ids,
    require_image,
    short,
)
from grader.sandbox.docker.transfer import (
    REPORT,
    STAGE_BYTES,
    fetch_report,
    fill_volumes,
    our_volumes,
    remove_volumes,
    sees_host_files,
    stage_submission,
)
from grader.sandbox.docker.warm import WarmPool

# The engine holds a wait request open until the container stops, and its read time-out is
# our wall clock. The time-out is rounded up to whole seconds, at least this many: a wait
# never ends before the deadline, and its last moment is not spent in a flurry of requests.
WAIT_SLICE_SECONDS = 1
# A wait that timed out this close to the deadline is the wall clock, not a sign that the
# engine is gone: the engine is pinged only when a wait ends earlier than that.
PING_MARGIN_SECONDS = 0.5


class EngineError(SandboxError):
    """The engine failed (gone, dying, refusing): the infrastructure's fault, never the
    submission's. Another engine may grade the same submission."""


class DockerSandbox:
    """Each submission in its own fresh container: no network but loopback, cgroup limits,
    read-only root with a small tmpfs, almost no capabilities, no-new-privileges. The
    student's program runs in it as an unprivileged uid; the wall clock is kept from here."""

    name = "docker"
    # Checks at once, each as its own uid: 3 of the image's CHECK_LANES suit one core (README)
    lanes = min(3, CHECK_LANES)
    fork_server = True  # runs forked from a server (grader/harness/forkserver.py)
    warm_ahead = True  # containers started ahead of need (warm.py)

    def __init__(
        self,
        wall_clock: float = DEFAULT_WALL_CLOCK,
        scratch: str | Path | None = None,
        limits: DockerLimits = DEFAULT_LIMITS,
        image: str = IMAGE,
        client: docker.DockerClient | None = None,
        engine: str = "",
        engine_faults_raise: bool = False,
        copy_files: bool | None = None,
    ):
        """`client` and `engine` (its URL, named in each report): the engine to run on,
        default the local one. `engine_faults_raise`: an engine refusing a container raises
        EngineError, where alone it is this submission's grader error. `copy_files`: send
        the files through the engine's API into volumes rather than bind-mount them (default:
        when the engine cannot see this machine's folders, as one on another machine)."""
        self.wall_clock = wall_clock
        self.scratch = Path(scratch) if scratch is not None else None
        self.image = image
        self.client = client or connect()
        self.limits = for_engine(limits, self.client.info())
        self.engine = engine or default_host()
        self.engine_faults_raise = engine_faults_raise
        # Read once: every report of this batch names the image it was graded in.
        self.image_id, self.image_digest = image_ids(require_image(self.client, image))
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._running: set[str] = set()  # container names, registered before create()
        self._stopped: set[str] = set()  # names stop_all removed under a running run()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._remove_orphans()
        kitpaths.precompile(kitpaths.PACKAGE)  # every container imports it: compiled once
        self.copy_files = not self._sees_our_files() if copy_files is None else copy_files
        # Containers started ahead of need (warm.py), where the engine sees our folders.
        self.warm = WarmPool(self) if self.warm_ahead and not self.copy_files else None

    def _sees_our_files(self) -> bool:
        # Beside the runs' folders (in the nearest folder of theirs that exists yet).
        near = self.scratch
        while near is not None and not near.exists():
            near = near.parent
        probe = Path(tempfile.mkdtemp(prefix="socketgrade-probe-", dir=near))
        try:
            return sees_host_files(self.client, self.image, [kitpaths.PACKAGE, probe])
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EngineError(
                msg(
                    "the Docker engine at {url} failed: {error}",
                    url=self.engine,
                    error=short(str(exc)),
                )
            ) from exc
        finally:
            probe.rmdir()

    def describe(self) -> dict:
        return describe(self.limits, self.image, self.wall_clock)

    def create_kwargs(
        self,
        req: RunRequest,
        name: str,
        submission: Path,
        out: Path,
        volumes: dict[str, str] | None = None,
    ) -> dict:
        """Everything containers.create() is given (see container.create_kwargs)."""
        return create_kwargs(
            *(req, name, submission, out),
            image=self.image,
            limits=self.limits,
            owner=self.owner,
            volumes=volumes,
            lanes=self.lanes,
            fork_server=self.fork_server,
        )

    def run(self, req: RunRequest) -> RunOutcome:
        """Grade one submission; the outcome names the image it ran in."""
        outcome = self._run(req)
        return dataclasses.replace(
            outcome, image_id=self.image_id, image_digest=self.image_digest, engine=self.engine
        )

    def _run(self, req: RunRequest) -> RunOutcome:
        start = time.monotonic()
        bound = min(req.wall_clock, self.wall_clock)
        limits = self.describe()
        name = f"socketgrade-{os.getpid()}-{next(self._seq)}-{uuid.uuid4().hex[:8]}"
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        pool = self.warm
        warm = pool.take(req) if pool is not None else None
        cold = pool if warm is None else None  # to be told once our container is started
        if warm is not None:
            name, scratch = warm.name, warm.scratch
        else:
            try:
                scratch = Path(tempfile.mkdtemp(prefix="socketgrade-docker-", dir=self.scratch))
            except BaseException:
                if cold is not None:
                    cold.cold_started()
                raise
        timed_out, code, oom, log, stopped, data = False, None, False, "", False, None
        begun: Path | None = None  # a cold start's CHECKS_BEGUN file (warm.py)
        volumes: dict[str, str] = {}
        try:
            out = scratch / "out"
            # World-writable, inside our private 0700 folder: the container's root may not
            # be root on the host (rootless engines, userns-remap), and when we are not root
            # it must still be able to write here.
            out.mkdir(exist_ok=True)
            out.chmod(0o777)
            submission = warm.hand_in if warm is not None else scratch / "submission"
            if req.submission.folder is None:
                submission.mkdir()
                skipped = []
            else:
                try:
                    skipped = stage_submission(req.submission.folder, submission)
                except OSError as exc:
                    return RunOutcome(
                        None,
                        time.monotonic() - start,
                        self.name,
                        limits,
                        error=msg(
                            "the submission folder {folder} could not be read: {error}",
                            folder=str(req.submission.folder),
                            error=str(exc),
                        ),
                        error_fault="infrastructure",
                    )
            # Registered before create(): Ctrl-C between the engine creating it and us
            # hearing back must still find it.
            self.register(name)
            try:
                if warm is not None:
                    container = warm.container
                    warm.go(self.create_kwargs(req, name, submission, out)["command"])
                elif self.copy_files:
                    labels = {ROLE_LABEL: ROLE, OWNER_LABEL: self.owner}
                    folder = req.assignment.folder
                    volumes = fill_volumes(
                        self.client, self.image, name, labels, folder, submission
                    )
                if warm is None:
                    kwargs = self.create_kwargs(req, name, submission, out, volumes or None)
                    container = self.client.containers.create(**kwargs)
                    container.start()
                    if cold is not None:
                        begun = checks_begun(out / REPORT)
                        cold.cold_started(begun)
                        cold = None
                timed_out, code = self._wait(container, start + bound)
                if timed_out:
                    self._kill(container)
                log = bounded_log(container.logs(stdout=True, stderr=True))
                if volumes and not timed_out:
                    fetch_report(container, out)
                data = None if timed_out else read_report(out / REPORT)
                if data is None and not timed_out:  # why there is none: asked only then
                    container.reload()
                    oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
                if skipped:
                    log = (
                        f"not given to the grader (links, special files, over "
                        f"{STAGE_BYTES >> 20} MiB): {', '.join(skipped[:20])}\n" + log
                    )
            except docker.errors.ImageNotFound as exc:
                raise EngineError(
                    msg(
                        "the grading image {image} is missing: run `grade sandbox build`",
                        image=self.image,
                    )
                ) from exc
            except (requests.exceptions.ConnectionError, docker.errors.APIError) as exc:
                with self._lock:
                    stopped = name in self._stopped
                if not stopped:  # else stop_all removed it under us: said below
                    if isinstance(exc, docker.errors.APIError) and exc.is_client_error():
                        what = (
                            msg("the grading container vanished")
                            if isinstance(exc, docker.errors.NotFound)
                            else msg("the Docker engine refused the grading container")
                        )
                        error = msg("{what}: {error}", what=what, error=short(str(exc), 300))
                        if self.engine_faults_raise:
                            raise EngineError(error) from exc
                        return RunOutcome(
                            None,
                            time.monotonic() - start,
                            self.name,
                            limits,
                            error=error,
                            error_fault="infrastructure",
                        )
                    raise EngineError(
                        msg(
                            "the Docker engine stopped answering while grading {id} "
                            "({error}): check dockerd, then grade again",
                            id=req.submission.id,
                            error=short(str(exc)),
                        )
                    ) from exc
        finally:
            if cold is not None:
                cold.cold_started()
            if begun is not None and pool is not None:
                pool.cold_over(begun)
            self._remove(name)
            remove_volumes(self.client, volumes.values())
            with self._lock:
                stopped = name in self._stopped
                self._stopped.discard(name)
            shutil.rmtree(scratch, ignore_errors=True)
        seconds = time.monotonic() - start

        def without_report(error: Message, fault: str) -> RunOutcome:
            return RunOutcome(
                None, seconds, self.name, limits, log=log, error=error, error_fault=fault
            )

        if stopped:
            return without_report(
                msg("grading was interrupted (its container was removed)"), "infrastructure"
            )
        if timed_out:
            return without_report(wall_clock_stop(seconds), "submission")
        if data is None:
            if oom:
                return without_report(
                    msg(
                        "the container ran out of memory ({mib} MiB) and the harness ended "
                        "without a report",
                        mib=self.limits.memory_mib,
                    ),
                    "submission",
                )
            return without_report(no_report(how_it_ended(as_popen(code))), "infrastructure")
        return RunOutcome(data, seconds, self.name, limits, log=log)

    def _wait(self, container, deadline: float) -> tuple[bool, int | None]:
        """(timed out, exit code). The engine holds the wait request open until the
        container stops; a read time-out on it is our wall clock."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True, None
            try:
                result = container.wait(timeout=max(WAIT_SLICE_SECONDS, math.ceil(remaining)))
                return False, result.get("StatusCode")
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                # A time-out shows as either, depending on the transport; an engine that
                # is really gone fails the next call.
                if time.monotonic() < deadline - PING_MARGIN_SECONDS:
                    self.client.ping()

    def _kill(self, container) -> None:
        try:
            container.kill()
        except docker.errors.APIError:
            pass  # already stopped

    def register(self, name: str) -> None:
        with self._lock:
            self._running.add(name)

    def expect(self, count: int) -> None:
        if self.warm is not None:
            self.warm.expect(count)

    def close(self) -> None:
        """The batch is over: the warm containers no run took are removed."""
        if self.warm is not None:
            self.warm.close()

    def _remove(self, name: str) -> None:
        try:
            self.client.api.remove_container(name, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException):
            # "removal already in progress" (stop_all raced us) or an engine gone away;
            # stop_all and the next DockerSandbox remove what is left.
            pass
        finally:
            with self._lock:
                self._running.discard(name)

    forget = _remove  # a container of ours no run will wait for (a warm one)

    def _ours(self, owner: str | None = None) -> list:
        labels = [f"{ROLE_LABEL}={ROLE}"]
        if owner:
            labels.append(f"{OWNER_LABEL}={owner}")
        return self.client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)

    def _remove_orphans(self) -> None:
        """Containers (and volumes) left by a grader on this host that died without
        cleaning up."""
        host = socket.gethostname()

        def dead(owner: str) -> bool:
            o_host, _, o_pid = owner.rpartition(":")
            return o_host == host and o_pid.isdigit() and not pid_alive(int(o_pid))

        try:
            for c in self._ours():
                if dead((c.labels or {}).get(OWNER_LABEL, "")):
                    self._remove(c.name)
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass
        remove_volumes(self.client, our_volumes(self.client, None, dead))

    def stop_all(self) -> None:
        """Ctrl-C: remove every container this process started (a run waiting on one
        returns at once and reports nothing)."""
        self.close()
        with self._lock:
            names = set(self._running)
            self._stopped |= names
        try:
            names |= {c.name for c in self._ours(self.owner)}
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass
        for name in names:
            self._remove(name)
        remove_volumes(self.client, our_volumes(self.client, self.owner))
