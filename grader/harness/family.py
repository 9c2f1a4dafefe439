"""The harness's own children: its lanes (lanes.py), and the rest: runs and their orphans."""

from __future__ import annotations

import psutil

# The harness's lanes: never taken for the student's orphans, never killed by a run's end.
LANE_PIDS: set[int] = set()


def own_children() -> list[psutil.Process]:
    """The harness's children that are not its lanes: runs and what they orphaned."""
    try:
        return [c for c in psutil.Process().children() if c.pid not in LANE_PIDS]
    except psutil.Error:
        return []
