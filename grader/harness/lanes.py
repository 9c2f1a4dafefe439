"""Checks at the same time: each in a process of its own, forked before any check ran.

Every check starts its own run of the student's program, so most of a grading is waiting on
one run while the others could be running. Here the first check runs alone, in the harness
itself: it is `runs`, and when the program cannot start, every other check is "not judged"
at once, one after another as before, and a program that hogs at start (memory, processes)
is never started several times over. Otherwise the rest run `lanes` at a time, each in a
child forked from the harness before anything ran (no thread, no run, no state of a check),
each child's program as its own uid where the harness switches uid (the lane's), so that no
run can signal another's. The evidence of a check is its own run's (per process); pytest's
reports come back as pytest-xdist relays them, and are logged in the order of the checks.
"""

from __future__ import annotations

import gc
import json
import os
import select
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.harness.family import LANE_PIDS
from grader.proc import become_subreaper

# A child that has not said why it ended: it was killed, or the harness's code failed.
CHILD_FAILED = "the check's process ended without a verdict ({how})"


@dataclass
class _Child:
    index: int
    pid: int
    go: int  # write end: the lane number to run in, or nothing (closed): not needed
    out: Path  # where the child leaves its reports
    pidfd: int = -1
    lane: int = -1


def runtestloop(session: pytest.Session, lanes: int, lane_attr: str, work: Path) -> bool:
    """pytest_runtestloop with the checks after the first run `lanes` at a time. A child
    learns its lane by `config.<lane_attr>`, read by the plugin where it starts runs. The
    children's reports go through a folder of the harness's own (0700) under `work`."""
    config = session.config
    items = list(session.items)
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="lanes-", dir=work))
    children: list[_Child] = []
    # What the harness has built so far stays out of the collector's walks: they would touch
    # (and so copy) every page each child shares with the harness.
    gc.freeze()
    for i in range(1, len(items)):
        children.append(_fork(config, items, i, folder, lane_attr, children))
    try:
        _run_here(items[0], items[1] if len(items) > 1 else None)
        if getattr(config, "_sg_start_failure", None) or session.shouldfail or session.shouldstop:
            # The program did not start: the rest fail at once, here, one after another.
            for child in children:
                os.close(child.go)
                child.go = -1
            for i, item in enumerate(items[1:], start=1):
                _run_here(item, items[i + 1] if i + 1 < len(items) else None)
            return True
        _run_in_lanes(config, items, children, lanes)
    finally:
        for child in children:
            if child.go >= 0:
                os.close(child.go)
            _reap(child)
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()
    return True


def _run_here(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)


def _fork(config, items, index: int, folder: Path, attr: str, before: list[_Child]) -> _Child:
    read_go, write_go = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait to be told its lane, or that it is not needed
        code = 1
        try:
            LANE_PIDS.clear()
            # Only the harness may hold the other lanes' ends: a lane told nothing sees the
            # end of its pipe once the harness closes it.
            for other in before:
                os.close(other.go)
                os.close(other.pidfd)
            os.close(write_go)
            lane = _read_lane(read_go)
            if lane is not None:
                _child(config, items[index], lane, _out(folder, index), attr)
            code = 0
        except BaseException:
            traceback.print_exc()  # the harness's log: the check is reported as the kit's fault
        finally:
            os._exit(code)
    os.close(read_go)
    LANE_PIDS.add(pid)
    return _Child(index, pid, write_go, _out(folder, index), os.pidfd_open(pid))


def _out(folder: Path, index: int) -> Path:
    return folder / f"{index}.json"


def _read_lane(fd: int) -> int | None:
    data = b""
    while not data.endswith(b"\n") and (chunk := os.read(fd, 16)):
        data += chunk
    os.close(fd)
    return int(data) if data.strip() else None


def _child(config, item: pytest.Item, lane: int, out: Path, attr: str) -> None:
    """Run one check as the harness would, keep its reports (xdist's serialisable form)."""
    become_subreaper()
    setattr(config, attr, lane)
    # The parent's terminal shows the results; the child's own dots would only repeat them.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    reports: list[dict] = []

    class Keep:
        @staticmethod
        def pytest_runtest_logreport(report):
            reports.append(config.hook.pytest_report_to_serializable(config=config, report=report))

    config.pluginmanager.register(Keep(), "socketgrade-lane-reports")
    item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(reports, default=str), encoding="utf-8")
    tmp.replace(out)


def _run_in_lanes(config, items, children: list[_Child], lanes: int) -> None:
    waiting = list(children)
    running: dict[int, _Child] = {}  # pidfd -> child
    free = list(range(lanes))
    done: dict[int, _Child] = {}
    shown = 1  # items[0] ran here and is logged
    while waiting or running:
        while waiting and free:
            child = waiting.pop(0)
            child.lane = free.pop(0)
            os.write(child.go, b"%d\n" % child.lane)
            os.close(child.go)
            child.go = -1
            running[child.pidfd] = child
        ready, _, _ = select.select(list(running), [], [])
        for fd in ready:
            child = running.pop(fd)
            free.append(child.lane)
            done[child.index] = child
        # Logged in the checks' order, each as soon as all before it are in.
        while shown < len(items) and shown in done:
            _log(config, items[shown], done[shown])
            shown += 1


def _log(config, item: pytest.Item, child: _Child) -> None:
    status = _reap(child)
    try:
        data = json.loads(child.out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    hook = item.ihook
    hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    if data:
        for raw in data:
            report = config.hook.pytest_report_from_serializable(config=config, data=raw)
            hook.pytest_runtest_logreport(report=report)
    else:
        # The kit's failure, not the student's: the host reads an exception in a check as
        # "the grader itself failed while running this check".
        error = RuntimeError(CHILD_FAILED.format(how=_how(status)))
        call = pytest.CallInfo.from_call(lambda: _raise(error), "call")
        hook.pytest_runtest_logreport(report=pytest.TestReport.from_item_and_call(item, call))
    hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


def _raise(error: Exception) -> None:
    raise error


def _how(status: int | None) -> str:
    if status is None:
        return "not reaped"
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _reap(child: _Child) -> int | None:
    if child.pid <= 0:
        return None
    try:
        _, status = os.waitpid(child.pid, 0)
    except ChildProcessError:
        status = None
    LANE_PIDS.discard(child.pid)
    child.pid = 0
    if child.pidfd >= 0:
        os.close(child.pidfd)
        child.pidfd = -1
    return status
