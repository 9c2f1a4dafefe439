"""Checks at the same time: each lane a process of its own, forked before any check ran.

Every check starts its own run of the student's program, so most of a grading is waiting on
one run while the others could be running. Here the first check runs alone, in the harness
itself: it is `runs`, and when the program cannot start, every other check is "not judged"
at once, one after another as before, and a program that hogs at start (memory, processes)
is never started several times over. Otherwise the rest run `lanes` at a time, in lanes
forked from the harness before anything ran (no thread, no run, no state of a check). A
lane takes the next check as soon as it is free, and runs it as the harness runs its checks
one after another; its programs run as the lane's own uid where the harness switches uid,
so that no run can signal another's, and are forked from the lane's own fork server. The
evidence of a check is its own run's (per process); pytest's reports come back as
pytest-xdist relays them, and are logged in the order of the checks.
"""

from __future__ import annotations

import gc
import json
import os
import select
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.harness.family import LANE_PIDS
from grader.harness.forkserver import SERVERS
from grader.proc import become_subreaper

# A lane that ended in a check without a verdict: it was killed, or the harness's code failed.
CHILD_FAILED = "the check's process ended without a verdict ({how})"
# What a check finds in the harness's state as it starts in a lane: as after `runs`, which
# passed. A check that saw the program fail to start does not make the next ones in the
# same lane "not judged".
FRESH_STATE = {"_sg_start_failure": None}


@dataclass
class _Lane:
    lane: int
    pid: int
    tasks: int  # write end: the index of the next check, one line each; closed: no more
    done: int  # read end: the index of each check the lane has finished
    pidfd: int
    check: int = 0  # the check it runs now; 0: none


def runtestloop(
    session: pytest.Session,
    lanes: int,
    lane_attr: str,
    work: Path,
    rank: Callable[[pytest.Item], int] = lambda item: 0,
) -> bool:
    """pytest_runtestloop with the checks after the first run `lanes` at a time. A lane
    knows its number by `config.<lane_attr>`, read by the plugin where it starts runs. The
    lanes' reports go through a folder of the harness's own (0700) under `work`. The checks
    are handed out by `rank` (lowest first, then in their order): the long ones first, so
    that none of them is left to start last; they are logged in their order all the same."""
    config = session.config
    items = list(session.items)
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="lanes-", dir=work))
    workers: list[_Lane] = []
    # What the harness has built so far stays out of the collector's walks: they would touch
    # (and so copy) every page each lane shares with the harness.
    gc.freeze()
    SERVERS.ready()  # the lanes' fork servers are known to each lane (family.SERVER_PIDS)
    for lane in range(min(lanes, len(items) - 1)):
        workers.append(_fork(config, items, lane, folder, lane_attr, workers))
    try:
        _run_here(items[0], items[1] if len(items) > 1 else None)
        if getattr(config, "_sg_start_failure", None) or session.shouldfail or session.shouldstop:
            # The program did not start: the rest fail at once, here, one after another.
            _close_tasks(workers)
            for i, item in enumerate(items[1:], start=1):
                _run_here(item, items[i + 1] if i + 1 < len(items) else None)
            return True
        _run_in_lanes(config, items, workers, folder, rank)
    finally:
        _close_tasks(workers)
        for worker in workers:
            _reap(worker)
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()
    return True


def _close_tasks(workers: list[_Lane]) -> None:
    for worker in workers:
        if worker.tasks >= 0:
            os.close(worker.tasks)
            worker.tasks = -1


def _run_here(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)


def _fork(config, items, lane: int, folder: Path, attr: str, before: list[_Lane]) -> _Lane:
    read_tasks, write_tasks = os.pipe()
    read_done, write_done = os.pipe()
    pid = os.fork()
    if pid == 0:  # the lane: run each check it is given until it is given no more
        code = 1
        try:
            LANE_PIDS.clear()
            # Only the harness may hold the other lanes' ends: a lane sees the end of its
            # tasks once the harness closes them.
            for other in before:
                for fd in (other.tasks, other.done, other.pidfd):
                    os.close(fd)
            os.close(write_tasks)
            os.close(read_done)
            _lane(config, items, lane, folder, attr, read_tasks, write_done)
            code = 0
        except BaseException:
            traceback.print_exc()  # the harness's log: the check is reported as the kit's fault
        finally:
            os._exit(code)
    os.close(read_tasks)
    os.close(write_done)
    LANE_PIDS.add(pid)
    return _Lane(lane, pid, write_tasks, read_done, os.pidfd_open(pid))


def _out(folder: Path, index: int) -> Path:
    return folder / f"{index}.json"


def _lines(fd: int):
    """The numbers written to `fd`, one per line, until its end."""
    data = b""
    while chunk := os.read(fd, 64):
        data += chunk
        while b"\n" in data:
            line, data = data.split(b"\n", 1)
            yield int(line)


def _lane(config, items, lane: int, folder: Path, attr: str, tasks: int, done: int) -> None:
    """Run each check as the harness would one after another; keep each one's reports (in
    xdist's serialisable form) in its own file, then say it is done."""
    become_subreaper()
    SERVERS.enter_lane(lane)
    setattr(config, attr, lane)
    # The parent's terminal shows the results; the lane's own dots would only repeat them.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    reports: list[dict] = []

    class Keep:
        @staticmethod
        def pytest_runtest_logreport(report):
            reports.append(config.hook.pytest_report_to_serializable(config=config, report=report))

    config.pluginmanager.register(Keep(), "socketgrade-lane-reports")
    for index in _lines(tasks):
        for name, value in FRESH_STATE.items():
            setattr(config, name, value)
        reports.clear()
        item = items[index]
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
        out = _out(folder, index)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(reports, default=str), encoding="utf-8")
        tmp.replace(out)
        os.write(done, b"%d\n" % index)


def _run_in_lanes(config, items, workers: list[_Lane], folder: Path, rank) -> None:
    waiting = sorted(range(1, len(items)), key=lambda i: rank(items[i]))
    free = list(workers)
    done: dict[int, str | None] = {}  # index -> None: finished; else how its lane ended
    shown = 1  # items[0] ran here and is logged
    while waiting or any(w.check for w in workers):
        while waiting and free:
            worker = free.pop(0)
            try:
                os.write(worker.tasks, b"%d\n" % waiting[0])
            except BrokenPipeError:  # the lane ended between two checks: another runs it
                _reap(worker)
                continue
            worker.check = waiting.pop(0)
        busy = {w.done: w for w in workers if w.check}
        busy.update({w.pidfd: w for w in workers if w.check})
        if not busy:  # every lane has ended: nobody is left to run these
            for index in waiting:
                done[index] = "no lane was left to run it"
            waiting.clear()
        else:
            for fd in select.select(list(busy), [], [])[0]:
                worker = busy[fd]
                if not worker.check:
                    continue  # both its ends were ready: seen already
                # Ready or ended, its pipe says whether it finished: this read never waits.
                line = os.read(worker.done, 64)
                if line.strip():
                    done[worker.check] = None
                    free.append(worker)
                else:  # the lane ended in the middle of a check
                    done[worker.check] = _how(_reap(worker))
                worker.check = 0
        shown = _log_ready(config, items, done, folder, shown)


def _log_ready(config, items, done: dict[int, str | None], folder: Path, shown: int) -> int:
    """Log the checks in their order, each as soon as all before it are in."""
    while shown < len(items) and shown in done:
        _log(config, items[shown], _out(folder, shown), done[shown])
        shown += 1
    return shown


def _log(config, item: pytest.Item, out: Path, how: str | None) -> None:
    try:
        data = json.loads(out.read_text(encoding="utf-8")) if how is None else None
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
        error = RuntimeError(CHILD_FAILED.format(how=how or "no report"))
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


def _reap(worker: _Lane) -> int | None:
    if worker.pid <= 0:
        return None
    try:
        _, status = os.waitpid(worker.pid, 0)
    except ChildProcessError:
        status = None
    LANE_PIDS.discard(worker.pid)
    worker.pid = 0
    for fd in (worker.pidfd, worker.done):
        os.close(fd)
    worker.pidfd = worker.done = -1
    return status
