"""The bounds on the student's program: rlimits that never count address space, and the
memory watchdog that bounds resident memory instead."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from grader.harness.launch import StudentProcess
from grader.proc import Limits

MiB = 2**20
DEADLINE = 30.0  # seconds; far above how long any of these programs needs

THREADS = textwrap.dedent("""
    import sys, threading, time
    n = int(sys.argv[1])
    ready, lock, go = [], threading.Lock(), threading.Event()

    def serve():
        # Each thread mallocs, as a thread serving a client does: glibc gives it an arena
        # of its own (64 MiB of address space each), besides its 8 MiB stack.
        buffers = [bytearray(4096) for _ in range(50)]
        with lock:
            ready.append(len(buffers))
        go.wait()

    for _ in range(n):
        threading.Thread(target=serve, daemon=True).start()
    deadline = time.monotonic() + 20
    while len(ready) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    print("started", len(ready), flush=True)
    go.set()
""")

GREEDY = textwrap.dedent("""
    import time
    hoard = []
    for _ in range(256):                      # up to 2 GiB, 8 MiB at a time
        hoard.append(b"x" * (8 * 1024 * 1024))
        time.sleep(0.02)
    print("survived", flush=True)
""")

GREEDY_CHILD = textwrap.dedent("""
    import subprocess, sys, time
    # The memory is taken by a child: the bound is on everything the program started.
    child = subprocess.Popen([sys.executable, "-c", GREEDY])
    print("child", child.pid, flush=True)
    child.wait()
    time.sleep(60)
""").replace("GREEDY", repr(GREEDY))

SHARING = textwrap.dedent("""
    import os, time
    data = bytearray(48 * 1024 * 1024)        # touched: resident, then shared by the forks
    for i in range(0, len(data), 4096):
        data[i] = 1
    children = []
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            time.sleep(1.0)                   # several of the watchdog's looks
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    print("done", flush=True)
""")

MODEST = textwrap.dedent("""
    data = b"x" * (16 * 1024 * 1024)
    print("done", len(data), flush=True)
""")


def run_to_end(tmp_path: Path, source: str, args=(), limits: Limits | None = None):
    """Run `source` as a student's entry file and wait (with a deadline) until it ends."""
    work = tmp_path / "sub"
    work.mkdir()
    (work / "prog.py").write_text(source)
    proc = StudentProcess(
        entry=work / "prog.py", workdir=work, args=[str(a) for a in args], limits=limits or Limits()
    )
    proc.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        ended = not proc.alive()
    finally:
        proc.kill()
    assert ended, "the program was still running at the deadline"
    return proc


def test_no_address_space_limit_is_set():
    """RLIMIT_AS is left as it was: the child's address space limit is its parent's."""
    before = resource.getrlimit(resource.RLIMIT_AS)
    code = (
        "import resource; print(*resource.getrlimit(resource.RLIMIT_AS)); "
        "print(*resource.getrlimit(resource.RLIMIT_FSIZE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=Limits().apply,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert tuple(int(x) for x in out[0].split()) == before
    # The other rlimits still apply.
    assert tuple(int(x) for x in out[1].split()) == (Limits().file_size,) * 2


def test_a_thread_per_client_server_can_start_40_threads(tmp_path):
    """40 threads, each with its stack and malloc arena: under the old 1 GiB RLIMIT_AS this
    died with "can't start new thread" after about 14-22 threads."""
    proc = run_to_end(tmp_path, THREADS, args=[40])
    assert proc.returncode() == 0, proc.stderr.text()
    assert proc.stdout.text().split() == ["started", "40"]
    assert proc.killed_for == ""


def test_the_watchdog_kills_a_program_past_the_memory_limit(tmp_path):
    proc = run_to_end(tmp_path, GREEDY, limits=Limits(memory=64 * MiB))
    assert proc.returncode() == -signal.SIGKILL, (proc.stdout.text(), proc.stderr.text())
    assert "survived" not in proc.stdout.text()
    assert proc.killed_for.startswith("memory: ")
    assert proc.killed_for.endswith("MiB resident, limit 64 MiB")
    used = int(proc.killed_for.split()[1])
    assert used > 64


def test_the_watchdog_counts_what_the_program_started(tmp_path):
    proc = run_to_end(tmp_path, GREEDY_CHILD, limits=Limits(memory=64 * MiB))
    assert proc.returncode() == -signal.SIGKILL, (proc.stdout.text(), proc.stderr.text())
    assert proc.killed_for.endswith("limit 64 MiB")
    child = int(proc.stdout.text().split()[1])
    assert _zombie_or_gone(child), f"the child {child} that took the memory is still running"


def _zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (OSError, IndexError):
        return True


def test_pages_shared_by_forks_count_once(tmp_path):
    """Six processes sharing 48 MiB hold six times that in RSS but 48 MiB in truth (PSS):
    a program that forks workers, or a fork bomb stopped by the pids limit, is not taken
    for a memory hog."""
    proc = run_to_end(tmp_path, SHARING, limits=Limits(memory=128 * MiB))
    assert proc.killed_for == ""
    assert proc.returncode() == 0, proc.stderr.text()
    assert proc.stdout.text().split() == ["done"]


def test_a_program_within_the_limit_is_left_alone(tmp_path):
    proc = run_to_end(tmp_path, MODEST, limits=Limits(memory=256 * MiB))
    assert proc.returncode() == 0, proc.stderr.text()
    assert proc.stdout.text().split() == ["done", str(16 * MiB)]
    assert proc.killed_for == ""


def test_no_watchdog_when_the_limit_is_zero(tmp_path):
    proc = run_to_end(tmp_path, MODEST, limits=Limits(memory=0))
    assert proc.watchdog is None
    assert proc.returncode() == 0


def test_a_program_the_kit_stops_reads_as_killed_not_as_exited(tmp_path):
    """kill() leaves reaping the run's own process to Popen, so its status stays SIGKILL
    (psutil reaping it first made Popen read 0, "exited normally", about half the time)."""
    for n in range(10):
        work = tmp_path / f"sub{n}"
        work.mkdir()
        (work / "prog.py").write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
        proc = StudentProcess(entry=work / "prog.py", workdir=work)
        proc.start()
        try:
            deadline = time.monotonic() + DEADLINE
            while proc.stdout.total == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            proc.kill()
        assert proc.returncode() == -signal.SIGKILL
        assert proc.killed_for == ""


def test_both_sandboxes_state_the_real_memory_bound():
    from types import SimpleNamespace

    from grader.sandbox import LocalSandbox
    from grader.sandbox.docker import DockerLimits, DockerSandbox

    local = LocalSandbox(wall_clock=60).describe()
    docker = DockerSandbox.describe(
        SimpleNamespace(limits=DockerLimits(), image="img", wall_clock=60)
    )
    for described in (local, docker):
        assert "address space" not in described
        assert "512 MiB resident" in described["memory"]
        assert "address space is not limited" in described["memory"]
    assert docker["memory"].startswith("1024 MiB for the whole container, no swap")


def test_tcp_buffers_are_bounded_only_where_the_engine_can():
    """A container's own TCP buffer bounds need a kernel that keeps them per network
    namespace (4.15) and a runtime that writes them (runc, crun): elsewhere every container
    would fail to start, so they are left to the kernel there, and the report says so."""
    from grader.sandbox.docker.container import (
        DEFAULT_LIMITS,
        describe,
        for_engine,
        socket_sysctls,
    )

    def kib(info):
        return for_engine(DEFAULT_LIMITS, info).socket_buffer_kib

    assert kib({"KernelVersion": "6.18.44-fc-v657", "DefaultRuntime": "runc"}) == 1024
    assert kib({"KernelVersion": "4.15.0-20-generic", "DefaultRuntime": "crun"}) == 1024
    assert kib({"KernelVersion": "3.10.0-1160.el7.x86_64", "DefaultRuntime": "runc"}) == 0
    assert kib({"KernelVersion": "5.15.0", "DefaultRuntime": "runsc"}) == 0  # gVisor
    assert kib({}) == 0
    assert socket_sysctls(1024) == {
        "net.ipv4.tcp_rmem": "4096 131072 1048576",
        "net.ipv4.tcp_wmem": "4096 16384 1048576",
    }
    assert socket_sysctls(0) == {}
    unbounded = for_engine(DEFAULT_LIMITS, {})
    assert "kernel's own" in describe(unbounded, "img", 60)["socket buffers"]
    assert "1024 KiB" in describe(DEFAULT_LIMITS, "img", 60)["socket buffers"]
