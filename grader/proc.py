"""Process utilities shared by the host and the harness: bounds, output taps and kill trees."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from dataclasses import dataclass, field

import psutil

# A leaf module: it imports nothing from `grader`, so both the host's sandboxes and the
# in-sandbox harness can use it without either importing the other.

HEAD_BYTES = 32 * 1024
TAIL_BYTES = 8 * 1024
READ_CAP = 64 * 1024 * 1024  # past this, a flood is no longer read: its writes then block
READ_CHUNK = 64 * 1024
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>; not exposed by the standard library
PR_SET_NO_NEW_PRIVS = 38

# How long a tap's thread is given to drain what is left once the pipe's writer is gone.
# The writer is dead by then, so the pipe ends at once unless a grandchild still holds it
# open; past this the thread (a daemon) is left behind rather than blocking the grader.
TAP_JOIN_SECONDS = 2.0
# kill_user(): each round freezes and kills what the uid runs, then waits this long for it
# to go; rounds go on until nothing of the uid is left or KILL_USER_SECONDS have passed.
KILL_USER_ROUND_SECONDS = 0.2
KILL_USER_SECONDS = 10.0
# How long kill_tree waits for frozen-then-killed processes to vanish. SIGKILL of a stopped
# process is delivered at once; this only covers a loaded machine's scheduling delay.
KILL_TREE_WAIT_SECONDS = 2.0


# RLIMIT_NPROC counts a uid's processes across the whole kernel. The in-place sandbox gives
# its student a uid of its own and asks its harness for the bound through this variable of
# the harness's environment (the student's program never sees it). Docker does not: its
# student uid is the same in every container, where one container's fork bomb would keep
# another's program from starting; its pids cgroup bounds each container instead.
NPROC_ENV = "SOCKETGRADE_STUDENT_NPROC"
# As Docker's pids cgroup bounds a container (there, the harness's threads included).
STUDENT_PROCESSES = 256


def asked_processes() -> int | None:
    """The RLIMIT_NPROC the sandbox asked for (NPROC_ENV), None when it asked for none."""
    value = os.environ.get(NPROC_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass
class Limits:
    """Bounds on the student's program: rlimits applied in the child before it runs, and a
    resident-memory bound the harness enforces from outside (the Docker sandbox adds cgroup
    limits on the whole container).

    There is no RLIMIT_AS: address space counts each thread's stack and malloc arena, so a
    thread-per-client server died of it after a few dozen threads, and the sandbox, not the
    code, decided the verdict. Resident memory is what a program really takes."""

    memory: int = 512 * 1024 * 1024  # resident bytes of the program and all it started
    file_size: int = 16 * 1024 * 1024
    open_files: int = 1024
    cpu_seconds: int = 120
    # RLIMIT_NPROC: processes and threads of the student's uid together; None: none. Only
    # the in-place sandbox asks for it (NPROC_ENV), the stand-in for Docker's pids cgroup.
    processes: int | None = field(default_factory=asked_processes)

    def apply_processes(self) -> None:
        """RLIMIT_NPROC, for a child about to become the student's own uid."""
        import resource

        if self.processes:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))

    def rlimits(self) -> list[tuple[int, int, int]]:
        """(resource, soft, hard) of what apply() sets; one that fails is left as it was."""
        # Imported here: `resource` exists only on POSIX systems, and `grade` must start on
        # Windows too, if only to say that the local sandbox needs Linux.
        import resource

        return [
            (res, value, value)
            for res, value in (
                (resource.RLIMIT_FSIZE, self.file_size),
                (resource.RLIMIT_NOFILE, self.open_files),
                (resource.RLIMIT_CPU, self.cpu_seconds),
                (resource.RLIMIT_CORE, 0),
            )
        ]

    def apply(self) -> None:
        import resource

        for res, soft, hard in self.rlimits():
            try:
                resource.setrlimit(res, (soft, hard))
            except (ValueError, OSError):
                pass
        # And no-new-privileges: a setuid or file-capability binary of the machine gives
        # nothing back to the program (Docker's no-new-privileges does it for a container).
        no_new_privileges()


def become_subreaper() -> None:
    """Orphans of the processes we start (daemons, fork bombs) are re-parented to us, so that
    killing every descendant really kills everything they started."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _load_libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # not a POSIX system
        return None


# Loaded once, here: no_new_privileges() runs in a child between fork and exec, where a
# dlopen() could wait for ever on a lock another thread of the parent held at the fork.
_LIBC = _load_libc()


def no_new_privileges() -> None:
    """PR_SET_NO_NEW_PRIVS for this process and all it will exec: a setuid or file-capability
    binary then runs with the caller's privileges, never more."""
    if _LIBC is None or _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def _ns_depth(pid: int | str) -> int:
    """How many pid namespaces, from ours down, the process has a pid in (NSpid in
    /proc/PID/status, readable by every uid): 1 when it is in ours; 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return len(line.split()) - 1
    except OSError:
        pass
    return 0


def processes_of(uid: int) -> list[psutil.Process]:
    """Every live (not zombie) process of our own pid namespace whose real or effective uid
    is `uid`. A container's processes (a namespace below ours) are left alone: the same uid
    may be another container's student."""
    out = []
    own = _ns_depth("self")
    for p in psutil.process_iter():
        try:
            uids = p.uids()
            if uid not in (uids.real, uids.effective) or p.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if _ns_depth(p.pid) in (own, 0):
            out.append(p)
    return out


def kill_user(uid: int, deadline: float = KILL_USER_SECONDS) -> list[int]:
    """Kill every process of `uid`, whoever started it (a double-forked daemon is no longer
    anyone's child), until none is left or `deadline` seconds have passed; the pids still
    alive then ([] when all are gone). Never call it with a uid that is not the student's."""
    if uid == 0:
        raise ValueError("kill_user: refusing to kill every process of root")
    import time

    end = time.monotonic() + deadline
    while True:
        procs = processes_of(uid)
        if not procs or time.monotonic() >= end:
            return [p.pid for p in procs]
        freeze_and_kill(procs, timeout=KILL_USER_ROUND_SECONDS)


class OutputTap:
    """Drains one pipe in a thread, keeping the head and the tail and counting the rest, so
    that a program's output never fills our memory. Past READ_CAP bytes it stops reading:
    a program that floods then blocks in write() instead of costing the grader a core."""

    def __init__(self, pipe):
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.capped = False
        self._pipe = pipe
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        fd = self._pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            if self.total > READ_CAP:
                self.capped = True
                break
            room = HEAD_BYTES - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    def join(self, timeout: float = TAP_JOIN_SECONDS) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        shown = len(self.head) + len(self.tail)
        body = bytes(self.head)
        if self.total > shown:
            body += b"\n[... %d bytes not shown ...]\n" % (self.total - shown)
        body += bytes(self.tail)
        if self.capped:
            body += b"\n[... output no longer read after %d MiB ...]\n" % (READ_CAP >> 20)
        return body.decode("utf-8", errors="replace")


def freeze_and_kill(procs: list[psutil.Process], timeout: float | None) -> None:
    """SIGSTOP them all first, so none can fork or respawn another while we go, then
    SIGKILL them all, and wait up to `timeout` for them to go (None: no wait at all)."""
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass
    if timeout is not None:
        psutil.wait_procs(procs, timeout=timeout)


def kill_tree(pid: int, timeout: float = KILL_TREE_WAIT_SECONDS) -> None:
    """Freeze, then kill, a process and all its descendants (used on time-out and Ctrl-C)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    freeze_and_kill(procs, timeout=timeout)
