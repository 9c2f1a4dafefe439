"""The in-place sandbox: for when the kit already runs inside a container it does not control
(Gradescope's and PrairieLearn's graders), as root, and cannot start Docker. The harness runs
as root; the student's program runs as a dedicated unprivileged user."""

from __future__ import annotations

import atexit
import grp
import os
import pwd
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from grader import kitpaths
from grader.contract import msg
from grader.models import RunOutcome, RunRequest
from grader.proc import NPROC_ENV, STUDENT_PROCESSES, kill_user
from grader.sandbox.common import DEFAULT_WALL_CLOCK, SandboxError
from grader.sandbox.local import LocalSandbox

STUDENT_USER = "sgstudent"
# Where a new student user's id is drawn from, at random: an id free both as a uid and as a
# gid. At random, because RLIMIT_NPROC counts a uid's processes across the whole kernel:
# two grading containers of one machine whose students shared an id would share the bound,
# and one's fork bomb would keep the other's program from starting.
ID_RANGE = range(20000, 60000)
ID_TRIES = 200
# The interpreter the student's program runs with, when the kit's own is out of its reach.
STUDENT_PYTHON_ENV = "SOCKETGRADE_STUDENT_PYTHON"
# How long one probe of an interpreter, started as the student's user, may take.
PROBE_SECONDS = 30.0
# Folders every uid may write in, which the student's program may leave files in: emptied of
# the student's files after each run, so that nothing reaches the next.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
# Where the runs' folders go: every uid may pass through it (mode 1777).
RUNS_IN = "/tmp"
PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


def _free_id() -> int:
    for n in random.sample(ID_RANGE, ID_TRIES):
        try:
            pwd.getpwuid(n)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(n)
        except KeyError:
            return n
    raise SandboxError(msg("no free id for the student user was found"))


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def ensure_student_user(name: str = STUDENT_USER) -> int:
    """The uid of the dedicated student user, created if missing, whose group has the same
    id: the harness gives the program that one id as both uid and gid, so a gid that
    belongs to another group (systemd-journal, docker) would hand it that group's files."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is not None:
        if entry.pw_uid == 0 or entry.pw_gid != entry.pw_uid:
            raise SandboxError(
                msg(
                    "the student user {name} exists with uid {uid} and gid {gid}: the "
                    "in-place sandbox needs its own user whose gid is its uid (remove it "
                    "with userdel {name})",
                    name=name,
                    uid=entry.pw_uid,
                    gid=entry.pw_gid,
                )
            )
        return entry.pw_uid
    n = _free_id()
    if shutil.which("useradd") and shutil.which("groupadd"):
        for cmd in (
            ["groupadd", "--system", "--gid", str(n), name],
            ["useradd", "--system", "--uid", str(n), "--gid", str(n), "--no-create-home"]
            + ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        ):
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.returncode != 0:
                raise SandboxError(
                    msg(
                        "cannot create the student user {name}: {error}",
                        name=name,
                        error=done.stderr.decode(errors="replace").strip()[:200],
                    )
                )
    else:
        # An image without the shadow tools: the entries are all a uid needs.
        _append("/etc/group", f"{name}:x:{n}:")
        _append("/etc/passwd", f"{name}:x:{n}:{n}::/nonexistent:/usr/sbin/nologin")
    return n


def run_as(uid: int, argv: list[str]) -> str | None:
    """What `argv` prints when run as `uid` (and gid), None when it cannot be run or fails."""
    try:
        done = subprocess.run(
            argv,
            user=uid,
            group=uid,
            extra_groups=[],
            cwd="/",
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_SECONDS,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else None


def student_python(uid: int) -> str | None:
    """The interpreter the student's program runs with: None when the kit's own serves (the
    student's uid can run it), else SOCKETGRADE_STUDENT_PYTHON, else a system python of the
    kit's major.minor. A probe really runs each as the student's uid."""
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    chosen = os.environ.get(STUDENT_PYTHON_ENV)
    if chosen:
        if run_as(uid, [chosen, "-I", "-S", "-c", PROBE]) is None:
            raise SandboxError(
                msg(
                    "the student's user cannot run {python} (from {env})",
                    python=chosen,
                    env=STUDENT_PYTHON_ENV,
                )
            )
        return chosen
    if run_as(uid, [sys.executable, "-I", "-S", "-c", PROBE]) == want:
        return None
    for folder in ("/usr/bin", "/usr/local/bin", "/bin"):
        for name in (f"python{want}", "python3"):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and run_as(uid, [path, "-I", "-S", "-c", PROBE]) == want:
                return path
    raise SandboxError(
        msg(
            "the student's user cannot run the kit's Python ({python}) and no python{version} "
            "it can run was found in /usr/bin or /usr/local/bin: install one, or name one "
            "in {env}",
            python=sys.executable,
            version=want,
            env=STUDENT_PYTHON_ENV,
        )
    )


def remove_files_of(uid: int, folders: tuple[str, ...] = SHARED_TMP) -> None:
    """Remove what `uid` left at the top of shared writable folders (never following links:
    lstat, and rmtree does not follow them either)."""
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if info.st_uid != uid:
                continue
            try:
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


def kit_secrets() -> list[Path]:
    """The kit's folders the student must not read: the assignments (checks, references,
    fixtures) and, in a checkout, the top-level reference solutions."""
    return [p for p in (kitpaths.ASSIGNMENTS, kitpaths.ROOT / "reference") if p.is_dir()]


def hide_from_others(folder: Path) -> None:
    """Take every right of `other` off a folder of the kit (the student's uid is no member of
    its group): the kit may have been installed where every uid reads it. A read-only mount
    refuses; describe() then reports what the student can still read."""
    try:
        mode = stat.S_IMODE(os.stat(folder).st_mode)
        if mode & 0o007:
            os.chmod(folder, mode & ~0o007)
    except OSError:
        pass


def readable_by(uid: int, python: str, paths: list[Path]) -> list[Path]:
    """Those of `paths` the uid can open (a folder: list), tried as that uid."""
    code = (
        "import os, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').close()\n"
        "        print(p)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    out = run_as(uid, [python, "-I", "-S", "-c", code, *map(str, paths)])
    return [Path(line) for line in (out or "").splitlines()]


class InPlaceSandbox(LocalSandbox):
    """The harness as root on this machine (a grading container); the student's program as
    a dedicated unprivileged user. One submission at a time: after each run every process of
    that user is killed, which would kill another run's too."""

    name = "inplace"
    # The harness's files (the report, the checks' copy) are root's alone.
    harness_umask = 0o077
    # One check at a time: the lanes would need a uid each, and the clean-up after a run
    # kills by uid.
    lanes = 1

    def __init__(self, wall_clock: float = DEFAULT_WALL_CLOCK, scratch: Path | None = None):
        if os.geteuid() != 0:
            raise SandboxError(
                msg(
                    "the in-place sandbox must run as root (it starts the student's program "
                    "as a dedicated unprivileged user): use --sandbox local or docker here"
                )
            )
        # The runs go in a folder of our own under /tmp, whatever `scratch` says: the student's
        # uid must reach its copy by name through every folder above it, and the one asked
        # for (beside the reports, under a 0700 temporary folder) may not let it through.
        base = Path(tempfile.mkdtemp(prefix="socketgrade-inplace-", dir=RUNS_IN))
        os.chmod(base, 0o711)
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        super().__init__(wall_clock, base)
        self.uid = ensure_student_user()
        self.python = student_python(self.uid)
        for folder in kit_secrets():
            hide_from_others(folder)
        self.exposed = readable_by(self.uid, self.python or sys.executable, kit_secrets())
        self._one_at_a_time = threading.Lock()
        # Whatever an earlier grading in this container left behind goes first; after that,
        # each run ends with the same clean-up (LocalSandbox.run calls after_run).
        self.after_run()

    def student_uid(self) -> int | None:
        return self.uid

    def student_python(self) -> str | None:
        return self.python

    def harness_env(self) -> dict[str, str]:
        # RLIMIT_NPROC on the student's uid: one of its own, drawn at random (ID_RANGE).
        return {NPROC_ENV: str(STUDENT_PROCESSES)}

    def prepare_run_folder(self, folder: Path) -> None:
        # Traversable, not listable: the student's uid reaches its copy (work/run-N/sub) by
        # name; the report and the checks' copy in it are mode 0600 and 0700 (harness_umask).
        os.chmod(folder, 0o711)
        # The harness makes its copies under work/; made here, as the umask would make it 0700.
        (folder / "work").mkdir(mode=0o711)
        os.chmod(folder / "work", 0o711)

    def checks_for(self, req: RunRequest, folder: Path) -> str:
        """A copy of the checks in a folder only root can enter: the kit's own may be
        installed where every uid reads it."""
        kit = folder / "checks"
        kit.mkdir(mode=0o700)
        target = kit / req.assignment.checks_file.name
        shutil.copyfile(req.assignment.checks_file, target)
        os.chmod(target, 0o600)
        return str(target.absolute())

    def run(self, req: RunRequest) -> RunOutcome:
        with self._one_at_a_time:
            return super().run(req)

    def after_run(self) -> None:
        left = kill_user(self.uid)
        remove_files_of(self.uid)
        if left:
            raise SandboxError(
                msg(
                    "processes of the student's user survived being killed: {pids}",
                    pids=", ".join(map(str, left)),
                )
            )

    def describe(self) -> dict:
        info = super().describe()
        who = pwd.getpwuid(self.uid).pw_name
        info["sandbox"] = (
            "in place (as root in this container; the program as a dedicated user, "
            "no-new-privileges)"
        )
        info["student uid"] = f"{self.uid} ({who}), gid {self.uid}, no supplementary groups"
        info["interpreter"] = self.python or sys.executable
        info["processes"] = (
            f"{STUDENT_PROCESSES} for the student's uid (RLIMIT_NPROC), threads included; "
            f"every process of that uid is killed after each run"
        )
        info.update({f"docker only: {name}": text for name, text in GAPS.items()})
        if self.exposed:
            info["readable by the program"] = (
                "the kit's "
                + ", ".join(str(p) for p in self.exposed)
                + " (installed read-only where every uid reads it)"
            )
        return info


# What only Docker gives, one line each in the report ("docker only: network"): what the
# in-place sandbox does instead, or that nothing does. Each follows from what a uid of its
# own in a shared container can and cannot be kept from (tests/test_inplace*.py).
GAPS = {
    "network": "the program reaches whatever network this container has, and its abstract "
    "Unix sockets (Docker: loopback only)",
    "pids cgroup": "RLIMIT_NPROC on the dedicated uid instead",
    "memory cgroup": "the kit's resident-memory watchdog instead (polled, not enforced by "
    "the kernel)",
    "CPU quota": "none (RLIMIT_CPU only)",
    "read-only root filesystem": "the program may write wherever this container lets every "
    "user write (/tmp, /var/tmp, /dev/shm), without Docker's size bounds; its files there "
    "are removed after each run",
    "private view of files": "the program reads every world-readable file of this container",
    "IPC namespace": "System V IPC objects are this container's (Docker: private)",
}
