"""The in-place sandbox on this machine (as root): its refusal when not root, the student's
user, what that user can read, the interpreter it runs, its limits, the kill of every process
of the uid, and the fsuid helper the harness reads the student's /proc with."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from grader.harness import asstudent
from grader.harness.launch import StudentProcess
from grader.proc import NPROC_ENV, STUDENT_PROCESSES, Limits, kill_user, processes_of
from grader.sandbox.common import SandboxError
from grader.sandbox.inplace import (
    STUDENT_PYTHON_ENV,
    InPlaceSandbox,
    ensure_student_user,
    readable_by,
    run_as,
    student_python,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the in-place sandbox needs root")
NOBODY = 65534
WORKTREE_SITE = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None)
# How long a test waits for a process it started to show up or go: far above what it takes.
SHOW_UP_SECONDS = 10.0


@pytest.fixture(scope="module")
def sandbox() -> InPlaceSandbox:
    return InPlaceSandbox()


def system_python() -> str:
    want = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.path.exists(want):
        pytest.skip(f"no {want} on this machine")
    return want


def test_refuses_with_one_sentence_when_not_root():
    """Run for real as a uid that is not root: the one sentence, no traceback."""
    if WORKTREE_SITE is None:
        pytest.skip("no worktree venv")
    code = (
        "from grader.sandbox.inplace import InPlaceSandbox\n"
        "from grader.sandbox.common import SandboxError\n"
        "try:\n    InPlaceSandbox()\nexcept SandboxError as exc:\n    print(exc.args[0])\n"
    )
    done = subprocess.run(
        [system_python(), "-c", code],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        env={"PYTHONPATH": f"{ROOT}:{WORKTREE_SITE}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "Permission denied" in done.stderr:
        pytest.skip("the worktree is not readable by nobody")
    assert done.stdout.strip() == (
        "the in-place sandbox must run as root (it starts the student's program as a "
        "dedicated unprivileged user): use --sandbox local or docker here"
    ), done.stderr


def _delete_user(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


def test_creates_a_user_whose_gid_is_its_uid():
    name = "sgt" + uuid.uuid4().hex[:8]
    try:
        uid = ensure_student_user(name)
        entry = pwd.getpwnam(name)
        assert (entry.pw_uid, entry.pw_gid) == (uid, uid)
        assert uid != 0
        assert ensure_student_user(name) == uid  # found, not created twice
    finally:
        _delete_user(name)


def test_refuses_a_user_whose_gid_is_another_group():
    name = "sgt" + uuid.uuid4().hex[:8]
    try:
        subprocess.run(
            ["useradd", "--system", "--gid", "nogroup", "--no-create-home", name],
            check=True,
            capture_output=True,
        )
        with pytest.raises(SandboxError) as info:
            ensure_student_user(name)
        assert "whose gid is its uid" in str(info.value.args[0])
    finally:
        _delete_user(name)


def test_the_interpreter_is_one_the_student_can_run(sandbox, monkeypatch):
    python = sandbox.python or sys.executable
    assert run_as(sandbox.uid, [python, "-I", "-S", "-c", "print(1)"]) == "1"
    if run_as(sandbox.uid, [sys.executable, "-I", "-S", "-c", "print(1)"]) is None:
        # This machine's kit lives where the student cannot go (a venv under /root).
        assert sandbox.python is not None
    monkeypatch.setenv(STUDENT_PYTHON_ENV, "/nonexistent/python3")
    with pytest.raises(SandboxError) as info:
        student_python(sandbox.uid)
    assert "cannot run /nonexistent/python3" in str(info.value.args[0])


def test_the_kit_is_hidden_from_the_student(sandbox):
    from grader import kitpaths

    secrets = [kitpaths.ASSIGNMENTS / "epoll" / "checks.py", kitpaths.ASSIGNMENTS]
    assert readable_by(sandbox.uid, sandbox.python or sys.executable, secrets) == []
    assert "readable by the program" not in sandbox.describe()


# A server that, before it serves, tries to read what the harness was given (its command
# line is in /proc for every uid to read): the checks, the report's folder, the kit's
# assignments and references. It exits before listening when it could read any of them.
# The harness is among the program's ancestors (its parent is the fork server): its command
# line names the paths a curious student would try.
PROBE_SERVER = """
import os, sys
pid = os.getppid()
while True:
    args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
    if b"--checks-file" in args:
        break
    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
given = {a.decode(): b.decode() for a, b in zip(args, args[1:]) if a.startswith(b"--")}
paths = [given["--checks-file"], os.path.dirname(given["--checks-file"]),
         given["--report"], os.path.dirname(given["--report"]), %(kit)r]
read = []
for p in paths:
    try:
        os.listdir(p) if os.path.isdir(p) else open(p, "rb").close()
        read.append(p)
    except OSError:
        pass
if read:
    sys.exit("read: " + ", ".join(read))
"""


def test_the_student_reads_nothing_of_the_grader(tmp_path):
    """A real grading: run folders root's, only the copy the student's."""
    from grader import kitpaths
    from grader.cli import main

    kit = [
        str(kitpaths.ASSIGNMENTS / "epoll" / "checks.py"),
        str(kitpaths.ASSIGNMENTS / "epoll" / "reference" / "server.py"),
        str(kitpaths.ASSIGNMENTS / "epoll" / "fixtures" / "expected.toml"),
    ]
    probe = PROBE_SERVER.replace("%(kit)r", repr(kit)[1:-1])
    reference = (ROOT / "reference" / "epoll_server.py").read_text(encoding="utf-8")
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "server.py").write_text(probe + reference, encoding="utf-8")
    out = tmp_path / "out"
    code = main(
        ["check", str(folder / "server.py"), "-a", "epoll", "--sandbox", "inplace"]
        + ["--out", str(out), "--lang", "en"]
    )
    results = list(out.rglob("results.json"))
    assert code == 0, results[0].read_text(encoding="utf-8")[:3000] if results else code


def test_limits_and_no_new_privileges_in_the_child(sandbox):
    # A folder of its own under /tmp: pytest's (and pytest-xdist's) temporary folders above
    # tmp_path are 0700, and the student's uid must pass through every folder above its copy.
    run = Path(tempfile.mkdtemp(prefix="sg-inplace-", dir="/tmp")) / "run"
    (run / "sub").mkdir(parents=True)
    run.parent.chmod(0o711)
    run.chmod(0o711)
    os.chown(run / "sub", sandbox.uid, sandbox.uid)
    (run / "sub" / "server.py").write_text("import time\ntime.sleep(60)\n")
    proc = StudentProcess(
        entry=run / "sub" / "server.py",
        workdir=run / "sub",
        user=sandbox.uid,
        python=sandbox.python,
        limits=Limits(processes=STUDENT_PROCESSES),
    )
    proc.start()
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        assert "NoNewPrivs:\t1" in status
        assert f"Uid:\t{sandbox.uid}\t{sandbox.uid}" in status
        assert f"Gid:\t{sandbox.uid}\t{sandbox.uid}" in status
        groups = next(x for x in status.splitlines() if x.startswith("Groups:"))
        assert groups.split() == ["Groups:"]
        line = next(x for x in limits.splitlines() if x.startswith("Max processes"))
        assert line.split()[2:4] == [str(STUDENT_PROCESSES)] * 2
    finally:
        proc.kill()
        shutil.rmtree(run.parent, ignore_errors=True)


def _daemon(uid: int) -> int:
    """A double-forked, detached sleeper of `uid`: nobody's child; its pid."""
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        print(os.getpid(), flush=True)\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    done = subprocess.Popen(
        ["/usr/bin/python3", "-c", code],
        user=uid,
        group=uid,
        extra_groups=[],
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    assert done.stdout is not None
    pid = int(done.stdout.readline())
    done.wait(timeout=SHOW_UP_SECONDS)
    return pid


def test_kill_user_leaves_nothing_of_the_uid(sandbox):
    pids = {_daemon(sandbox.uid) for _ in range(3)}
    assert pids <= {p.pid for p in processes_of(sandbox.uid)}
    assert kill_user(sandbox.uid) == []
    assert processes_of(sandbox.uid) == []
    with pytest.raises(ValueError):
        kill_user(0)


def test_after_run_kills_a_daemon_and_removes_its_files(sandbox):
    _daemon(sandbox.uid)
    planted = Path("/tmp") / f"sg-planted-{uuid.uuid4().hex[:8]}"
    planted.write_text("x")
    os.chown(planted, sandbox.uid, sandbox.uid)
    sandbox.after_run()
    assert processes_of(sandbox.uid) == []
    assert not planted.exists()


def test_as_student_sets_and_restores_the_threads_fsids(sandbox):
    asstudent.use(sandbox.uid)
    try:
        assert asstudent.fsids() == (0, 0)
        with asstudent.as_student():
            assert asstudent.fsids() == (sandbox.uid, sandbox.uid)
            with asstudent.as_student():  # nested: still the student's, and kept after
                assert asstudent.fsids() == (sandbox.uid, sandbox.uid)
            assert asstudent.fsids() == (sandbox.uid, sandbox.uid)
            # A root-only file is out of reach now: this thread is the student for files.
            with pytest.raises(PermissionError):
                open("/etc/shadow", "rb").close()
        assert asstudent.fsids() == (0, 0)
        with pytest.raises(KeyError), asstudent.as_student():
            raise KeyError("an error inside")
        assert asstudent.fsids() == (0, 0)
        open("/etc/shadow", "rb").close()
    finally:
        asstudent.use(None)
    with asstudent.as_student():  # no student: nothing changes
        assert asstudent.fsids() == (0, 0)


def test_as_student_reads_the_students_fds(sandbox):
    """procobs reads as the student: its own uid's /proc/PID/fd needs no capability."""
    from grader.harness import procobs

    pid = _daemon(sandbox.uid)
    asstudent.use(sandbox.uid)
    try:
        with asstudent.as_student():
            assert os.listdir(f"/proc/{pid}/fd")
        assert procobs.fd_links(pid)
    finally:
        asstudent.use(None)
        kill_user(sandbox.uid)
    deadline = time.monotonic() + SHOW_UP_SECONDS
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)


def test_describe_names_what_only_docker_gives(sandbox):
    info = sandbox.describe()
    gaps = {k: v for k, v in info.items() if k.startswith("docker only: ")}
    for name in ("network", "pids cgroup", "memory cgroup", "read-only root filesystem"):
        assert f"docker only: {name}" in gaps
    assert "RLIMIT_NPROC" in gaps["docker only: pids cgroup"]
    assert "/dev/shm" in gaps["docker only: read-only root filesystem"]
    assert info["processes"].startswith(str(STUDENT_PROCESSES))
    assert sandbox.harness_env() == {NPROC_ENV: str(STUDENT_PROCESSES)}


def test_what_describe_says_is_so(sandbox):
    """The claims checked as the student: shared folders writable, the network's sockets
    (here: an abstract Unix socket, no traffic) and a world-readable file reachable."""
    code = (
        "import os, socket\n"
        "for d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
        "    p = os.path.join(d, 'sg-claim-%d' % os.getpid())\n"
        "    open(p, 'w').close(); os.unlink(p)\n"
        "s = socket.socket(socket.AF_UNIX); s.bind('\\0sg-claim-%d' % os.getpid()); s.close()\n"
        "open('/etc/passwd').read()\n"
        "print('ok')\n"
    )
    assert run_as(sandbox.uid, [sandbox.python or sys.executable, "-c", code]) == "ok"
