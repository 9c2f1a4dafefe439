"""The local sandbox: the harness as a subprocess of this machine, with rlimits; no isolation."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader import kitpaths
from grader.contract import CHECK_LANES
from grader.models import RunOutcome, RunRequest
from grader.proc import Limits, OutputTap, become_subreaper, kill_tree
from grader.sandbox.common import (
    DEFAULT_WALL_CLOCK,
    harness_args,
    how_it_ended,
    no_report,
    read_report,
    wall_clock_stop,
)


class LocalSandbox:
    """A subprocess on this machine: rlimits and a process group, killed as a whole. It does
    not isolate: the student's code runs as you, with your files and network."""

    name = "local"
    # The umask the harness runs with (-1: this process's own).
    harness_umask = -1
    # Checks at once (grader.contract.CHECK_LANES). Here every lane's program runs as you:
    # nothing isolates them from each other, as nothing isolates them from you.
    lanes = CHECK_LANES
    fork_server = True  # runs forked from a server (grader/harness/forkserver.py)

    def __init__(self, wall_clock: float = DEFAULT_WALL_CLOCK, scratch: Path | None = None):
        self.wall_clock = wall_clock
        self.scratch = scratch
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        # Orphans of a harness we had to kill come to us, so they can be killed too.
        become_subreaper()
        kitpaths.precompile(kitpaths.PACKAGE)

    def describe(self) -> dict:
        lim = Limits()
        return {
            "sandbox": "local (no isolation: runs as you, with your files and network)",
            "memory": f"{lim.memory // 2**20} MiB resident for the program and all it "
            f"started, polled by the kit, which kills it past that (address "
            f"space is not limited)",
            "file size": f"{lim.file_size // 2**20} MiB",
            "open files": str(lim.open_files),
            "CPU time": f"{lim.cpu_seconds} s",
            "wall clock": f"{self.wall_clock:g} s per submission",
        }

    def student_uid(self) -> int | None:
        """The uid the harness starts the student's program as; None: as the harness itself."""
        return None

    def student_python(self) -> str | None:
        """The interpreter the student's program runs with; None: the harness's own."""
        return None

    def harness_env(self) -> dict[str, str]:
        """What the harness's environment has beside this process's own."""
        return {}

    def prepare_run_folder(self, folder: Path) -> None:
        """Called on each run's temporary folder before the harness starts in it."""

    def checks_for(self, req: RunRequest, folder: Path) -> str:
        """The checks file the harness is given, as an absolute path; `folder` is the run's."""
        return str(req.assignment.checks_file.absolute())

    def after_run(self) -> None:
        """Called after each run, once its harness and everything it started are killed."""

    def run(self, req: RunRequest) -> RunOutcome:
        start = time.monotonic()
        # The harness runs in its own folder: every path it is given must be absolute.
        where = self.scratch.absolute() if self.scratch is not None else None
        if where is not None:
            where.mkdir(parents=True, exist_ok=True)
        folder = req.submission.folder
        with tempfile.TemporaryDirectory(prefix="run-", dir=where) as scratch:
            self.prepare_run_folder(Path(scratch))
            report = Path(scratch).absolute() / "report.json"
            # -P: the current folder is not put on the harness's import path.
            cmd = [
                sys.executable,
                "-P",
                *harness_args(
                    req,
                    self.checks_for(req, Path(scratch)),
                    str(folder.absolute() if folder is not None else folder),
                    str(report),
                    str(report.parent / "work"),
                    user=self.student_uid(),
                    python=self.student_python(),
                    lanes=self.lanes,
                    fork_server=self.fork_server,
                ),
            ]
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **self.harness_env()}
            # The harness must import this very `grader`, not one a PYTHONPATH points at.
            env.pop("PYTHONPATH", None)
            if (pythonpath := kitpaths.harness_pythonpath()) is not None:
                env["PYTHONPATH"] = pythonpath
            proc = subprocess.Popen(
                cmd,
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=self.harness_umask,
            )
            tap = OutputTap(proc.stdout)
            with self._lock:
                self._running.add(proc)
            timed_out = False
            try:
                proc.wait(timeout=min(req.wall_clock, self.wall_clock))
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                kill_tree(proc.pid)
                proc.wait()
                tap.join()
                if proc.stdout is not None:
                    proc.stdout.close()
                with self._lock:
                    self._running.discard(proc)
                self.after_run()
            data = None if timed_out else read_report(report)
        seconds = time.monotonic() - start
        limits = self.describe()
        if timed_out:
            return RunOutcome(
                None,
                seconds,
                self.name,
                limits,
                log=tap.text(),
                error=wall_clock_stop(seconds),
                error_fault="submission",
            )
        if data is None:
            return RunOutcome(
                None,
                seconds,
                self.name,
                limits,
                log=tap.text(),
                error=no_report(how_it_ended(proc.returncode)),
                error_fault="infrastructure",
            )
        return RunOutcome(data, seconds, self.name, limits, log=tap.text())

    def stop_all(self) -> None:
        """Ctrl-C: kill every harness still running, with everything it started."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            kill_tree(proc.pid)
