"""The Docker sandbox: hardening of the container, verdicts equal to the local sandbox, the
student's uid shut out of the harness, and no container left behind whatever happens."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

try:  # the fixture is also imported by conftest.py; either way it is the same function
    from tests.docker_support import docker_engine
except ImportError:
    from docker_support import docker_engine  # noqa: F401
from grader import kitpaths
from grader.models import Assignment, RunRequest, Submission, Text
from grader.sandbox import SandboxError, make_sandbox
from grader.sandbox.docker import image
from grader.sandbox.docker import runner as sd
from grader.sandbox.docker.container import CAPABILITIES

pytestmark = pytest.mark.docker

COURSE_LISTING = kitpaths.ROOT / "assignments" / "epoll" / "examples" / "course_listing"
# What the course's own listing gets: everything but robustness (a peer reset, non-UTF-8
# bytes and a slow reader each crash or block it).
COURSE_LISTING_VERDICTS = {
    "runs": "passed",
    "echo": "passed",
    "disconnect": "passed",
    "concurrency": "passed",
    "unregister": "passed",
    "idle_cpu": "passed",
    "single_thread": "passed",
    "uses_epoll": "passed",
    "cleanup": "passed",
    "robustness": "failed",
}
# Where a grading container's mounts go, and which are writable: only the output.
MOUNTS = {
    "/opt/harness/kit/grader": False,
    "/opt/harness/kit/assignments/epoll": False,
    "/opt/harness/submission": False,
    "/opt/harness/out": True,
}
APPEAR = 30.0  # deadline for a container to show up after run() starts
FINISH = 90.0  # deadline for a run that should end on its own

# Linux capability numbers (include/uapi/linux/capability.h) of the ones we may add back.
CAP_BITS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "FOWNER": 3,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "NET_BIND_SERVICE": 10,
    "NET_ADMIN": 12,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_ADMIN": 21,
}

SLEEPER = "import time\ntime.sleep(3600)\n"
REFERENCE = (kitpaths.ASSIGNMENTS / "epoll" / "reference" / "server.py").read_text("utf-8")

SNOOPER = textwrap.dedent("""\
    import os, socket

    def attempt(label, action):
        try:
            action()
            print(label, "ALLOWED", flush=True)
        except Exception as exc:
            print(label, type(exc).__name__, flush=True)

    attempt("read-checks", lambda: open(
        "/opt/harness/kit/assignments/epoll/checks.py").read())
    attempt("list-harness", lambda: os.listdir("/opt/harness"))
    attempt("write-report", lambda: open("/opt/harness/out/report.json", "w").write("{}"))
    attempt("read-kit", lambda: open("/opt/harness/kit/grader/proc.py").read())
    attempt("harness-fds", lambda: os.listdir("/proc/1/fd"))
    attempt("write-root", lambda: open("/etc/owned", "w").write("x"))
    attempt("read-linked-checks", lambda: open("linked_checks.py").read())
    print("uid", os.getuid(), "gid", os.getgid(), flush=True)

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 8888))
    srv.listen()
    while True:
        conn, _ = srv.accept()
        conn.close()
""")


def epoll_assignment() -> Assignment:
    try:
        from grader.assignment import load_assignment
    except ImportError:
        folder = kitpaths.ROOT / "assignments" / "epoll"
        return Assignment(
            name="epoll",
            title=Text("epoll"),
            entry="server.py",
            kind="server",
            checks=(),
            folder=folder,
        )
    return load_assignment("epoll")


def request(folder: Path, only=(), wall_clock: float = 240.0) -> RunRequest:
    sub = Submission(id=folder.name, source=folder, folder=folder, entry="server.py")
    return RunRequest(
        submission=sub, assignment=epoll_assignment(), only=tuple(only), wall_clock=wall_clock
    )


def submission(tmp_path: Path, source: str, name: str = "sub") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "server.py").write_text(source, encoding="utf-8")
    return folder


def verdicts(report: dict) -> dict[str, str]:
    return {t["nodeid"].rsplit("::test_", 1)[-1]: t["outcome"] for t in report["tests"]}


def ours(client, sandbox: sd.DockerSandbox) -> list:
    return client.containers.list(all=True, filters={"label": f"{sd.OWNER_LABEL}={sandbox.owner}"})


def wait_for(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Background:
    """sandbox.run(req) in a thread, its outcome (or exception) kept."""

    def __init__(self, sandbox, req):
        self.outcome = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(sandbox, req), daemon=True)
        self.thread.start()

    def _run(self, sandbox, req):
        try:
            self.outcome = sandbox.run(req)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"run() still going after {timeout:g} s"
        if self.error is not None:
            raise self.error
        return self.outcome


@pytest.fixture
def sandbox(docker_engine, tmp_path):
    box = sd.DockerSandbox(wall_clock=120, scratch=tmp_path / "scratch")
    (tmp_path / "scratch").mkdir()
    yield box
    box.stop_all()


def test_container_has_exactly_the_hardening(docker_engine, sandbox, tmp_path):
    folder = submission(tmp_path, SLEEPER)  # never listens: the 'runs' check waits 10 s
    run = Background(sandbox, request(folder, only=("runs",)))
    found = wait_for(
        lambda: [c for c in ours(docker_engine, sandbox) if c.status == "running"], APPEAR
    )
    assert found, f"no running grading container within {APPEAR:g} s"
    container = found[0]
    host = container.attrs["HostConfig"]
    lim = sandbox.limits
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == sorted(CAPABILITIES)
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["Memory"] == lim.memory_mib * 2**20
    assert host["MemorySwap"] == host["Memory"]  # no swap on top
    assert host["PidsLimit"] == lim.pids
    assert host["NanoCpus"] == int(lim.cpus * 1e9)
    assert host["Tmpfs"] == {
        "/tmp": f"rw,nosuid,nodev,noexec,size={lim.tmpfs_mib}m,mode=1777",
        "/work": f"rw,nosuid,nodev,noexec,size={lim.work_mib}m,mode=0755",
    }
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}
    assert ulimits["fsize"] == (lim.file_size_mib * 2**20,) * 2
    assert ulimits["nofile"] == (lim.open_files,) * 2
    mounts = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
    assert mounts == MOUNTS
    assert container.labels[sd.ROLE_LABEL] == sd.ROLE

    # What the kernel says about the harness (pid 1) inside: the engine applied all of it.
    def inside(path: str) -> str:
        code, data = container.exec_run(["cat", path])
        assert code == 0, data
        return data.decode()

    status = dict(line.split(":", 1) for line in inside("/proc/1/status").splitlines())
    wanted = sum(1 << CAP_BITS[c] for c in CAPABILITIES)
    assert int(status["CapEff"], 16) == wanted
    assert int(status["CapBnd"], 16) == wanted
    assert status["NoNewPrivs"].strip() == "1"
    interfaces = [line.split(":")[0].strip() for line in inside("/proc/net/dev").splitlines()[2:]]
    assert interfaces == ["lo"]
    mounts = {
        line.split()[1]: line.split()[3].split(",") for line in inside("/proc/mounts").splitlines()
    }
    assert "ro" in mounts["/"]
    assert {"rw", "nosuid", "nodev", "noexec"} <= set(mounts["/tmp"])
    assert {"rw", "nosuid", "nodev", "noexec"} <= set(mounts["/work"])
    limits = inside("/proc/1/limits")
    assert f"Max file size             {lim.file_size_mib * 2**20}" in limits
    # The namespace's TCP buffers grow to the limit at most (the kernel's own min/default).
    cap = lim.socket_buffer_kib * 1024
    assert inside("/proc/sys/net/ipv4/tcp_rmem").split() == ["4096", "131072", str(cap)]
    assert inside("/proc/sys/net/ipv4/tcp_wmem").split() == ["4096", "16384", str(cap)]

    outcome = run.join(FINISH)
    assert not outcome.error and verdicts(outcome.report) == {"runs": "error"}
    assert not ours(docker_engine, sandbox)


def test_course_listing_same_verdicts_as_local(docker_engine, sandbox):
    req = request(COURSE_LISTING)
    in_docker = sandbox.run(req)
    assert not in_docker.error, in_docker.log
    assert in_docker.sandbox == "docker" and in_docker.limits["memory"]
    assert in_docker.engine == image.default_host()  # where it ran, for the report
    local = make_sandbox("local", 120).run(req)
    assert not local.error, local.log
    assert verdicts(in_docker.report) == verdicts(local.report) == COURSE_LISTING_VERDICTS
    assert not ours(docker_engine, sandbox)


def test_student_uid_cannot_reach_the_harness(docker_engine, sandbox, tmp_path):
    folder = submission(tmp_path, SNOOPER)
    # A link the root harness would follow when it copies the submission inside.
    (folder / "linked_checks.py").symlink_to("/opt/harness/kit/assignments/epoll/checks.py")
    outcome = sandbox.run(request(folder, only=("runs",)))
    assert not outcome.error, outcome.log
    (test,) = outcome.report["tests"]
    assert test["outcome"] == "passed"
    stdout = test["metadata"]["processes"][0]["stdout"]
    attempts = dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)
    assert attempts == {
        "read-checks": "PermissionError",
        "list-harness": "PermissionError",
        "write-report": "PermissionError",
        "read-kit": "PermissionError",
        "harness-fds": "PermissionError",
        "write-root": "OSError",  # EROFS: the root file system is read-only
        "read-linked-checks": "FileNotFoundError",  # links are not given to the container
        "uid": f"{image.STUDENT_UID} gid {image.STUDENT_UID}",
    }, stdout
    assert not ours(docker_engine, sandbox)


def test_no_container_left_after_wall_clock_timeout(docker_engine, tmp_path):
    (tmp_path / "scratch").mkdir()
    box = sd.DockerSandbox(wall_clock=3, scratch=tmp_path / "scratch")
    folder = submission(tmp_path, SLEEPER)
    started = time.monotonic()
    outcome = box.run(request(folder))  # the full run would take over 10 s
    took = time.monotonic() - started
    assert outcome.report is None
    assert outcome.error_fault == "submission"
    assert "wall-clock" in str(outcome.error)
    assert 3 <= took < 3 + 20, took
    assert not ours(docker_engine, box)
    assert list((tmp_path / "scratch").iterdir()) == []  # the out mount is gone too


def test_stop_all_removes_a_running_container(docker_engine, sandbox, tmp_path):
    folder = submission(tmp_path, SLEEPER)
    run = Background(sandbox, request(folder))
    assert wait_for(lambda: ours(docker_engine, sandbox), APPEAR)
    sandbox.stop_all()
    outcome = run.join(FINISH)
    assert outcome.report is None and "interrupted" in str(outcome.error)
    assert not ours(docker_engine, sandbox)


def test_ctrl_c_removes_the_container(docker_engine, tmp_path):
    folder = submission(tmp_path, SLEEPER)
    driver = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_docker_sandbox import request
        from grader.sandbox.docker import DockerSandbox
        box = DockerSandbox(wall_clock=120)
        print(box.owner, flush=True)
        box.run(request(Path({str(folder)!r})))
    """)
    # SIGINT must not be ignored in the child (it is when started from a background job).
    proc = subprocess.Popen(
        [sys.executable, "-c", driver],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=kitpaths.ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        owner = proc.stdout.readline().strip()
        assert owner, proc.stderr.read()
        label = {"label": f"{sd.OWNER_LABEL}={owner}"}
        assert wait_for(lambda: docker_engine.containers.list(filters=label), APPEAR)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=FINISH)
        assert "KeyboardInterrupt" in proc.stderr.read()
        assert docker_engine.containers.list(all=True, filters=label) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_missing_image_says_what_to_run(docker_engine):
    with pytest.raises(SandboxError, match=r"missing: run `grade sandbox build`"):
        sd.DockerSandbox(wall_clock=10, image="socketgrade-sandbox:no-such-tag")


def test_image_built_from_other_files_is_stale(docker_engine, monkeypatch, tmp_path):
    changed = tmp_path / "sandbox"
    changed.mkdir()
    for name in image.CONTEXT_FILES:
        (changed / name).write_bytes((image.SANDBOX_DIR / name).read_bytes())
    with open(changed / "entry.sh", "a", encoding="utf-8") as fh:
        fh.write("# changed\n")
    monkeypatch.setattr(image, "SANDBOX_DIR", changed)
    with pytest.raises(SandboxError, match=r"is stale: run `grade sandbox build`"):
        sd.DockerSandbox(wall_clock=10)
    assert "stale" in image.image_status()


def test_unreachable_engine_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(SandboxError, match=r"no Docker engine is reachable .*start dockerd"):
        sd.DockerSandbox(wall_clock=10)


def test_the_harness_is_never_told_of_a_hand_in_problem(tmp_path):
    """A hand-in without an entry is scored without a sandbox run: the container's command
    line carries no such problem."""
    from types import SimpleNamespace

    sub = Submission(
        id="lab", source=tmp_path, folder=None, entry=None, problem="no server.py in the hand-in"
    )
    req = RunRequest(submission=sub, assignment=epoll_assignment(), only=(), wall_clock=60)
    box = SimpleNamespace(
        limits=sd.DockerLimits(), owner="host:1", image="img", lanes=4, fork_server=False
    )
    command = sd.DockerSandbox.create_kwargs(box, req, "name", tmp_path, tmp_path)["command"]
    assert command[:2] == ["-m", "grader.harness.run"]
    assert not any("problem" in arg for arg in command)
    assert command[command.index("--user") + 1] == str(image.STUDENT_UID)
    assert command[command.index("--lanes") + 1] == "4"
    assert "--no-fork-server" in command  # and without it, the fork server is on (default)


def test_the_image_command_line_runs_as_a_module(docker_engine):
    """`python -m grader.sandbox.docker status`, as scripts/provision-docker.sh calls it."""
    done = subprocess.run(
        [sys.executable, "-m", "grader.sandbox.docker", "status"],
        capture_output=True,
        text=True,
        cwd=kitpaths.ROOT,
        timeout=FINISH,
    )
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stdout


def test_status_and_build_on_a_named_engine(docker_engine, capsys):
    """`grade sandbox status|build --docker-host URL`: one line per engine; an engine whose
    image is up to date needs neither a build nor a load."""
    from grader.sandbox.docker.cli import cli_sandbox

    url = image.default_host()
    assert cli_sandbox(["status", "--lang", "en", "--docker-host", url]) == 0
    assert capsys.readouterr().out.startswith(f"{url}: {image.IMAGE} is up to date")
    assert cli_sandbox(["build", "--lang", "en", "--docker-host", url]) == 0
    assert capsys.readouterr().out.startswith(f"{url}: {image.IMAGE} is up to date")
    assert cli_sandbox(["status", "--docker-host", "ftp://nowhere"]) == 2
    assert "is not a Docker engine's URL" in capsys.readouterr().err


def test_an_engine_that_cannot_see_our_files_gets_copies(docker_engine, tmp_path):
    """An engine on another machine cannot bind-mount this machine's folders: the kit, the
    assignment and the hand-in go into volumes through its API, the report comes back the
    same way, the verdicts are the same, and no volume is left."""
    (tmp_path / "scratch").mkdir()
    assert not sd.DockerSandbox(wall_clock=10, scratch=tmp_path / "scratch").copy_files
    box = sd.DockerSandbox(wall_clock=120, scratch=tmp_path / "scratch", copy_files=True)
    outcome = box.run(request(COURSE_LISTING))
    assert not outcome.error, outcome.log
    assert verdicts(outcome.report) == COURSE_LISTING_VERDICTS
    assert not ours(docker_engine, box)
    owner = {"label": f"{sd.OWNER_LABEL}={box.owner}"}
    assert docker_engine.volumes.list(filters=owner) == []


def test_containers_started_ahead_are_as_hardened_and_never_one_too_many(
    docker_engine, sandbox, tmp_path
):
    """Told two hand-ins are coming, the sandbox starts the second's container while the
    first is graded (grader/sandbox/docker/warm.py): hardened as a cold one, its harness
    waiting for its request; the second run takes it and grades as a cold run would, and
    nothing more is started or left behind."""
    from grader.sandbox.docker.warm import WAIT_COMMAND

    assert sandbox.warm is not None
    taken = []
    take = sandbox.warm.take
    sandbox.warm.take = lambda req: taken.append(take(req)) or taken[-1]
    sandbox.expect(2)
    first = sandbox.run(request(submission(tmp_path, REFERENCE, "first")))
    assert not first.error, first.log
    ahead = wait_for(
        lambda: [c for c in ours(docker_engine, sandbox) if c.status == "running"], APPEAR
    )
    assert len(ahead) == 1, "one container ahead, for the one hand-in still to come"
    waiting = ahead[0]
    cold = sandbox.create_kwargs(request(tmp_path), "x", tmp_path, tmp_path)
    # It is told the checks file, to load what the checks import of the kit ahead too.
    checks = cold["command"][cold["command"].index("--checks-file") + 1]
    assert waiting.attrs["Config"]["Cmd"] == [*WAIT_COMMAND, checks]
    host = waiting.attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == sorted(cold["cap_add"])
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["Privileged"] is False
    assert host["Memory"] == sandbox.limits.memory_mib * 2**20
    assert host["PidsLimit"] == sandbox.limits.pids
    mounts = {m["Destination"]: m["RW"] for m in waiting.attrs["Mounts"]}
    assert mounts == MOUNTS
    second = sandbox.run(request(submission(tmp_path, REFERENCE, "second")))
    assert taken[0] is None and taken[1] is not None and taken[1].name == waiting.name
    assert not second.error, second.log
    assert verdicts(second.report) == verdicts(first.report)
    assert set(verdicts(second.report).values()) == {"passed"}
    assert not ours(docker_engine, sandbox), "no container started past the last hand-in"


def test_a_warm_container_grades_a_faulty_hand_in_as_a_cold_one(docker_engine, sandbox, tmp_path):
    faulty = REFERENCE.replace("self.outbox += data", "self.outbox += data.upper()")
    assert faulty != REFERENCE
    cold = sandbox.run(request(submission(tmp_path, faulty, "cold")))
    sandbox.expect(2)
    sandbox.run(request(submission(tmp_path, REFERENCE, "first")))
    warm = sandbox.run(request(submission(tmp_path, faulty, "warm")))
    assert not warm.error, warm.log
    assert verdicts(warm.report) == verdicts(cold.report)
    assert verdicts(warm.report)["echo"] == "failed"
