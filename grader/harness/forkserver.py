"""Runs of the student's program forked from an interpreter started once per lane.

A grading starts the student's program a dozen times, and each start of a fresh interpreter
that loads the tracer costs some 20 ms of CPU: the largest share of a grading's CPU after
the container itself. Here the harness starts one interpreter, `boot.py --serve` with the
runs' own interpreter and flags (forkserve.py is its side), before any check; it makes one
server more per lane, and each run is forked from its lane's server, set up as Popen would
(session, limits, no new privileges, uid, environment, folder) and then going on as
`boot.py ENTRY ARGS`. The kit's own code is never in a run's memory: a server has loaded
only boot.py, tracehooks.py and forkserve.py, the files a run can read anyway.

A server is the subreaper of what its runs leave behind (family.py counts its children as
the harness's own), and relays each run's wait status through a pipe, read by `ServedRun`,
which stands in for the run's Popen. When a server cannot be had (not started, gone, or a
run it could not set up), the run is started as before, by Popen: a server is a speed-up,
never a condition of a verdict.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from grader.harness import family

# How long the harness waits for a server's answer. A server answers at once; only a run
# that it could not set up, or a starved machine, takes longer.
ANSWER_SECONDS = 10.0
# How often a run whose server is gone is looked at while waited for.
ORPHAN_POLL = 0.01
# A run whose pidfd says it ended (a zombie, or gone) has its status on its way from its
# server, which relays it once it gets a CPU: this long at most is waited for it.
RELAY_SECONDS = 10.0
FILES = ("boot.py", "tracehooks.py", "forkserve.py")
# The environment of the servers' interpreters. Of a run's environment, the interpreter reads
# only the locale as it starts (with -I, PYTHON* is ignored): a run that asks for another
# locale gets an interpreter of its own.
SERVER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
LOCALE_VARIABLES = ("LC_ALL", "LC_CTYPE", "LANG")


def _say(text: str) -> None:
    """A line in the harness's log (its stderr): the kit's own trouble, not the student's."""
    print(text, file=sys.stderr)


def _started_alike(env: dict[str, str]) -> bool:
    return all(env.get(k) == SERVER_ENV.get(k) for k in LOCALE_VARIABLES)


class ServedRun:
    """What launch.py uses of a run's Popen, for a run forked by a server: the pid and its
    exit status as the server relays it (returncode as Popen gives it). Its output goes to
    pipes of launch.py's own."""

    def __init__(self, pid: int, status_fd: int):
        self.pid = pid
        self.returncode: int | None = None
        self._status_fd = status_fd
        self._data = b""
        self._lock = threading.Lock()
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError:  # gone already (ESRCH), or a kernel without pidfds: the status tells
            self._pidfd = -1

    def poll(self) -> int | None:
        """As Popen's: None while the run lives. A run that has ended is not reaped by us but
        by its server, which then says how it ended; on a starved machine that can come well
        after the end, where Popen would have seen the end at once: once the run's pidfd says
        it has ended, its status is waited for (RELAY_SECONDS at most)."""
        with self._lock:
            if self.returncode is None and self._status_fd >= 0:
                ready, _, _ = select.select([self._status_fd, *self._ended_fd()], [], [], 0)
                if self._status_fd in ready:
                    self._read(0)
                elif ready:  # ended, its status not said yet
                    self._read(RELAY_SECONDS)
                    if self.returncode is None:  # a server that never says: as before, no wait
                        os.close(self._pidfd)
                        self._pidfd = -1
            elif self.returncode is None:
                self._read(0)
            return self.returncode

    def _ended_fd(self) -> list[int]:
        """The run's pidfd, readable once it has ended (a zombie, or gone); none if it could
        not be opened."""
        return [self._pidfd] if self._pidfd >= 0 else []

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self.returncode is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(f"run {self.pid}", timeout or 0)
                self._read(left)
            return self.returncode

    def _read(self, timeout: float | None) -> None:
        if self._status_fd < 0:  # the server is gone (see below)
            self._orphaned(timeout)
            return
        ready, _, _ = select.select([self._status_fd], [], [], timeout)
        if not ready:
            return
        chunk = os.read(self._status_fd, 64)
        self._data += chunk
        if chunk and not self._data.endswith(b"\n"):
            return
        os.close(self._status_fd)
        self._status_fd = -1
        if chunk:
            self.returncode = os.waitstatus_to_exitcode(int(self._data))
        else:
            self._orphaned(0)

    def _orphaned(self, timeout: float | None) -> None:
        """The server ended before its run did: the run is then the child of the nearest
        subreaper, the harness or its lane, which reaps it itself. Where it is not ours, or
        was reaped with its status unsaid, nobody can say how it ended: the kit's fault."""
        deadline = time.monotonic() + (timeout or 0)
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                if psutil.pid_exists(self.pid):
                    pid = 0  # not reparented yet, or to someone else: still running
                else:
                    raise RuntimeError(f"the fork server ended before run {self.pid} did") from None
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(ORPHAN_POLL)

    def __del__(self):
        for fd in (self._status_fd, self._pidfd):
            if fd >= 0:
                os.close(fd)


class _Server:
    def __init__(self, sock: socket.socket, pid: int):
        self.sock = sock
        self.pid = pid
        self.lock = threading.Lock()

    def ask(self, request: dict, fds: list[int]) -> dict:
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds)
            return self.answer()

    def answer(self) -> dict:
        """The server's answer to the request sent before (ANSWER_SECONDS at the most)."""
        self.sock.settimeout(ANSWER_SECONDS)
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the fork server is gone")
        return json.loads(data)


class Servers:
    """The harness's fork servers: [0] for the harness itself, [1 + lane] for each lane."""

    def __init__(self) -> None:
        self.servers: list[_Server | None] = []
        self.index = 0  # which one this process uses
        self.python = ""
        self.folder: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._pending: list[socket.socket] = []

    def start(self, python: str, work: Path, lanes: int) -> None:
        """Start the first server and ask it for one per lane (lanes > 1). Nothing here waits
        for the interpreter: the answers are read when a run first needs them."""
        work.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="forkserver-", dir=work))
        here = Path(__file__).parent
        for name in FILES:
            (self.folder / name).write_bytes((here / name).read_bytes())
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.python = python
        self.proc = subprocess.Popen(
            [
                python,
                "-I",
                "-S",
                "-u",
                str(self.folder / "boot.py"),
                "--serve",
                str(theirs.fileno()),
            ],
            cwd="/",
            env=SERVER_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
            start_new_session=True,
        )
        theirs.close()
        first = _Server(ours, self.proc.pid)
        family.SERVER_PIDS.add(self.proc.pid)
        self.servers = [first]
        self._pending = []
        for _ in range(lanes if lanes > 1 else 0):
            mine, lane_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            socket.send_fds(ours, [b'{"do": "server"}'], [lane_end.fileno()])
            lane_end.close()
            self._pending.append(mine)
        self._use(0)

    def ready(self) -> None:
        """Read the first server's answers about the lanes' servers (their pids must be in
        family.SERVER_PIDS before any lane is forked): this waits for it to have started."""
        pending, self._pending = self._pending, []
        for mine in pending:
            first = self.servers[0]
            try:
                if first is None:
                    raise ConnectionError("the first fork server is gone")
                answer = first.answer()
                server: _Server | None = _Server(mine, int(answer["pid"]))
                family.SERVER_PIDS.add(int(answer["pid"]))
            except (OSError, ValueError, KeyError) as exc:
                _say(f"socketgrade: a lane's fork server did not start: {exc}")
                mine.close()
                server = None
            self.servers.append(server)

    def enter_lane(self, lane: int) -> None:
        """In a lane's process: use that lane's server, and hold no other's socket."""
        for i, server in enumerate(self.servers):
            if server is not None and i != lane + 1:
                server.sock.close()
                self.servers[i] = None
        self._use(lane + 1)

    def _use(self, index: int) -> None:
        self.index = index
        server = self.servers[index] if index < len(self.servers) else None
        family.SERVING = server.pid if server is not None else None

    def spawn(
        self,
        python: str,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        user: int | None,
        rlimits: list[tuple[int, int, int]],
        nproc: int | None,
        out_w: int,
        err_w: int,
    ) -> ServedRun | None:
        """A run forked by this process's server, its stdout and stderr the write ends of the
        caller's pipes (the caller's copies stay the caller's to close); None when it must be
        started by Popen."""
        self.ready()
        server = self.servers[self.index] if self.index < len(self.servers) else None
        if server is None or python != self.python or not _started_alike(env):
            return None
        status_r, status_w = os.pipe()
        request = {
            "do": "spawn",
            "argv": argv,
            "env": env,
            "cwd": str(cwd),
            "user": user,
            "rlimits": [list(r) for r in rlimits],
            "nproc": nproc,
        }
        try:
            answer = server.ask(request, [out_w, err_w, status_w])
        except (OSError, ValueError) as exc:
            # Gone or garbled: this process's runs start by Popen from now on.
            server.sock.close()
            self.servers[self.index] = None
            answer = {"error": f"the fork server failed: {exc}"}
        finally:
            os.close(status_w)
        if "pid" not in answer:
            _say(f"socketgrade: a run starts by Popen: {answer.get('error')}")
            os.close(status_r)
            return None
        return ServedRun(int(answer["pid"]), status_r)

    def stop(self) -> None:
        """Close every socket: each server then exits by itself. Not waited for: the harness
        is ending, and what it leaves is ended with it (the container, or the local
        sandbox's clean-up of everything the harness started)."""
        for server in self.servers:
            if server is not None:
                server.sock.close()
        self.servers = []
        family.SERVING = None
        if self.proc is not None:
            self.proc.poll()
            self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


SERVERS = Servers()
