"""Grading containers started ahead of need, while the previous ones run.

A cold grading pays, before its first check, for the engine to create and start a container
and for the harness to load the kit: some 0.4 s of each hand-in's wait on a small machine,
while the machine has CPU to spare. A warm container is one started for the next hand-in of
the same assignment while the current ones are graded: fresh, unused, with its harness
waiting (grader/harness/run.py, `--wait-request`). Taken by a run, it gets the hand-in in its
own input folder and the harness's command line in a request file; the run goes on as a cold
one would (one fresh container each, the same hardening, mounts and limits). Only where the
engine sees this machine's folders (bind mounts); never more than the hand-ins still to come
need (`expect`); what is left at the end is removed (`close`).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.contract import HarnessArgs
from grader.models import RunRequest
from grader.sandbox.docker.container import OUT_IN, SUBMISSION_IN

REQUEST = "request.json"
# A container started ahead waits this long at most for the cold ones under way (the first
# hand-ins of a batch) to be started and their harnesses to have begun their checks (their
# CHECKS_BEGUN file) before it starts too: all at once, each starts slower.
COLD_FIRST = 5.0
# How often a container to be started ahead looks for those files meanwhile.
BEGUN_LOOK = 0.02
# Inside a warm container's input folder, the hand-in's own folder (staged when taken).
HAND_IN = "hand-in"
WAIT_COMMAND = ["-m", "grader.harness.run", "--wait-request", f"{OUT_IN}/{REQUEST}"]


def _checks_file(command: list[str]) -> list[str]:
    """[the checks file] of a harness command line, for the warm harness to load what those
    checks import of the kit; [] if it names none."""
    try:
        return [command[command.index("--checks-file") + 1]]
    except (ValueError, IndexError):
        return []


def _begun(path: Path) -> bool:
    """Whether that harness said its checks began; a file that cannot be looked at is taken
    as said (this only orders starts)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


@dataclass
class Warm:
    """One started container whose harness waits for its request."""

    name: str
    scratch: Path  # out/ and in/ (mounted at OUT_IN and SUBMISSION_IN)
    container: Any

    @property
    def out(self) -> Path:
        return self.scratch / "out"

    @property
    def hand_in(self) -> Path:
        """Where the hand-in is staged (created by the staging)."""
        return self.scratch / "in" / HAND_IN

    def go(self, command: list[str]) -> None:
        """Give the waiting harness the command line a cold container would have run, the
        hand-in being in its own folder of the input (written whole, then renamed)."""
        args = HarnessArgs.from_argv(command)
        args = dataclasses.replace(args, submission=f"{SUBMISSION_IN}/{HAND_IN}")
        tmp = self.out / f".{REQUEST}.tmp"
        tmp.write_text(json.dumps({"argv": args.to_argv()}), encoding="utf-8")
        os.chmod(tmp, 0o644)
        tmp.replace(self.out / REQUEST)


class WarmPool:
    """Warm containers by assignment, started in the background for the runs to come."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)
        self._ready: dict[str, list[Warm]] = {}
        self._starting = 0
        self._cold = 0  # runs that found none ready and are starting their own
        self._loading: set[Path] = set()  # their CHECKS_BEGUN files, once started
        self._expected: int | None = None  # hand-ins still to come; None: not said
        self._closed = False
        atexit.register(self.close)  # a batch that never said it was over

    def expect(self, count: int) -> None:
        """This many hand-ins are still to be graded: no more are started than they need."""
        with self._lock:
            self._expected = count

    def take(self, req: RunRequest) -> Warm | None:
        """A warm container for this request's assignment, or None: a cold start then, and
        the caller says `cold_started(begun)` once its container is started (or will not be),
        and `cold_over(begun)` once its run is over. Another one is started for the run
        after it."""
        key = str(req.assignment.folder.resolve())
        with self._lock:
            ready = self._ready.get(key, [])
            warm = ready.pop(0) if ready else None
            if warm is None:
                self._cold += 1
            if self._expected is not None:
                self._expected = max(0, self._expected - 1)
            # Only for hand-ins said to be coming: a run on its own leaves nothing behind.
            want = (
                not self._closed
                and self._expected is not None
                and self._expected > len(ready) + self._starting
            )
            if want:
                self._starting += 1
        if want:
            try:
                threading.Thread(target=self._start, args=(req, key), daemon=True).start()
            except BaseException:
                with self._lock:
                    self._starting -= 1
                if warm is None:
                    self.cold_started()
                raise
        return warm

    def cold_started(self, begun: Path | None = None) -> None:
        """A run that took none has started its own container (or gave up). `begun`: the
        file its harness creates once its checks begin (grader.contract.checks_begun);
        containers ahead wait for it too, until `cold_over(begun)`."""
        with self._lock:
            self._cold = max(0, self._cold - 1)
            if begun is not None:
                self._loading.add(begun)
            self._turn.notify_all()

    def cold_over(self, begun: Path) -> None:
        """That run is over, whether its harness said its checks began or not."""
        with self._lock:
            self._loading.discard(begun)
            self._turn.notify_all()

    def _wait_for_cold(self) -> None:
        """Until the cold starts under way are started and their checks have begun, the pool
        is closed, or COLD_FIRST has passed (with the lock held)."""
        deadline = time.monotonic() + COLD_FIRST
        while not self._closed:
            self._loading = {path for path in self._loading if not _begun(path)}
            left = deadline - time.monotonic()
            if (self._cold == 0 and not self._loading) or left <= 0:
                return
            self._turn.wait(min(left, BEGUN_LOOK) if self._loading else left)

    def _start(self, req: RunRequest, key: str) -> None:
        with self._lock:  # after the cold starts under way: the hand-ins waiting for them
            self._wait_for_cold()
            if self._closed:
                self._starting -= 1
                return
        sandbox = self.sandbox
        name = f"socketgrade-{os.getpid()}-w{uuid.uuid4().hex[:10]}"
        scratch = None
        warm = None
        try:
            scratch = Path(tempfile.mkdtemp(prefix="socketgrade-docker-", dir=sandbox.scratch))
            (scratch / "in").mkdir()
            out = scratch / "out"
            out.mkdir()
            out.chmod(0o777)  # as a cold run's (see runner.py)
            sandbox.register(name)
            kwargs = sandbox.create_kwargs(req, name, scratch / "in", out)
            kwargs["command"] = [*WAIT_COMMAND, *_checks_file(kwargs["command"])]
            kwargs["labels"]["org.socketgrade.submission"] = "(warm: none yet)"
            container = sandbox.client.containers.create(**kwargs)
            container.start()
            warm = Warm(name, scratch, container)
        except Exception:  # a warm start is a speed-up: the run that needs it starts cold
            sandbox.forget(name)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        with self._lock:
            self._starting -= 1
            if warm is not None and not self._closed:
                self._ready.setdefault(key, []).append(warm)
                warm = None
        if warm is not None:  # closed meanwhile
            sandbox.forget(warm.name)
            shutil.rmtree(warm.scratch, ignore_errors=True)

    def close(self) -> None:
        """Remove the warm containers no run took."""
        with self._lock:
            self._closed = True
            self._turn.notify_all()
            left = [w for ready in self._ready.values() for w in ready]
            self._ready.clear()
        for warm in left:
            self.sandbox.forget(warm.name)
            shutil.rmtree(warm.scratch, ignore_errors=True)
