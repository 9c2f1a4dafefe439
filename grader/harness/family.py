"""The harness's own children: its lanes (lanes.py), its fork servers (forkserver.py), and
the rest: runs and their orphans, some of them the children of this process's server. And
how a process's children are found: from the kernel's list of each thread's children
(/proc/PID/task/TID/children), not by reading every process's /proc/PID/stat as psutil
does, which on a machine with many processes cost the harness most of its kernel time."""

from __future__ import annotations

import os

import psutil

# The harness's lanes: never taken for the student's orphans, never killed by a run's end.
LANE_PIDS: set[int] = set()
# The fork servers, likewise; and the one this process's runs are forked from (None: none).
SERVER_PIDS: set[int] = set()
SERVING: int | None = None


def child_pids(pid: int) -> list[int]:
    """The pids of `pid`'s children; psutil's walk where the kernel has no such list."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found += [int(c) for c in fh.read().split()]
        except FileNotFoundError:
            if os.path.exists(f"/proc/{pid}/task/{tid}"):
                return _walked(pid)  # the thread is there, the list is not: an older kernel
        except OSError:
            return _walked(pid)
    return found


def _walked(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def descendant_pids(pid: int) -> list[int]:
    """Every process below `pid`, children first."""
    found: list[int] = []
    seen = {pid}
    todo = [pid]
    while todo:
        for child in child_pids(todo.pop(0)):
            if child not in seen:
                seen.add(child)
                found.append(child)
                todo.append(child)
    return found


def processes(pids: list[int]) -> list[psutil.Process]:
    """psutil's handles of those still there."""
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return out


def own_children() -> list[psutil.Process]:
    """The runs and what they orphaned: the children of this process and of its fork server
    that are neither lanes nor servers."""
    keep = LANE_PIDS | SERVER_PIDS
    pids = child_pids(os.getpid()) + (child_pids(SERVING) if SERVING is not None else [])
    return processes([p for p in pids if p not in keep])
