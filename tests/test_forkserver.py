"""Runs forked from a fork server (grader/harness/forkserver.py, forkserve.py): set up as a
fresh interpreter's run would be, their end relayed as Popen tells it, and Popen again
whenever no server can serve. The verdict tables with and without it: test_lanes.py."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from grader.harness import family
from grader.harness.forkserver import ServedRun, Servers
from grader.harness.launch import StudentProcess, latest_running
from grader.proc import Limits, become_subreaper

PROBE = """
import os, resource, sys
print("argv", sys.argv[1:])
print("cwd", os.getcwd())
print("env", sorted(k for k in os.environ if k in ("MARK", "SG_TRACE", "HOME")))
print("nofile", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
print("sid", os.getsid(0) == os.getpid())
print("fds", sorted(int(f) for f in os.listdir("/proc/self/fd")))
print("uid", os.getuid())
print("ppid", os.getppid())
print("modules", "grader" in sys.modules, "pytest" in sys.modules)
sys.stderr.write("to stderr\\n")
sys.exit(int(os.environ.get("CODE", "0")))
"""


@pytest.fixture
def servers(tmp_path, monkeypatch):
    box = Servers()
    box.start(sys.executable, tmp_path / "work", lanes=1)
    monkeypatch.setattr("grader.harness.launch.SERVERS", box)
    yield box
    box.stop()


def _run(tmp_path: Path, code: str, **kw) -> StudentProcess:
    sub = tmp_path / f"sub-{time.monotonic_ns()}"
    sub.mkdir()
    (sub / "main.py").write_text(code, encoding="utf-8")
    limits = Limits(open_files=321, memory=0)
    proc = StudentProcess(entry=sub / "main.py", workdir=sub, limits=limits, **kw)
    proc.start()
    return proc


def _finished(proc: StudentProcess) -> dict[str, str]:
    assert proc.proc is not None
    proc.proc.wait(timeout=10)
    proc.kill()
    assert proc.stdout is not None
    return dict(line.split(" ", 1) for line in proc.stdout.text().splitlines())


def test_a_run_is_forked_by_the_server_and_set_up_as_a_fresh_one(servers, tmp_path):
    proc = _run(tmp_path, PROBE, args=["a", "b"], env={"MARK": "1"})
    assert isinstance(proc.proc, ServedRun)
    server = servers.servers[0]
    assert server is not None
    seen = _finished(proc)
    assert seen.pop("ppid") == str(server.pid)
    assert seen["argv"] == "['a', 'b']"
    assert seen["cwd"] == str(proc.workdir)
    assert seen["env"] == "['HOME', 'MARK']"  # the tracer's variables taken out by boot.py
    assert seen["nofile"] == "321"
    assert seen["sid"] == "True"
    assert seen["modules"] == "False False", "the kit's code is not in the student's process"
    assert proc.stderr is not None and "to stderr" in proc.stderr.text()
    assert proc.returncode() == 0
    # And what a fresh interpreter's run sees, line for line (but its folder).
    servers.stop()
    fresh = _run(tmp_path, PROBE, args=["a", "b"], env={"MARK": "1"})
    assert not isinstance(fresh.proc, ServedRun)
    alike = _finished(fresh)
    assert alike.pop("ppid") == str(os.getpid())
    assert alike.pop("cwd") == str(fresh.workdir)
    seen.pop("cwd")
    assert seen == alike


def test_exit_codes_and_deaths_by_signal_read_as_popen_gives_them(servers, tmp_path):
    proc = _run(tmp_path, PROBE, env={"CODE": "3"})
    _finished(proc)
    assert proc.returncode() == 3
    sleeper = _run(tmp_path, "import time\ntime.sleep(30)\n")
    assert isinstance(sleeper.proc, ServedRun)
    assert sleeper.alive()
    os.kill(sleeper.pid, signal.SIGTERM)
    assert sleeper.proc.wait(timeout=10) == -signal.SIGTERM
    sleeper.kill()


def _others_can_run_python() -> bool:
    """Whether another uid can read this interpreter's standard library (not under a 0700
    home folder, as a pyenv one under /root is)."""
    folder = Path(os.__file__).resolve().parent
    return all(os.stat(p).st_mode & 0o001 for p in [folder, *folder.parents])


@pytest.mark.skipif(
    os.geteuid() != 0 or not _others_can_run_python(),
    reason="needs root, and an interpreter another uid can run (the Docker tests have both)",
)
def test_a_run_as_another_uid_is_dumpable_and_capable_of_nothing(servers, tmp_path):
    uid = 64123
    sub = tmp_path / "as-uid"
    code = "import os\nprint('uid', os.getuid(), os.getgid(), os.getgroups())\n"
    sub.mkdir(mode=0o755)
    (sub / "main.py").write_text(code, encoding="utf-8")
    os.chown(sub, uid, uid)
    os.chown(sub / "main.py", uid, uid)
    tmp_path.chmod(0o755)
    proc = StudentProcess(entry=sub / "main.py", workdir=sub, user=uid)
    proc.start()
    assert isinstance(proc.proc, ServedRun)
    # Its /proc files are its own uid's (dumpable): the harness reads them as that uid.
    assert os.stat(f"/proc/{proc.pid}/fd").st_uid in (uid, 0)
    seen = _finished(proc)
    assert seen["uid"] == f"{uid} {uid} []"


def test_the_harness_finds_the_runs_orphans_under_the_server(servers, tmp_path):
    proc = _run(
        tmp_path,
        "import os, time\nif os.fork() == 0:\n    time.sleep(30)\nos._exit(0)\n",
    )
    proc.proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    orphans: list[int] = []
    while time.monotonic() < deadline and not orphans:
        orphans = [p.pid for p in proc.descendants()]
        time.sleep(0.01)
    assert orphans, "the orphan, now the server's child, is the run's to end"
    assert family.SERVING == servers.servers[0].pid
    proc.kill()
    assert all(not psutil_exists(p) for p in orphans)


def test_without_a_server_a_run_starts_as_a_fresh_interpreter(servers, tmp_path):
    servers.servers[0].sock.close()  # the server hears the end and exits
    proc = _run(tmp_path, PROBE)
    assert not isinstance(proc.proc, ServedRun)
    assert _finished(proc)["argv"] == "[]"


def test_a_run_asking_for_another_locale_gets_an_interpreter_of_its_own(servers, tmp_path):
    proc = _run(tmp_path, PROBE, env={"LC_ALL": "C"})
    assert not isinstance(proc.proc, ServedRun)
    _finished(proc)


def test_a_run_outlives_its_server_and_is_still_told_apart(servers, tmp_path):
    """Its server killed, a run is the child of the nearest subreaper (the harness, here
    this test's process), which reads its end itself; one that is nobody's, gone with its
    status unsaid, is the kit's fault, never an exit code made up for the student."""
    become_subreaper()
    sleeper = _run(tmp_path, "import time\ntime.sleep(30)\n")
    assert isinstance(sleeper.proc, ServedRun)
    os.kill(servers.servers[0].pid, signal.SIGKILL)
    assert sleeper.alive()
    os.kill(sleeper.pid, signal.SIGTERM)
    assert sleeper.proc.wait(timeout=10) == -signal.SIGTERM
    sleeper.kill()


def test_a_run_whose_end_nobody_can_tell_is_the_kits_fault(servers, tmp_path):
    sleeper = _run(tmp_path, "import time\ntime.sleep(30)\n")
    assert isinstance(sleeper.proc, ServedRun)
    sleeper.proc._status_fd, status = -1, sleeper.proc._status_fd  # as if the server were gone
    os.close(status)
    os.kill(sleeper.pid, signal.SIGKILL)
    # Reaped by the server, its status never relayed.
    deadline = time.monotonic() + 5
    while psutil_exists(sleeper.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="fork server ended"):
        sleeper.proc.wait(timeout=1)
    with pytest.raises(RuntimeError, match="fork server ended"):
        sleeper.returncode()  # where its end is asked for, the kit's fault
    assert not sleeper.alive()  # gone all the same: not the newest run still going
    assert latest_running() is not sleeper
    sleeper.kill()  # and the kit can still clean up after it


def psutil_exists(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ended_child() -> int:
    """A process of ours that has exited (a zombie: nobody reaps it before the test does)."""
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    deadline = time.monotonic() + 10
    while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not end"
        time.sleep(0.01)
    return pid


def test_a_run_that_ended_is_not_alive_while_its_server_is_slow_to_say(monkeypatch):
    """A starved machine: the run has ended, and its server, which reaps it and relays how,
    has not had a CPU yet. Popen would see the end at once; so does a served run, waiting for
    the status the kernel shows is coming (a stale_fd server's crash read as 'alive' flipped
    cleanup's verdict in a container starved to a quarter of a core)."""
    import threading

    pid = _ended_child()
    status_r, status_w = os.pipe()
    run = ServedRun(pid, status_r)
    relay = threading.Timer(0.3, lambda: os.write(status_w, b"%d\n" % (3 << 8)))
    relay.start()
    try:
        assert run.poll() == 3
    finally:
        relay.join()
        os.close(status_w)
        os.waitpid(pid, 0)


def test_a_server_that_never_says_costs_one_wait_only(monkeypatch):
    monkeypatch.setattr("grader.harness.forkserver.RELAY_SECONDS", 0.2)
    pid = _ended_child()
    status_r, status_w = os.pipe()
    run = ServedRun(pid, status_r)
    try:
        started = time.monotonic()
        assert run.poll() is None  # as before: nobody said how it ended
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        assert run.poll() is None
        assert time.monotonic() - started < 0.2  # not waited for again
        os.write(status_w, b"0\n")
        assert run.poll() == 0
    finally:
        os.close(status_w)
        os.waitpid(pid, 0)
