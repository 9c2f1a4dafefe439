"""The kit's pytest plugin: the fixtures every assignment's checks share."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from grader.harness import procobs
from grader.harness.clients import Client, Story
from grader.harness.launch import StudentProcess, become_subreaper

START_TIMEOUT = 10.0        # a server must listen within this bound
OUTPUT_IN_REPORT = 6000     # characters of the server's output kept per check
POLL = 0.02                 # between two looks at the kernel: cheap, and far below deadlines
# After the server read a message, how much CPU time of its own it may spend before a
# reply that has not come is taken as not coming. A loop that replies does so within
# microseconds of CPU; counting its CPU time, not wall-clock time, means a starved sandbox
# makes us wait longer rather than judge early.
SETTLE_CPU = 0.1


def fail(reason: str):
    __tracebackhide__ = True
    pytest.fail(reason, pytrace=False)


def pytest_addoption(parser):
    group = parser.getgroup("socketgrade")
    group.addoption("--sg-submission", help="the submission folder")
    group.addoption("--sg-entry", default="server.py", help="entry file inside it")
    group.addoption("--sg-work", help="scratch folder for copies of the submission")
    group.addoption("--sg-user", type=int, default=None,
                    help="uid (and gid) the student's code runs as")
    group.addoption("--sg-checks", default="", help="comma-separated check ids to run")
    group.addoption("--sg-entry-problem", default="",
                    help="why no entry file could be chosen (the runs check reports it)")


def pytest_configure(config):
    config._sg_start_failure = None
    config._sg_runs = 0
    become_subreaper()


def check_id(item) -> str:
    name = getattr(item, "originalname", None) or item.name
    return name[5:] if name.startswith("test_") else name


def pytest_collection_modifyitems(config, items):
    wanted = [c for c in config.getoption("--sg-checks").split(",") if c]
    if not wanted:
        return
    keep, drop = [], []
    for item in items:
        (keep if check_id(item) in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def story(json_metadata):
    s = Story()
    yield s
    json_metadata["story"] = s.to_json()


class Submission:
    """Where the submission is and how its copies are made."""

    def __init__(self, config):
        self.source = Path(config.getoption("--sg-submission") or ".").resolve()
        self.entry = config.getoption("--sg-entry")
        self.problem = config.getoption("--sg-entry-problem")
        work = config.getoption("--sg-work")
        self.work = Path(work).resolve() if work else Path(os.environ.get("TMPDIR", "/tmp"))
        self.user = config.getoption("--sg-user")
        self.config = config

    def fresh_copy(self) -> Path:
        """Each run gets its own copy: what one run writes cannot affect the next."""
        self.config._sg_runs += 1
        self.work.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"run-{self.config._sg_runs}-", dir=self.work))
        target = run_dir / "sub"
        # Links are left out: copying as root, following one would hand the student what it
        # points to (the checks, say). Sockets and FIFOs cannot be copied: left out too.
        shutil.copytree(self.source, target, ignore=_not_plain)
        if self.user is not None:
            # The run folder stays root's (traversable, not listable nor writable): nothing
            # the student's code does can plant a link where the harness writes as root.
            run_dir.chmod(0o711)
            for path in [target, *target.rglob("*")]:
                os.lchown(path, self.user, self.user)
        return target


def _not_plain(folder: str, names: list[str]) -> list[str]:
    """What a copy leaves out: links, sockets, FIFOs, devices: only files and folders go."""
    out = []
    for name in names:
        path = os.path.join(folder, name)
        if os.path.islink(path) or not (os.path.isfile(path) or os.path.isdir(path)):
            out.append(name)
    return out


@pytest.fixture(scope="session")
def submission(request) -> Submission:
    return Submission(request.config)


def _bounded(text: str) -> str:
    if len(text) <= OUTPUT_IN_REPORT:
        return text
    half = OUTPUT_IN_REPORT // 2
    return text[:half] + f"\n[... {len(text) - 2 * half} characters not shown ...]\n" + text[-half:]


def describe_death(proc: StudentProcess) -> str:
    """One sentence on how the student's program ended, from its exit status and stderr."""
    code = proc.returncode()
    crash = next((e for e in reversed(proc.trace()) if e["ev"] == "crash"), None)
    stderr = proc.stderr.text().strip() if proc.stderr else ""
    last = stderr.splitlines()[-1] if stderr else ""
    if proc.killed_for.startswith("memory"):
        # The kit's own watchdog killed it: say so, with the figures, rather than guess.
        how = f"was killed by the kit for using too much memory ({proc.killed_for[8:]})"
    elif code is not None and code < 0:
        how = f"was killed by signal {-code}"
        if -code == signal.SIGXFSZ:
            how += " (SIGXFSZ: it wrote more than the file-size limit)"
        elif -code == signal.SIGKILL:
            how += " (SIGKILL: most often the memory limit)"
    else:
        how = f"exited with code {code}"
    if crash:
        where = f" at {crash['at']}" if isinstance(crash.get("at"), str) else ""
        return (f"the program {how}: {crash.get('type', 'an exception')}: "
                f"{crash.get('message', '')}{where}")
    if last:
        return f"the program {how}: {last[:300]}"
    return f"the program {how}"


@dataclass
class Reply:
    """What came of one message a kit client sent: the bytes that came back (whatever they
    are: their content is `echo`'s business alone), how waiting ended, and whether the server
    read the whole message (its socket's receive queue drained)."""
    client: Client
    sent: bytes
    got: bytearray = field(default_factory=bytearray)
    end: str | None = None    # complete | closed | reset | quiet | timeout
    read: bool = False
    accepted: bool = False

    @property
    def served(self) -> bool:
        """Any reply arrived, or the server read the message."""
        return bool(self.got) or self.read

    def pull(self) -> bool:
        """Take what arrived; True once no more is awaited."""
        if self.end is None:
            end = self.client.pull(self.got, len(self.sent))
            if len(self.got) >= len(self.sent):
                self.end = "complete"
            elif end:
                self.end = end
                # An orderly close (FIN, not RST) after the kernel acknowledged the whole
                # message means the server read it: closing over unread bytes sends RST.
                if end == "closed" and self.client.unacked() == 0:
                    self.read = True
        return self.end is not None

    def sentence(self, timeout: float) -> str:
        """Why this message was not served, for a report."""
        who, n = f"client {self.client.name}", len(self.sent)
        if self.end in ("closed", "reset"):
            how = "closed" if self.end == "closed" else "reset"
            return (f"{who} sent {n} bytes; the server {how} the connection without reading "
                    f"them or replying")
        where = "" if self.accepted else " (the server never accepted the connection)"
        return (f"{who} sent {n} bytes; in {timeout:g} s no reply came and the server did not "
                f"read them{where}")

    def told(self) -> str:
        """What the client saw, in words."""
        who = f"client {self.client.name}"
        if self.got:
            return f"{who} got a reply ({len(self.got)} bytes)"
        if self.read:
            return f"{who}'s message was read by the server (no reply came)"
        return f"{who} was not served"


class Server:
    """A started student server that listens, with the means to look at it."""

    def __init__(self, proc: StudentProcess, story: Story):
        self.proc = proc
        self.story = story
        self.clients: list[Client] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.listen_fd = -1
        self.requested_port = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, name: str) -> Client:
        c = Client(self.story, name, (self.host, self.port))
        self.clients.append(c)
        return c

    def connect(self, name: str, quiet: bool = False) -> Client:
        c = self.client(name)
        if not c.connect(quiet=quiet):
            death = self.died_within(1.0)
            if death:
                fail(f"client {name} could not connect: {death}")
            fail(f"client {name} could not connect to the server on port {self.port}")
        return c

    def died_within(self, seconds: float) -> str | None:
        """When something went wrong, give the server a moment to finish dying: how it died,
        or None if it is still alive after `seconds`."""
        self.wait_until(lambda: not self.alive(), seconds)
        return None if self.alive() else describe_death(self.proc)

    def snapshot(self) -> procobs.Snapshot:
        return procobs.snapshot(self.pid)

    def alive(self) -> bool:
        return self.proc.alive()

    def require_alive(self, context: str) -> None:
        """Fail with the crash explanation when the server has died."""
        __tracebackhide__ = True
        if not self.proc.alive():
            reason = describe_death(self.proc)
            self.story.saw(f"the server is gone: {reason}")
            fail(f"the server died after {context}: {reason}")

    def cpu(self, window: float) -> procobs.CpuWindow:
        measured = procobs.measure_cpu(self.pid, window)
        if measured is None:
            self.require_alive("an observation of its CPU time")
            raise RuntimeError("the server's CPU time could not be read from /proc")
        return measured

    def wait_until(self, predicate, timeout: float, interval: float = 0.02) -> bool:
        """Poll `predicate` until it holds or the deadline passes (for what should happen)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline or not self.proc.alive():
                return bool(predicate())
            time.sleep(interval)

    def server_fd(self, client: Client, snap: procobs.Snapshot | None = None) -> int | None:
        """The server's descriptor for this client's connection, once it accepted it."""
        port = client.local_port
        if port is None:
            return None
        if snap is not None:
            conn = snap.by_remote_port(port)
            return conn.fd if conn else None
        sock = self.socket_of(client)
        return sock.fd if sock else None

    def sockets(self) -> list[procobs.TcpSocket]:
        return procobs.tcp_sockets(self.pid)

    def socket_of(self, client: Client,
                  socks: list[procobs.TcpSocket] | None = None) -> procobs.TcpSocket | None:
        """The server's end of this client's connection, from its fd table and the kernel's
        TCP table: present once accepted, with what the server has not read yet."""
        port = client.local_port
        if port is None:
            return None
        for sock in (self.sockets() if socks is None else socks):
            if sock.state != "LISTEN" and sock.remote and sock.remote[1] == port:
                return sock
        return None

    def activity(self) -> procobs.Activity | None:
        """Whether the server (and anything it started) is asleep, and its CPU time so far."""
        pids = [self.pid]
        try:
            # Its own tree only: other runs of the same check are our children too.
            pids += [p.pid for p in psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            pass
        return procobs.activity(pids)

    def blocked_on(self, names: dict[int, str] | None = None) -> str:
        """Where the server's main thread waits, in words: 'blocked in recvfrom() on
        client A's connection (fd 5)'. `names` maps fds to client names."""
        known = {self.listen_fd: "the listening socket"}
        known.update({fd: f"{name}'s connection" for fd, name in (names or {}).items()})
        return procobs.describe_wait(self.pid, known)

    def fd_names(self) -> dict[int, str]:
        snap = self.snapshot()
        out = {}
        for c in self.clients:
            fd = self.server_fd(c, snap)
            if fd is not None:
                out[fd] = f"client {c.name}"
        return out

    def note_read(self, reply: Reply,
                  socks: list[procobs.TcpSocket]) -> tuple[procobs.TcpSocket | None, bool]:
        """Mark the reply accepted and read as the kernel shows them at this look (the
        server's end of the connection present; its receive queue drained, all our bytes
        acknowledged). Returns the server's end (or None) and whether this look showed it
        read."""
        sock = self.socket_of(reply.client, socks)
        reply.accepted = reply.accepted or sock is not None
        done = sock is not None and sock.rx_queue == 0 and reply.client.unacked() == 0
        reply.read = reply.read or done
        return sock, done

    def await_replies(self, replies: list[Reply], timeout: float, on_look=None) -> list[Reply]:
        """Wait (with a deadline) until each message is answered: its reply complete (as
        many bytes as were sent), the connection ended, or the server read it and then
        provably had nothing more to say: it sent nothing still queued, and it is asleep
        with no CPU used between two looks, or it spent SETTLE_CPU of its own CPU time.
        Then nothing is left unread or still coming, so a client may close in order (FIN,
        not the RST that closing over unread bytes sends). `on_look` runs at every look."""
        deadline = time.monotonic() + timeout
        since, last = None, None
        while True:
            waiting = [r for r in replies if not r.pull()]
            if not waiting:
                return replies
            socks = self.sockets()
            if on_look:
                on_look()
            drained = True
            for r in waiting:
                sock, done = self.note_read(r, socks)
                drained = drained and done and sock.tx_queue == 0
            now = self.activity() if drained else None
            if now is None:
                since = last = None
            else:
                since = now.on_cpu if since is None else since
                asleep = (last is not None and last.asleep and now.asleep
                          and now.on_cpu == last.on_cpu)
                if asleep or now.on_cpu - since >= SETTLE_CPU:
                    for r in waiting:
                        if not r.pull():
                            r.end = "quiet"
                    return replies
                last = now
            if time.monotonic() >= deadline or not self.alive():
                for r in waiting:
                    if not r.pull():
                        r.end = "timeout"
                return replies
            time.sleep(POLL)

    def exchange(self, client: Client, data: bytes, timeout: float,
                 quiet: bool = False) -> Reply:
        """Send one message and await what comes of it (see await_replies)."""
        reply = Reply(client, data)
        if not client.send(data, quiet=quiet):
            reply.end = "reset"
            return reply
        self.await_replies([reply], timeout)
        if not quiet and reply.served:
            self.story.saw(reply.told())
        return reply

    def asleep(self) -> bool:
        """Whether the server sleeps: every thread asleep at two looks, no CPU used between."""
        first = self.activity()
        time.sleep(POLL)
        second = self.activity()
        return bool(first and second and first.asleep and second.asleep
                    and first.on_cpu == second.on_cpu)

    def settle(self, timeout: float) -> None:
        """Give the server the time to act on what it has seen: until it is asleep, or has
        spent SETTLE_CPU of its own CPU time (a busy loop never sleeps, but has gone round
        its loop many times by then), or is gone, or the deadline passes."""
        deadline = time.monotonic() + timeout
        start = self.activity()
        while start is not None and time.monotonic() < deadline:
            now = self.activity()
            if now is None or now.on_cpu - start.on_cpu >= SETTLE_CPU or self.asleep():
                return

    def wait_until_or_asleep(self, predicate, timeout: float) -> bool:
        """Poll `predicate` until it holds, the deadline passes, or the server is asleep (so
        nothing it could still do is pending). Returns the predicate's last value."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline or not self.alive() or self.asleep():
                return bool(predicate())

    def teardown(self) -> None:
        # RST, not FIN: no server-side TIME_WAIT is left behind to block the next bind.
        for c in self.clients:
            c.reset(quiet=True)
        self.proc.kill()


def trace_notes(events: list[dict]) -> list[dict]:
    """The trace events a report explains failures with."""
    keep = {"bind", "listen", "close_registered", "thread", "fork", "select", "crash",
            "setblocking", "settimeout", "tracer_error", "exit"}
    notes = [e for e in events if e["ev"] in keep]
    return notes[:200]


def start_failure_reason(proc: StudentProcess, entry: str, timeout: float) -> str:
    if not proc.alive():
        return f"{entry} stopped before it listened: {describe_death(proc)}"
    where = procobs.where(proc.pid)
    total = (proc.stdout.total if proc.stdout else 0) + (proc.stderr.total if proc.stderr else 0)
    extra = ""
    if where.get("state") == "R":
        extra = "; it was running on the CPU"
    elif where.get("syscall"):
        extra = f"; it was blocked in {where['syscall']}()"
    elif where.get("wchan"):
        extra = f"; it was asleep in {where['wchan']}"
    if any(t is not None and t.capped for t in (proc.stdout, proc.stderr)):
        extra += " and had flooded its output (over 64 MiB printed)"
    elif total > 1024 * 1024:
        extra += f" and had printed {total / 1e6:.1f} MB"
    return (f"{entry} was still running after {timeout:g} s but listened on no TCP port"
            f"{extra}")


@pytest.fixture
def launch(submission: Submission, json_metadata, story):
    """Factory: start the student's entry file (fresh copy) with given args and env."""
    started: list[StudentProcess] = []

    def _launch(args=(), env=None) -> StudentProcess:
        workdir = submission.fresh_copy()
        proc = StudentProcess(entry=workdir / submission.entry, workdir=workdir,
                              args=list(args), env=dict(env or {}), user=submission.user)
        proc.start()
        started.append(proc)
        return proc

    try:
        yield _launch
    finally:
        for proc in started:
            proc.kill()
        if started:
            json_metadata["processes"] = [process_report(p) for p in started]
        for proc in started:
            discard(proc)


def clean_traceback(text: str, workdir: Path) -> str:
    """The student's traceback as the student would see it: paths relative to the
    submission, without the launcher's and runpy's frames."""
    lines = text.replace(str(workdir) + os.sep, "").splitlines()
    out, skip = [], False
    for line in lines:
        if line.startswith('  File "'):
            path = line.split('"')[1]
            skip = path == "<frozen runpy>" or (path.startswith("/") and path.endswith("boot.py"))
        elif not line.startswith("    "):
            skip = False
        if not skip:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def discard(proc: StudentProcess) -> None:
    """Remove a finished run's copy: what it wrote (a full disk, say) must not reach the
    next run."""
    shutil.rmtree(proc.workdir.parent, ignore_errors=True)


def process_report(proc: StudentProcess) -> dict:
    return {
        "stdout": _bounded(proc.stdout.text()) if proc.stdout else "",
        "stderr": _bounded(clean_traceback(proc.stderr.text(), proc.workdir))
                  if proc.stderr else "",
        "output_bytes": (proc.stdout.total if proc.stdout else 0)
                        + (proc.stderr.total if proc.stderr else 0),
        "exit_code": proc.returncode(),
        "trace": trace_notes(proc.trace()),
    }


NOT_JUDGED = "not judged: see runs"


def _runs_selected(config) -> bool:
    wanted = [c for c in config.getoption("--sg-checks").split(",") if c]
    return not wanted or "runs" in wanted


def _start_server(config, submission: Submission, story: Story,
                  started: list[Server], check: str = "runs") -> Server:
    """Start one run and wait (with a deadline) until it listens. The run is added to
    `started` at once, so that even a failed start is torn down and its output reported.
    Why a server cannot start is said once, by `runs`; every other check says it could not
    judge, rather than repeating that reason as if it were its own."""
    defer = check != "runs" and _runs_selected(config)
    if submission.problem:
        fail(NOT_JUDGED if defer else submission.problem)
    if config._sg_start_failure:
        fail(NOT_JUDGED if _runs_selected(config) else
             f"not judged: the server did not start: {config._sg_start_failure}")
    workdir = submission.fresh_copy()
    # A port for submissions that read PORT or argv[1]; those that hard-code one are moved
    # to an ephemeral port by the launcher, and the grader finds it from the kernel.
    proc = StudentProcess(entry=workdir / submission.entry, workdir=workdir, args=["8888"],
                          env={"PORT": "8888"}, user=submission.user)
    proc.start()
    srv = Server(proc, story)
    started.append(srv)
    listening = None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.alive():
        listeners = procobs.snapshot(proc.pid).listeners()
        if listeners:
            listening = sorted(listeners, key=lambda c: ":" in c.local[0])[0]
            break
        time.sleep(0.02)
    if listening is None:
        reason = start_failure_reason(proc, submission.entry, START_TIMEOUT)
        config._sg_start_failure = reason
        story.saw(reason)
        fail(NOT_JUDGED if defer else reason)
    ip = listening.local[0]
    if ":" in ip:
        srv.host = "::1" if ip in ("::", "::1") else ip
    else:
        srv.host = "127.0.0.1" if ip == "0.0.0.0" else ip
    srv.port = listening.local[1]
    srv.listen_fd = listening.fd
    binds = [e for e in proc.trace() if e["ev"] == "bind"]
    if binds and isinstance(binds[-1].get("requested"), list):
        srv.requested_port = binds[-1]["requested"][1]
    asked = f" (it asked for port {srv.requested_port})" if srv.requested_port else ""
    story.saw(f"the server listened on {srv.host}:{srv.port}{asked} after "
              f"{proc.elapsed():.2f} s")
    story.measure("start_seconds", round(proc.elapsed(), 3))
    return srv


@pytest.fixture
def start_server(request, submission: Submission, story: Story, json_metadata):
    """Factory: a fresh run of the student's server, listening. Every run is killed, with
    everything it started, when the check ends."""
    servers: list[Server] = []

    def _start() -> Server:
        return _start_server(request.config, submission, story, servers,
                             check_id(request.node))

    try:
        yield _start
    finally:
        for srv in servers:
            srv.teardown()
        if servers:
            json_metadata["processes"] = [process_report(s.proc) for s in servers]
        for srv in servers:
            discard(srv.proc)


@pytest.fixture
def server(start_server) -> Server:
    return start_server()
