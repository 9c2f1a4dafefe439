"""Starts a student's program under the tracer and makes sure all of it is gone afterwards."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# become_subreaper is imported from here by the harness's plugin.
from grader.contract import Message, msg, verbatim
from grader.harness import asstudent, stackdump
from grader.harness.family import descendant_pids, own_children, processes
from grader.harness.forkserver import SERVERS, ServedRun
from grader.harness.watchdog import MemoryWatchdog
from grader.proc import Limits, OutputTap, become_subreaper, freeze_and_kill  # noqa: F401

BOOT = Path(__file__).with_name("boot.py")
# The tracer's hooks: boot.py loads them from beside itself, so the two are copied together.
TRACE_HOOKS = Path(__file__).with_name("tracehooks.py")
TRACER_FILES = (BOOT, TRACE_HOOKS)
TRACE_BYTES = 4 * 1024 * 1024
SOURCE_BYTES = 1024 * 1024
FIELD_CHARS = 500


# The runs started in this harness, newest last: a failing check asks the newest still alive
# where it stands (latest_running). Dead runs are dropped as it looks.
_STARTED: list[StudentProcess] = []


def latest_running() -> StudentProcess | None:
    """The most recently started run of the student's program that is still alive."""
    _STARTED[:] = [p for p in _STARTED if p.alive()]
    return _STARTED[-1] if _STARTED else None


def _clean_event(event: dict) -> dict:
    """Keep plain values only: short strings, numbers, and short lists of them."""
    out: dict[str, object] = {}
    for key, value in list(event.items())[:20]:
        if not isinstance(key, str):
            continue
        if isinstance(value, str):
            out[key[:40]] = value[:FIELD_CHARS]
        elif value is None or isinstance(value, (bool, int, float)):
            out[key[:40]] = value
        elif isinstance(value, list) and all(isinstance(v, (str, int)) for v in value[:4]):
            out[key[:40]] = [v[:FIELD_CHARS] if isinstance(v, str) else v for v in value[:4]]
    return out


def _copy_tracer_file(source: Path, target: Path) -> None:
    """A read-only copy of `source` at `target`, made with O_EXCL | O_NOFOLLOW: a new regular
    file, never something already there. One made so before (by an earlier start in the same
    run folder) is kept when it is still a regular file of ours that nobody can write."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(target, flags, 0o444)
    except FileExistsError:
        info = os.lstat(target)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o222:
            return
        raise
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o444)  # readable by the student's uid whatever the umask
        fh.write(source.read_bytes())


# kill(): each round freezes and kills what is alive, then waits this long for it to go.
# Short, because a fork bomb's survivors are found and frozen again in the next round;
# after KILL_ROUNDS rounds (10 s at most) kill() stops trying rather than hang the harness.
KILL_ROUND_WAIT_SECONDS = 0.2
KILL_ROUNDS = 50
# How long kill() then waits for Popen to reap the run's own process. It was sent SIGKILL,
# so it is gone at once; the wait only covers a loaded machine.
REAP_WAIT_SECONDS = 5.0


@dataclass
class StudentProcess:
    """One run of the student's entry file."""

    entry: Path
    workdir: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: int | None = None
    # The interpreter the program runs with; None: the harness's own (sys.executable).
    python: str | None = None
    limits: Limits = field(default_factory=Limits)
    proc: subprocess.Popen | ServedRun | None = None
    started_at: float = 0.0
    stdout: OutputTap | None = None
    stderr: OutputTap | None = None
    trace_path: Path | None = None
    # Where the tracer's faulthandler writes the stack when the kit asks (stackdump.py).
    stack_path: Path | None = None
    # Why the kit killed the program, when it did ("memory: 600 MiB resident, limit 512
    # MiB"); "" when it did not. The death then shows as SIGKILL: this says it was the kit.
    killed_for: str = ""
    # True when the program was still running when its check ended and kill() stopped it:
    # the grader's doing, not a crash and not a limit.
    stopped_by_grader: bool = False
    watchdog: MemoryWatchdog | None = None
    # The read ends of the run's stdout and stderr (the taps read them; kill() closes them).
    _outputs: tuple = ()

    def _student_file(self, name: str) -> Path:
        """A new file in the run folder (root's) that only the student's uid may write:
        O_EXCL | O_NOFOLLOW, so never something already there."""
        path = self.workdir.parent / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if self.user is not None:
                os.fchown(fd, self.user, self.user)
        finally:
            os.close(fd)
        return path

    def start(self) -> None:
        stamp = time.monotonic_ns()
        self.trace_path = self._student_file(f"trace-{stamp}.jsonl")
        self.stack_path = self._student_file(f"stack-{stamp}.txt")
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "SG_TRACE": str(self.trace_path),
            "SG_STACK": str(self.stack_path),
            "SG_ROOT": str(self.workdir),
            "SG_PORT_ZERO": "1",
            **self.env,
        }
        user = self.user
        limits = self.limits
        asstudent.use(user)

        def preexec() -> None:
            limits.apply()
            if user is not None:
                limits.apply_processes()
                os.setgroups([])
                os.setgid(user)
                os.setuid(user)

        python = self.python or sys.executable
        argv = [str(self.entry), *self.args]
        # The threads that read the run's output and watch its memory start before the run
        # does: once it runs, it may take every process the container allows (a fork bomb),
        # and a thread is one.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self._outputs = (open(out_r, "rb", buffering=0), open(err_r, "rb", buffering=0))
        self.stdout = OutputTap(self._outputs[0])
        self.stderr = OutputTap(self._outputs[1])
        if self.limits.memory:
            self.watchdog = MemoryWatchdog(self, self.limits.memory)
            self.watchdog.start()
        self.started_at = time.monotonic()
        try:
            # Forked from this lane's fork server if it can (forkserver.py), else a fresh one.
            self.proc = SERVERS.spawn(
                python,
                argv,
                env,
                self.workdir,
                user,
                limits.rlimits(),
                limits.processes,
                out_w,
                err_w,
            ) or subprocess.Popen(
                [python, "-I", "-S", "-u", str(self._boot_copy()), *argv],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
            )
        finally:
            os.close(out_w)  # the run holds its own: the taps end when it and its children end
            os.close(err_w)
            if self.watchdog is not None:
                (self.watchdog.launched if self.proc is not None else self.watchdog.stop)()
            if self.proc is None:  # not started: nothing writes to the taps' pipes any more
                self._close_outputs()
        _STARTED.append(self)

    def _boot_copy(self) -> Path:
        """The launcher must be readable by the student's uid, the kit itself need not be:
        the tracer's files are copied into the run folder (root's) beside the submission."""
        if self.user is None:
            return BOOT
        for source in TRACER_FILES:
            _copy_tracer_file(source, self.workdir.parent / source.name)
        return self.workdir.parent / BOOT.name

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        try:
            return self.proc is not None and self.proc.poll() is None
        except RuntimeError:  # gone, its exit status lost with its fork server (forkserver.py)
            return False

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def trace(self) -> list[dict]:
        """The tracer's events. The student's process wrote them, so each is cleaned: only
        plain fields of bounded size survive (they explain; they never decide a pass)."""
        events: list[dict] = []
        if self.trace_path is None:
            return events
        try:
            fd = os.open(self.trace_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return events
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return events
            raw = fh.read(TRACE_BYTES)
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(event, dict) and isinstance(event.get("ev"), str):
                events.append(_clean_event(event))
        return events

    def _source(self, path: str) -> list[str]:
        """The lines of a file of the submission's copy; [] when it is not one. The path comes
        from the student's process: only a regular file inside the copy is read, and only
        so much of it."""
        root = os.path.realpath(self.workdir)
        target = os.path.realpath(os.path.join(root, path))
        if not target.startswith(root + os.sep):
            return []
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return []
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return []
            return fh.read(SOURCE_BYTES).decode("utf-8", errors="replace").splitlines()

    def line_of(self, site: str | None) -> str:
        """The student's source line at a trace site such as 'server.py:16', without an
        inline comment; '' when it cannot be read."""
        if not isinstance(site, str) or ":" not in site:
            return ""
        path, _, number = site.rpartition(":")
        if not number.isdigit():
            return ""
        lines = self._source(path)
        index = int(number) - 1
        if not 0 <= index < len(lines):
            return ""
        return lines[index].strip().split("  #")[0].rstrip()

    def last_site(self, path: str) -> str | None:
        """'server.py:16': the last line of code (not blank, not a comment) of a file of the
        submission, where a program that ran to its end left it; None when there is none."""
        lines = self._source(path)
        for index in range(len(lines) - 1, -1, -1):
            text = lines[index].strip()
            if text and not text.startswith("#"):
                return f"{path}:{index + 1}"
        return None

    def quote(self, site: str | None) -> Message:
        """'server.py:16 (`conn.close()`)': a trace site with the student's own code."""
        if not site:
            return msg("an unknown line")
        text = self.line_of(site)
        return verbatim(f"{site} (`{text[:80]}`)" if text else site)

    def stack_site(self) -> str | None:
        """The student's line its main thread stands at right now ('server.py:14'), asked of
        its interpreter; None when it does not answer. It names a line, never decides."""
        if not self.alive():
            return None
        return stackdump.current_site(self.pid, self.stack_path, self.workdir)

    def descendants(self) -> list[psutil.Process]:
        """Every process started by this run, orphans included (we are their subreaper)."""
        pids: list[int] = []
        if self.proc is not None and self.proc.returncode is None:
            pids = [self.proc.pid, *descendant_pids(self.proc.pid)]
        # The harness starts no process but the student's, its own lanes (lanes.py) and
        # fork servers, so every descendant of ours (or of our server) outside those that is
        # not yet accounted for is an orphan of the student's program.
        for child in own_children():
            pids += [child.pid, *descendant_pids(child.pid)]
        return processes(list(dict.fromkeys(pids)))

    def kill(self) -> None:
        """Stop every process of this run: freeze them all first, so a fork bomb cannot
        outrun us, then kill, and repeat until nothing is left."""
        if self.proc is None:
            return
        if self.watchdog is not None:
            self.watchdog.stop()
        try:
            if self.proc.poll() is None and not self.killed_for:
                self.stopped_by_grader = True
        except RuntimeError:  # gone, its status lost with its fork server: its orphans remain
            pass
        for _ in range(KILL_ROUNDS):
            # Once reaped, the pid (and group id) may belong to someone else: leave it; what
            # the run started is still found among our own descendants.
            if self.proc.returncode is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            # The run's own process is left to killpg above and to Popen: were psutil to
            # wait for it, it would reap it and Popen would then read its status as 0
            # ("exited normally") instead of SIGKILL.
            procs = [p for p in self.descendants() if p.pid not in (os.getpid(), self.proc.pid)]
            live = []
            for p in procs:
                try:
                    if p.status() != psutil.STATUS_ZOMBIE:
                        live.append(p)
                except psutil.Error:
                    pass
            if not live:
                break
            freeze_and_kill(live, timeout=KILL_ROUND_WAIT_SECONDS)
        try:
            self.proc.wait(timeout=REAP_WAIT_SECONDS)
        except (subprocess.TimeoutExpired, RuntimeError):
            pass
        self._reap_orphans()
        self._close_outputs()

    def _close_outputs(self) -> None:
        for tap in (self.stdout, self.stderr):
            if tap is not None:
                tap.join()
        for pipe in self._outputs:
            pipe.close()
        self._outputs = ()

    @staticmethod
    def _reap_orphans() -> None:
        for child in own_children():
            try:
                os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                continue
