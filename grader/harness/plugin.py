"""The kit's pytest plugin: the fixtures every assignment's checks share."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader.contract import (
    PLUGIN_OPTIONS,
    PROCESSES_KEY,
    REASON_KEY,
    STORY_KEY,
    Message,
    TraceKind,
    join,
    msg,
)
from grader.harness import procobs, sockdiag
from grader.harness.clients import Story
from grader.harness.forkserver import SERVERS
from grader.harness.lanes import runtestloop as lanes_runtestloop
from grader.harness.launch import StudentProcess, become_subreaper

# Re-exported: the checks libraries import these from the plugin.
from grader.harness.report import (  # noqa: F401
    OUTPUT_IN_REPORT,
    clean_traceback,
    process_report,
    story_report,
    trace_notes,
)
from grader.harness.server import POLL, SETTLE_CPU, Reply, Server, describe_death, fail  # noqa: F401
from grader.harness.timing import pauses

# A server must listen within this bound: far above the fraction of a second a tutorial
# server takes, so that a loaded machine or a starved sandbox never turns "slow" into "broken".
START_TIMEOUT = 10.0
# ... but one seen asleep this long (every thread, no CPU used) before it listens is waiting
# for something that will not come (a sleep, a read of a pipe): it is judged then. Far above
# the moments a starting interpreter sleeps reading its files.
START_ASLEEP = 3.0
# The port offered to submissions that read PORT or argv[1] (the tutorial's own); those that
# hard-code one are moved to an ephemeral port by the launcher, and the grader finds it from
# the kernel, so several gradings never collide.
OFFERED_PORT = "8888"


def pytest_addoption(parser):
    group = parser.getgroup("socketgrade")
    # The spelling is grader.contract's: HarnessArgs.plugin_argv() writes these.
    group.addoption(PLUGIN_OPTIONS["submission"], help="the submission folder")
    group.addoption(PLUGIN_OPTIONS["entry"], default="server.py", help="entry file inside it")
    group.addoption(PLUGIN_OPTIONS["work"], help="scratch folder for copies of the submission")
    group.addoption(
        PLUGIN_OPTIONS["user"],
        type=int,
        default=None,
        help="uid (and gid) the student's code runs as",
    )
    group.addoption(
        PLUGIN_OPTIONS["python"], default=None, help="interpreter for the student's code"
    )
    group.addoption(PLUGIN_OPTIONS["only"], default="", help="comma-separated check ids to run")
    group.addoption(
        PLUGIN_OPTIONS["lanes"], type=int, default=1, help="checks run at once (1: one by one)"
    )
    group.addoption(
        PLUGIN_OPTIONS["no_fork_server"],
        action="store_true",
        help="start each run as a fresh interpreter, not forked from a server",
    )


def pytest_configure(config):
    config._sg_start_failure = None
    config._sg_runs = 0
    config._sg_lane = 0  # the lane a check runs in (lanes.py); its program's uid is user + lane
    become_subreaper()


def pytest_sessionstart(session):
    """The runs' fork servers (forkserver.py), started before the checks are collected."""
    config = session.config
    if config.option.collectonly or config.getoption(PLUGIN_OPTIONS["no_fork_server"]):
        return
    sub = Submission(config)
    SERVERS.start(sub.python or sys.executable, sub.work, config.getoption(PLUGIN_OPTIONS["lanes"]))


def pytest_unconfigure(config):
    SERVERS.stop()


# Fewer checks than this gain nothing from lanes: the first always runs alone.
LANES_FROM = 3


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """The checks after the first, several at once (grader/harness/lanes.py)."""
    config = session.config
    lanes = config.getoption(PLUGIN_OPTIONS["lanes"])
    if lanes <= 1 or len(session.items) < LANES_FROM or config.option.collectonly:
        return None  # pytest's own loop, one check after another
    if session.testsfailed and not config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    sockdiag.check_ways()  # once, here: not again in each lane
    return lanes_runtestloop(session, lanes, "_sg_lane", Submission(config).work, _rank)


def pytest_runtest_setup(item):
    """A check looks up its own clients' connections, not those of the checks before it."""
    sockdiag.forget()


# Checks that hold long observation windows or several runs, started first in the lanes (in
# this order), so that a grading takes about as long as the longest of them; the others
# fill the lanes around them. Only the order they start in: their verdicts, and the order
# they are reported in, are the same.
LONG_FIRST = ("robustness", "waits_its_turn", "idle_cpu", "nonblocking", "connect_wait", "cleanup")


def _rank(item) -> int:
    name = check_id(item)
    return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)


def pytest_json_runtest_metadata(item, call):
    """The verdict's sentence as a Message (fail() attaches it), for the host to translate."""
    reason = getattr(call.excinfo.value, "sg_reason", None) if call.excinfo else None
    return {REASON_KEY: reason.to_json()} if reason is not None else None


def check_id(item) -> str:
    name = getattr(item, "originalname", None) or item.name
    return name[5:] if name.startswith("test_") else name


def _wanted(config) -> list[str]:
    return [c for c in config.getoption(PLUGIN_OPTIONS["only"]).split(",") if c]


def pytest_collection_modifyitems(config, items):
    wanted = _wanted(config)
    if not wanted:
        return
    keep: list = []
    drop: list = []
    for item in items:
        (keep if check_id(item) in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def story(json_metadata):
    s = Story()
    yield s
    json_metadata[STORY_KEY] = story_report(s).to_json()


class Submission:
    """Where the submission is and how its copies are made."""

    def __init__(self, config):
        self.source = Path(config.getoption(PLUGIN_OPTIONS["submission"]) or ".").resolve()
        self.entry = config.getoption(PLUGIN_OPTIONS["entry"])
        work = config.getoption(PLUGIN_OPTIONS["work"])
        self.work = Path(work).resolve() if work else Path(os.environ.get("TMPDIR", "/tmp"))
        self.user = config.getoption(PLUGIN_OPTIONS["user"])
        if self.user is not None:
            # Each lane's program has a uid of its own: no run can signal another's.
            self.user += config._sg_lane
        self.python = config.getoption(PLUGIN_OPTIONS["python"])
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


def start_failure_reason(proc: StudentProcess, entry: str, timeout: float) -> Message:
    if not proc.alive():
        return msg(
            "{entry} stopped before it listened: {death}", entry=entry, death=describe_death(proc)
        )
    where = procobs.where(proc.pid)
    total = (proc.stdout.total if proc.stdout else 0) + (proc.stderr.total if proc.stderr else 0)
    parts: list[Message] = []
    if where.get("state") == "R":
        parts.append(msg("it was running on the CPU"))
    elif where.get("syscall"):
        parts.append(msg("it was blocked in {call}()", call=where["syscall"]))
    elif where.get("wchan"):
        parts.append(msg("it was asleep in {wchan}", wchan=where["wchan"]))
    if any(t is not None and t.capped for t in (proc.stdout, proc.stderr)):
        parts.append(msg("it had flooded its output (over 64 MiB printed)"))
    elif total > 1024 * 1024:
        parts.append(msg("it had printed {mb:.1f} MB", mb=total / 1e6))
    still = msg(
        "{entry} was still running after {timeout:g} s but listened on no TCP port",
        entry=entry,
        timeout=timeout,
    )
    return join([still, *parts], "; ")


@pytest.fixture
def launch(submission: Submission, json_metadata, story):
    """Factory: start the student's entry file (fresh copy) with given args and env."""
    started: list[StudentProcess] = []

    def _launch(args=(), env=None) -> StudentProcess:
        workdir = submission.fresh_copy()
        proc = StudentProcess(
            entry=workdir / submission.entry,
            workdir=workdir,
            args=list(args),
            env=dict(env or {}),
            user=submission.user,
            python=submission.python,
        )
        proc.start()
        started.append(proc)
        return proc

    try:
        yield _launch
    finally:
        for proc in started:
            proc.kill()
        if started:
            json_metadata[PROCESSES_KEY] = [process_report(p).to_json() for p in started]
        for proc in started:
            discard(proc)


def discard(proc: StudentProcess) -> None:
    """Remove a finished run's copy: what it wrote (a full disk, say) must not reach the
    next run."""
    shutil.rmtree(proc.workdir.parent, ignore_errors=True)


NOT_JUDGED = msg("not judged: see runs")


def runs_selected(config) -> bool:
    wanted = _wanted(config)
    return not wanted or "runs" in wanted


def _start_server(
    config, submission: Submission, story: Story, started: list[Server], check: str = "runs"
) -> Server:
    """Start one run and wait (with a deadline) until it listens. The run is added to
    `started` at once, so that even a failed start is torn down and its output reported.
    Why a server cannot start is said once, by `runs`; every other check says it could not
    judge, rather than repeating that reason as if it were its own."""
    defer = check != "runs" and runs_selected(config)
    if config._sg_start_failure:
        fail(
            NOT_JUDGED
            if runs_selected(config)
            else msg("not judged: the server did not start: {why}", why=config._sg_start_failure)
        )
    workdir = submission.fresh_copy()
    proc = StudentProcess(
        entry=workdir / submission.entry,
        workdir=workdir,
        args=[OFFERED_PORT],
        env={"PORT": OFFERED_PORT},
        user=submission.user,
        python=submission.python,
    )
    proc.start()
    srv = Server(proc, story)
    started.append(srv)
    listening = None
    deadline = time.monotonic() + START_TIMEOUT
    still = procobs.Stillness()
    for pause in pauses():
        if time.monotonic() >= deadline or not proc.alive():
            break
        listeners = procobs.listeners(proc.pid)
        if listeners:
            listening = sorted(listeners, key=lambda c: ":" in c.local[0])[0]
            break
        # Asleep this long without a listening socket, it waits for something that never
        # comes: a starved program would be waiting for a CPU instead, not asleep.
        if still.look(srv.activity()) >= START_ASLEEP:
            break
        time.sleep(pause)
    if listening is None:
        waited = min(START_TIMEOUT, round(proc.elapsed(), 1))
        reason = start_failure_reason(proc, submission.entry, waited)
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
    binds = [e for e in proc.trace() if e["ev"] == TraceKind.BIND.value]
    if binds and isinstance(binds[-1].get("requested"), list):
        srv.requested_port = binds[-1]["requested"][1]
    address = f"{srv.host}:{srv.port}"
    if srv.requested_port:
        story.saw(
            msg(
                "the server listened on {address} (it asked for port {port}) after {seconds:.2f} s",
                address=address,
                port=srv.requested_port,
                seconds=proc.elapsed(),
            )
        )
    else:
        story.saw(
            msg(
                "the server listened on {address} after {seconds:.2f} s",
                address=address,
                seconds=proc.elapsed(),
            )
        )
    story.measure("start_seconds", round(proc.elapsed(), 3))
    return srv


@pytest.fixture
def start_server(request, submission: Submission, story: Story, json_metadata):
    """Factory: a fresh run of the student's server, listening. Every run is killed, with
    everything it started, when the check ends."""
    servers: list[Server] = []

    def _start() -> Server:
        return _start_server(request.config, submission, story, servers, check_id(request.node))

    try:
        yield _start
    finally:
        for srv in servers:
            srv.teardown()
        if servers:
            json_metadata[PROCESSES_KEY] = [process_report(s.proc).to_json() for s in servers]
        for srv in servers:
            discard(srv.proc)


@pytest.fixture
def server(start_server) -> Server:
    return start_server()
