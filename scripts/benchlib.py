"""Helpers of scripts/benchmark.py: the machine, classes on disk, timed runs, bare containers."""

from __future__ import annotations

import csv
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import assignment_names, reference_file  # noqa: E402, F401

# A `grade` that outlives its time-out gets SIGINT (it removes its containers on Ctrl-C, as for
# a TA), and SIGKILL if it is still there this much later.
INTERRUPT_GRACE_SECONDS = 30
# A bare container that has not ended after this long is the engine's fault, not a figure.
BARE_CONTAINER_TIMEOUT_SECONDS = 60
# The submission that never listens: it sleeps far longer than any bound of the kit.
HANGS = "import time\n\ntime.sleep(3600)\n"
# Trivial work for a bare container: the image's entry point runs `python3 -s -P` with these.
TRIVIAL_COMMAND = ["-c", "pass"]
# A process's peak RSS starts at that of the process it was forked from (the kernel keeps the
# old image's high-water mark across exec), so `grade` is not started from this script, whose
# Docker client and threads would set its floor, but from this small launcher: `python -S`
# (about 10 MiB, far below what grade imports) that reports its one child's ru_maxrss.
LAUNCHER = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets it and decides
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ, setsigdef=(signal.SIGINT,))
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def grade_command() -> list[str]:
    """The installed `grade` beside this interpreter (as users get it), else one on PATH."""
    beside = Path(sys.executable).parent / "grade"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("grade")
    if found is None:
        sys.exit("no `grade` beside this python or on PATH: run `bash scripts/setup.sh` first")
    return [found]


def grade_has_option(option: str) -> bool:
    """Whether `grade --help` lists `option` (e.g. --regrade, which not every version has)."""
    done = subprocess.run(
        [*grade_command(), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    return option in done.stdout


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import docker

        engine = docker.from_env(timeout=10).version().get("Version", "?")
    except Exception as exc:  # no engine is a fact to print, not a failure of the script
        engine = f"not reachable ({type(exc).__name__})"
    return [
        ("cores", str(os.cpu_count())),
        ("CPU", model),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Docker engine", engine),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("host", socket.gethostname()),
    ]


def docker_problem() -> str | None:
    """Why the Docker sandbox cannot run here (no engine, no or a stale image), or None."""
    from grader.sandbox import SandboxError
    from grader.sandbox.docker.image import connect, require_image

    try:
        require_image(connect())
    except SandboxError as exc:
        return str(exc)
    return None


def entry_name(assignment: str) -> str:
    return reference_file(assignment).name


def make_class(assignment: str, dest: Path, size: int) -> Path:
    """`size` students, each handing in the reference with a trailing comment of its own
    number: all correct, and no two with the same file hash."""
    dest.mkdir(parents=True)
    source = reference_file(assignment).read_text(encoding="utf-8")
    for i in range(size):
        student = dest / f"student{i:03d}"
        student.mkdir()
        text = source + f"\n# copy {i} of the reference, for the benchmark\n"
        (student / entry_name(assignment)).write_text(text, encoding="utf-8")
    return dest


def make_hanging(assignment: str, dest: Path) -> Path:
    """A class of one whose entry (server or client) sleeps and never listens or connects."""
    (dest / "hangs").mkdir(parents=True)
    (dest / "hangs" / entry_name(assignment)).write_text(HANGS, encoding="utf-8")
    return dest


@dataclass(frozen=True)
class Timed:
    """One subprocess run: wall seconds, exit code, its peak RSS and the tail of its output."""

    wall: float
    code: int
    peak_mib: float  # ru_maxrss of the command: itself or the largest process it waited for
    timed_out: bool
    tail: str


def timed(argv: list[str], cwd: Path, timeout: float, log: Path) -> Timed:
    """Run `argv` in its own session through LAUNCHER, output to `log`."""
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1")
    peak = log.with_suffix(".maxrss")
    peak.unlink(missing_ok=True)
    launch = [sys.executable, "-S", "-c", LAUNCHER, str(peak), *argv]
    with open(log, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            launch, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        expired = threading.Event()

        def stop(sig: int) -> None:
            expired.set()
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

        interrupt = threading.Timer(timeout, stop, (signal.SIGINT,))
        kill = threading.Timer(timeout + INTERRUPT_GRACE_SECONDS, stop, (signal.SIGKILL,))
        interrupt.start()
        kill.start()
        try:
            code = proc.wait()
        finally:
            interrupt.cancel()
            kill.cancel()
        wall = time.monotonic() - start
    text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    try:
        kib = int(peak.read_text())
    except (OSError, ValueError):  # the launcher was killed: no figure
        kib = 0
    return Timed(wall, code, kib / 1024, expired.is_set(), "\n".join(text[-15:]))


def full_marks(out: Path, size: int) -> list[str]:
    """What is wrong with a class of correct submissions' grades.csv: nothing when every one
    of the `size` students got full marks and passed every pass/fail check."""
    path = out / "grades.csv"
    if not path.is_file():
        return [f"no {path}"]
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    wrong = [] if len(rows) == size else [f"{len(rows)} rows, not {size}"]
    for row in rows:
        failed = [k for k, v in row.items() if "pass/fail" in k and v != "pass"]
        if row["status"] != "graded" or row["score"] != row["max"] or failed:
            wrong.append(f"{row['id']}: {row['score']}/{row['max']} {row['status']} {failed}")
    return wrong


def bare_containers(assignment: str, students: Path, scratch: Path, jobs: int) -> float:
    """Start and remove one container of the grading image per student folder, `jobs` at a
    time, with the kit's own hardening (create_kwargs) but a trivial command; wall seconds."""
    import docker

    from grader.assignment import load_assignment
    from grader.models import RunRequest, Submission
    from grader.sandbox.docker.container import DEFAULT_LIMITS, create_kwargs, for_engine
    from grader.sandbox.docker.image import IMAGE

    client = docker.from_env(timeout=BARE_CONTAINER_TIMEOUT_SECONDS)
    limits = for_engine(DEFAULT_LIMITS, client.info())  # as the Docker sandbox applies them
    task = load_assignment(assignment)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    folders = sorted(p for p in students.iterdir() if p.is_dir())

    def one(index: int) -> None:
        folder = folders[index]
        out = scratch / f"bare-out-{index}"
        out.mkdir(parents=True)
        sub = Submission(folder.name, folder, folder, entry_name(assignment))
        req = RunRequest(sub, task, (), BARE_CONTAINER_TIMEOUT_SECONDS)
        name = f"socketgrade-bench-{os.getpid()}-{index}"
        kwargs = create_kwargs(req, name, folder, out, image=IMAGE, limits=limits, owner=owner)
        kwargs["command"] = TRIVIAL_COMMAND
        container = client.containers.create(**kwargs)
        try:
            container.start()
            result = container.wait(timeout=BARE_CONTAINER_TIMEOUT_SECONDS)
            if result.get("StatusCode") != 0:
                raise RuntimeError(f"bare container {name} exited {result}")
        finally:
            container.remove(force=True)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, range(len(folders))))  # list(): re-raise the first failure
    return time.monotonic() - start
