"""What the kernel says about a process: sockets, descriptors and their flags, epoll interest
lists, threads, children, CPU time, and where it sleeps."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from grader.harness.asstudent import reads_as_student
from grader.harness.family import descendant_pids

# The TCP table's reader is sockdiag's; the parser of /proc's is re-exported for the tests.
from grader.harness.sockdiag import (  # noqa: F401
    LISTEN_STATES,
    OWNED_STATES,
    TCP_STATES,
    parse_tcp_table,
    tcp_table,
)
from grader.harness.timing import CPU_SAMPLE

# Where a process waits is its own module; the checks find it here with the rest.
from grader.harness.waits import (  # noqa: F401
    SYSCALLS,
    WAIT_CALL,
    describe_wait,
    matches,
    wait_mechanism,
    waits_in_selector,
    where,
)

O_NONBLOCK = 0o4000


@dataclass(frozen=True)
class Descriptor:
    fd: int
    target: str  # e.g. "socket:[1234]", "anon_inode:[eventpoll]", "/dev/null"
    flags: int | None  # from fdinfo; None when unreadable
    epoll_targets: tuple[int, ...] = ()  # for an eventpoll fd: the fds in its interest list

    @property
    def nonblocking(self) -> bool | None:
        return None if self.flags is None else bool(self.flags & O_NONBLOCK)

    @property
    def is_socket(self) -> bool:
        return self.target.startswith("socket:")

    @property
    def is_epoll(self) -> bool:
        return self.target == "anon_inode:[eventpoll]"


@dataclass(frozen=True)
class Connection:
    fd: int
    status: str
    local: tuple
    remote: tuple


@dataclass
class Snapshot:
    """One look at the process."""

    pid: int
    descriptors: dict[int, Descriptor] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    threads: int = 0
    children: list[int] = field(default_factory=list)

    def listeners(self) -> list[Connection]:
        return [c for c in self.connections if c.status == psutil.CONN_LISTEN]

    def peers(self) -> list[Connection]:
        return [c for c in self.connections if c.status != psutil.CONN_LISTEN and c.remote]

    def by_remote_port(self, port: int) -> Connection | None:
        for conn in self.peers():
            if conn.remote and conn.remote[1] == port:
                return conn
        return None

    def epolls(self) -> list[Descriptor]:
        return [d for d in self.descriptors.values() if d.is_epoll]

    def watched(self) -> set[int]:
        out: set[int] = set()
        for ep in self.epolls():
            out.update(ep.epoll_targets)
        return out


@reads_as_student
def _fdinfo(pid: int, fd: int) -> tuple[int | None, tuple[int, ...]]:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
            text = fh.read()
    except OSError:
        return None, ()
    match = re.search(r"^flags:\s*([0-7]+)", text, re.M)
    flags = int(match.group(1), 8) if match else None
    targets = tuple(int(m) for m in re.findall(r"^tfd:\s*(\d+)", text, re.M))
    return flags, targets


@reads_as_student
def fd_links(pid: int) -> dict[int, str]:
    """fd -> what it points at ('socket:[1234]', 'anon_inode:[eventpoll]', a path), from the
    links in /proc/PID/fd; a descriptor closed while we read is left out."""
    out: dict[int, str] = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for name in names:
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
    return out


@reads_as_student
def descriptors(pid: int) -> dict[int, Descriptor]:
    out = {}
    for fd, target in fd_links(pid).items():
        flags, targets = _fdinfo(pid, fd)
        out[fd] = Descriptor(fd, target, flags, targets)
    return out


@reads_as_student
def snapshot(pid: int) -> Snapshot:
    snap = Snapshot(pid)
    try:
        proc = psutil.Process(pid)
        snap.threads = proc.num_threads()
        snap.children = descendant_pids(pid)
    except psutil.Error:
        pass
    snap.descriptors = descriptors(pid)
    inodes = socket_inodes(pid, {fd: d.target for fd, d in snap.descriptors.items()})
    snap.connections = [
        Connection(s.fd, s.state, s.local, s.remote) for s in _tcp_sockets(pid, inodes)
    ]
    return snap


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of all the process's threads."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def schedstat_seconds(pid: int) -> tuple[float, float] | None:
    """(running, waiting to run) of all the process's threads, in seconds (schedstat). The
    waiting is what a crowded machine, or a CPU quota, adds; the running is not."""
    on_cpu = waiting = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                ran, waited = fh.read().split()[:2]
            on_cpu += int(ran)
            waiting += int(waited)
        except (OSError, ValueError):
            continue
    return on_cpu / 1e9, waiting / 1e9


@dataclass(frozen=True)
class CpuWindow:
    seconds: float
    cpu: float
    # From schedstat: time running and time kept waiting for a CPU over the window; None
    # where schedstat is absent.
    running: float | None = None
    waiting: float | None = None

    @property
    def percent(self) -> float:
        """CPU used, as a share of the window."""
        return 100.0 * self.cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def awake(self) -> float:
        """Seconds of the window it was not kept waiting for a CPU: asleep or running."""
        if self.running is None or self.waiting is None:
            return self.seconds
        return max(self.running, self.seconds - self.waiting)

    @property
    def busy_percent(self) -> float:
        """How much of the time it was not kept waiting for a CPU the process spent running.
        Neither a crowded machine nor a CPU quota moves it: a busy loop is near 100% however
        little CPU it gets (it never sleeps, so all its time is running or waiting), and a
        loop that sleeps between short wake-ups stays low however long each wake-up waits
        for a CPU (that wait is taken out, not counted as wanting the CPU)."""
        if self.running is None or self.waiting is None or self.seconds <= 0:
            return self.percent
        awake = self.awake
        share = 100.0 * self.running / awake if awake > 0 else 0.0
        return max(self.percent, share)


def measure_cpu(
    pid: int, window: float, settled: Callable[[CpuWindow], bool] | None = None
) -> CpuWindow | None:
    """CPU time and schedstat times of the process over an observation window of wall-clock
    time, ended early once `settled` holds for what was measured so far (only where
    schedstat is read: the CPU ticks alone are too coarse to settle anything early)."""
    start_cpu, start_sched = cpu_seconds(pid), schedstat_seconds(pid)
    start = time.monotonic()
    deadline = start + window
    while time.monotonic() < deadline:
        time.sleep(min(CPU_SAMPLE, max(0.0, deadline - time.monotonic())))
        if settled is not None and start_cpu is not None and start_sched is not None:
            now = _window(start, start_cpu, start_sched, pid)
            if now is not None and now.running is not None and settled(now):
                return now
    if start_cpu is None:
        return None
    return _window(start, start_cpu, start_sched, pid)


def _window(
    start: float, start_cpu: float, start_sched: tuple[float, float] | None, pid: int
) -> CpuWindow | None:
    end_cpu, end_sched = cpu_seconds(pid), schedstat_seconds(pid)
    if end_cpu is None:
        return None
    seconds = time.monotonic() - start
    if start_sched is None or end_sched is None:
        return CpuWindow(seconds, end_cpu - start_cpu)
    running = max(0.0, end_sched[0] - start_sched[0])
    waiting = max(0.0, end_sched[1] - start_sched[1])
    return CpuWindow(seconds, end_cpu - start_cpu, running, waiting)


# --- sockets straight from the kernel's TCP table, with their queues ------------------------


@dataclass(frozen=True)
class TcpSocket:
    """One of the process's TCP sockets as the kernel's table shows it. `rx_queue` is
    what arrived and the process has not read yet (an unread end of stream counts 1: the
    FIN takes a sequence number); for a listening socket it is the accept queue's length."""

    fd: int
    inode: int
    state: str
    local: tuple
    remote: tuple
    rx_queue: int
    tx_queue: int


def socket_inodes(pid: int, links: dict[int, str] | None = None) -> dict[int, int]:
    """fd -> socket inode, from the links in /proc/PID/fd (or those already read)."""
    return {
        fd: int(target[8:-1])
        for fd, target in (fd_links(pid) if links is None else links).items()
        if target.startswith("socket:[")
    }


@reads_as_student
def listeners(pid: int) -> list[Connection]:
    """The process's listening TCP sockets: what snapshot(pid).listeners() finds, asked of
    the kernel's table of listeners alone (a program that starts is looked at often)."""
    return [
        Connection(s.fd, s.state, s.local, s.remote)
        for s in _tcp_sockets(pid, socket_inodes(pid), LISTEN_STATES)
        if s.state == psutil.CONN_LISTEN
    ]


@reads_as_student
def tcp_sockets(pid: int) -> list[TcpSocket]:
    """The process's TCP sockets with their queues: no round trip, nothing the process says."""
    return _tcp_sockets(pid, socket_inodes(pid))


def _tcp_sockets(pid: int, inodes: dict[int, int], states: int = OWNED_STATES) -> list[TcpSocket]:
    if not inodes:
        return []
    table = tcp_table(pid, set(inodes.values()), states)
    out = []
    for fd, inode in sorted(inodes.items()):
        row = table.get(inode)
        if row:
            state, local, remote, tx, rx = row
            out.append(TcpSocket(fd, inode, state, local, remote, rx, tx))
    return out


def _task_stats(pid: int) -> list[tuple[str, float | None]]:
    """(state letter, seconds on the CPU) of each thread of the process."""
    out: list[tuple[str, float | None]] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        on_cpu = None
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                on_cpu = int(fh.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
        out.append((state, on_cpu))
    return out


@dataclass(frozen=True)
class Activity:
    """One look at whether processes are doing anything: every thread asleep ('S'), and the
    CPU time they have had so far."""

    asleep: bool
    on_cpu: float


class Stillness:
    """How long, look after look, a process has been asleep without using any CPU: a look
    that finds it running, waiting for a CPU or gone starts the count again."""

    def __init__(self) -> None:
        self._since: tuple[float, float] | None = None  # (when first seen so, its CPU then)

    def look(self, now: Activity | None) -> float:
        if now is None or not now.asleep:
            self._since = None
        elif self._since is None or now.on_cpu != self._since[1]:
            self._since = (time.monotonic(), now.on_cpu)
        return time.monotonic() - self._since[0] if self._since else 0.0


def activity(pids: list[int]) -> Activity | None:
    """Asleep means every thread of every process is in an interruptible sleep (waiting on
    a socket, a timer, a lock): a thread that runs or waits for a CPU shows 'R', however
    crowded the machine. None when the first process is gone."""
    asleep, total = True, 0.0
    for i, pid in enumerate(pids):
        stats = _task_stats(pid)
        if not stats:
            if i == 0:
                return None
            continue
        for state, on_cpu in stats:
            asleep = asleep and state in ("S", "Z", "X")
            total += on_cpu or 0.0
        if any(on_cpu is None for _, on_cpu in stats):
            total = max(total, cpu_seconds(pid) or 0.0)
    return Activity(asleep, total)
