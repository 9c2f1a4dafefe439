"""The harness's own children: its lanes (lanes.py), its fork servers (forkserver.py), and
the rest: runs and their orphans, some of them the children of this process's server."""

from __future__ import annotations

import psutil

# The harness's lanes: never taken for the student's orphans, never killed by a run's end.
LANE_PIDS: set[int] = set()
# The fork servers, likewise; and the one this process's runs are forked from (None: none).
SERVER_PIDS: set[int] = set()
SERVING: int | None = None


def own_children() -> list[psutil.Process]:
    """The runs and what they orphaned: the children of this process and of its fork server
    that are neither lanes nor servers."""
    keep = LANE_PIDS | SERVER_PIDS
    found: list[psutil.Process] = []
    for pid in (None,) if SERVING is None else (None, SERVING):
        try:
            found += [c for c in psutil.Process(pid).children() if c.pid not in keep]
        except psutil.Error:
            pass
    return found
