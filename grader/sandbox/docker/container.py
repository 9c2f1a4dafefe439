"""What a grading container is made of: mounts, limits, capabilities, labels (its hardening)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from docker.types import LogConfig, Mount, Ulimit

from grader import kitpaths
from grader.contract import CHECK_LANES
from grader.models import RunRequest
from grader.proc import Limits
from grader.sandbox.common import harness_args
from grader.sandbox.docker.image import STUDENT_UID

ROLE_LABEL = "org.socketgrade.role"  # "grading" on every container a DockerSandbox starts
OWNER_LABEL = "org.socketgrade.owner"  # "host:pid" of the grader process that started it
ROLE = "grading"

# Paths as the harness sees them inside the container (see sandbox/Dockerfile).
HARNESS_HOME = "/opt/harness"
KIT_IN = f"{HARNESS_HOME}/kit"
SUBMISSION_IN = f"{HARNESS_HOME}/submission"
OUT_IN = f"{HARNESS_HOME}/out"
# The harness's copies of the submission get their own tmpfs: whatever the student's program
# writes to /tmp or /dev/shm cannot starve the copies of later checks.
WORK_IN = "/work"

# Every capability is dropped; these few are given back to the harness, which runs as root.
# The student's program gets none of them: its process setuid()s to STUDENT_UID before
# the program runs (forked from the fork server, or before exec), which clears them, and
# no-new-privileges stops any way back.
CAPABILITIES = {
    "CHOWN": "hand each copy of the submission (and its trace file) to the student's uid",
    # The harness writes the trace file and the launcher into the run folder after handing
    # it to the student's uid (mode 0700). No SYS_PTRACE: the harness reads the student's
    # /proc/PID/fd, fdinfo, wchan and syscall with its thread's fsuid set to the student's
    # (grader/harness/asstudent.py), which the kernel's ptrace check lets through.
    "DAC_OVERRIDE": "write into the student-owned run folder",
    "SETUID": "start the student's program as the unprivileged uid",
    "SETGID": "drop supplementary groups and set the student's gid",
    "KILL": "kill every process the student's program started (another uid's)",
}


@dataclass(frozen=True)
class DockerLimits:
    """cgroup and rlimit bounds of one grading container (the harness adds per-process
    rlimits for the student's program inside it)."""

    memory_mib: int = 1024  # memory and memory+swap: no swap at all
    pids: int = 256  # harness threads included
    cpus: float = 1.0
    file_size_mib: int = 64
    open_files: int = 4096
    tmpfs_mib: int = 64  # /tmp, for whatever the student's program writes there
    work_mib: int = 128  # /work: the harness's copies of the submission
    shm_mib: int = 16  # /dev/shm, the other writable place
    # The most a TCP socket's buffers grow to, each way, in the container's own network
    # namespace (the kernel's are 4 and 6 MiB and more): the kernel memory a program can pin
    # per connection, and what a client that never reads fills (robustness's slow reader:
    # some 3.5 MB to push and read back instead of 10).
    socket_buffer_kib: int = 1024


DEFAULT_LIMITS = DockerLimits()


def describe(lim: DockerLimits, image: str, wall_clock: float) -> dict:
    """The limits a report shows, in words."""
    student = Limits()
    return {
        "sandbox": f"docker ({image}: a fresh container per submission, "
        f"no network but loopback, read-only root, no-new-privileges)",
        "memory": f"{lim.memory_mib} MiB for the whole container, no swap (student's "
        f"program: {student.memory // 2**20} MiB resident, polled by the kit, "
        f"which kills it past that; address space is not limited)",
        "processes": f"{lim.pids} (harness threads included)",
        "CPU": f"{lim.cpus:g} core" + ("" if lim.cpus == 1 else "s"),
        "file size": f"{lim.file_size_mib} MiB (student's program: "
        f"{student.file_size // 2**20} MiB)",
        "open files": f"{lim.open_files} (student's program: {student.open_files})",
        "socket buffers": (
            f"TCP buffers grow to {lim.socket_buffer_kib} KiB at most, each way"
            if lim.socket_buffer_kib > 0
            else "the kernel's own (this engine cannot bound them per container)"
        ),
        "writable space": f"copies of the submission {lim.work_mib} MiB, /tmp "
        f"{lim.tmpfs_mib} MiB, /dev/shm {lim.shm_mib} MiB (all in memory)",
        "CPU time": f"{student.cpu_seconds} s (student's program)",
        "capabilities": "all dropped but " + ", ".join(sorted(CAPABILITIES)) + " (harness only)",
        "student uid": str(STUDENT_UID),
        "wall clock": f"{wall_clock:g} s per submission",
    }


def _sources(
    req: RunRequest,
    submission: Path,
    out: Path,
    assignment_in: str,
    volumes: dict[str, str] | None,
) -> list[tuple[str, str, Literal["bind", "volume"]]]:
    """(where inside, what, "bind" | "volume") of each mount; all but the output read-only."""
    if volumes is not None:
        return [
            (f"{KIT_IN}/grader", volumes["grader"], "volume"),
            (assignment_in, volumes["assignment"], "volume"),
            (SUBMISSION_IN, volumes["submission"], "volume"),
            (OUT_IN, volumes["out"], "volume"),
        ]
    return [
        # Wherever this `grader` was imported from: a checkout or site-packages.
        (f"{KIT_IN}/grader", str(kitpaths.PACKAGE), "bind"),
        (assignment_in, str(req.assignment.folder.resolve()), "bind"),
        (SUBMISSION_IN, str(submission.resolve()), "bind"),
        (OUT_IN, str(out.resolve()), "bind"),
    ]


def create_kwargs(
    req: RunRequest,
    name: str,
    submission: Path,
    out: Path,
    *,
    image: str,
    limits: DockerLimits,
    owner: str,
    volumes: dict[str, str] | None = None,
    lanes: int = CHECK_LANES,
    fork_server: bool = True,
) -> dict:
    """Everything containers.create() is given for one submission's container: the
    hardening lives here. `owner` ("host:pid") labels it for the clean-up of orphans.
    `volumes` ({"grader", "assignment", "submission", "out": volume name}): for an engine
    on another machine, the volumes that hold what is otherwise bind-mounted from here."""
    lim = limits
    assignment_in = f"{KIT_IN}/assignments/{req.assignment.folder.name}"
    command = harness_args(
        req,
        f"{assignment_in}/{req.assignment.checks_file.name}",
        SUBMISSION_IN,
        f"{OUT_IN}/report.json",
        WORK_IN,
        user=STUDENT_UID,
        lanes=lanes,
        fork_server=fork_server,
    )
    mib = 2**20
    return dict(
        image=image,
        command=command,
        name=name,
        labels={
            ROLE_LABEL: ROLE,
            OWNER_LABEL: owner,
            "org.socketgrade.submission": req.submission.id[:200],
        },
        hostname="sandbox",
        network_mode="none",
        read_only=True,
        tmpfs={
            "/tmp": f"rw,nosuid,nodev,noexec,size={lim.tmpfs_mib}m,mode=1777",
            WORK_IN: f"rw,nosuid,nodev,noexec,size={lim.work_mib}m,mode=0755",
        },
        shm_size=f"{lim.shm_mib}m",
        mounts=[
            Mount(target, source, type=kind, read_only=target != OUT_IN)
            for target, source, kind in _sources(req, submission, out, assignment_in, volumes)
        ],
        cap_drop=["ALL"],
        cap_add=sorted(CAPABILITIES),
        security_opt=["no-new-privileges"],
        mem_limit=f"{lim.memory_mib}m",
        memswap_limit=f"{lim.memory_mib}m",
        pids_limit=lim.pids,
        nano_cpus=int(lim.cpus * 1e9),
        ulimits=[
            Ulimit(name="fsize", soft=lim.file_size_mib * mib, hard=lim.file_size_mib * mib),
            Ulimit(name="nofile", soft=lim.open_files, hard=lim.open_files),
            Ulimit(name="core", soft=0, hard=0),
        ],
        ipc_mode="private",
        sysctls=socket_sysctls(lim.socket_buffer_kib),
        log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        stdin_open=False,
        tty=False,
    )


# The kernel's built-in minimum and default of a TCP socket's receive and send buffers
# (bytes), set with the bound (a new namespace would otherwise copy the host's).
TCP_RMEM = (4096, 131072)
TCP_WMEM = (4096, 16384)


# A container's own bounds on its TCP buffers need a kernel that keeps them per network
# namespace (4.15), and a runtime that writes them as runc does (not an emulated kernel).
SOCKET_SYSCTL_KERNEL = (4, 15)
SOCKET_SYSCTL_RUNTIMES = ("runc", "crun", "io.containerd.runc.v2")


def for_engine(limits: DockerLimits, info: dict) -> DockerLimits:
    """The limits as this engine (its `docker info`) can apply them: no bound on the TCP
    buffers where it cannot (every container would fail to start), the kernel's then."""
    try:
        kernel = tuple(
            int(n) for n in str(info.get("KernelVersion", "")).split("-")[0].split(".")[:2]
        )
    except ValueError:
        kernel = ()
    runtime = str(info.get("DefaultRuntime") or "runc")
    if kernel >= SOCKET_SYSCTL_KERNEL and runtime in SOCKET_SYSCTL_RUNTIMES:
        return limits
    return dataclasses.replace(limits, socket_buffer_kib=0)


def socket_sysctls(kib: int) -> dict[str, str]:
    """The network namespace's TCP buffer bounds: the kernel's minimum and default, and
    `kib` as the most that autotuning grows a buffer to (0: none set, the kernel's own)."""
    if kib <= 0:
        return {}
    cap = kib * 1024
    return {
        name: f"{low} {min(default, cap)} {cap}"
        for name, (low, default) in (
            ("net.ipv4.tcp_rmem", TCP_RMEM),
            ("net.ipv4.tcp_wmem", TCP_WMEM),
        )
    }


# The engine reports a main process that died of signal N as exit code 128 + N, as a
# shell does.
SIGNAL_EXIT_BASE = 128


def as_popen(code: int | None) -> int | None:
    """The container's exit code as Popen gives a process's: -N for a death by signal N."""
    if code is not None and code > SIGNAL_EXIT_BASE:
        return -(code - SIGNAL_EXIT_BASE)
    return code


def pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What is kept of the container's output (the harness's own log): its head and its tail.
LOG_HEAD = 8 * 1024
LOG_TAIL = 8 * 1024


def bounded_log(raw: bytes) -> str:
    if len(raw) > LOG_HEAD + LOG_TAIL:
        hidden = len(raw) - LOG_HEAD - LOG_TAIL
        raw = raw[:LOG_HEAD] + b"\n[... %d bytes not shown ...]\n" % hidden + raw[-LOG_TAIL:]
    return raw.decode("utf-8", errors="replace")
