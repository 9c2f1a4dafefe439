"""The memory watchdog of a run: it polls the resident memory of the run's whole process tree
and kills the tree past the limit (grader/harness/launch.py starts one per run)."""

from __future__ import annotations

import os
import threading

import psutil

from grader.harness import asstudent
from grader.proc import freeze_and_kill

# How often the memory watchdog looks at the student's processes. Between two looks a
# program can allocate past the limit; in Docker the container's cgroup still bounds it.
MEMORY_POLL_SECONDS = 0.2
# How long stop() waits for the watchdog's thread: at most one poll plus one reading of the
# tree's memory, which a loaded machine can stretch well past MEMORY_POLL_SECONDS.
WATCHDOG_JOIN_SECONDS = 2.0


def resident_bytes(procs: list[psutil.Process], limit: int | None = None) -> int:
    """Resident memory of these processes together. RSS counts a page that forked processes
    share once in each of them, so a fork bomb of small processes would look huge: past
    `limit`, the proportional share (PSS, which counts a shared page once in all) decides.
    It is read only then, since reading it costs far more than RSS."""
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    if limit is None or total <= limit:
        return total
    shared = 0
    for p in procs:
        try:
            # smaps_rollup, like /proc/PID/fd, is read as the process's own uid.
            with asstudent.as_student():
                shared += p.memory_full_info().pss
        except psutil.Error:
            try:
                shared += p.memory_info().rss
            except psutil.Error:
                pass
    return shared


class MemoryWatchdog:
    """Polls the resident memory of a run's whole process tree and kills the tree when it
    goes past the limit, recording why on the run (`StudentProcess.killed_for`)."""

    def __init__(self, run, limit: int, interval: float = MEMORY_POLL_SECONDS):
        """`run`: the StudentProcess watched (its alive(), descendants(), killed_for)."""
        self.run = run
        self.limit = limit
        self.interval = interval
        self._stop = threading.Event()
        self._launched = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, daemon=True, name="socketgrade-memory-watchdog"
        )

    def start(self) -> None:
        """Started before the run (see StudentProcess.start); it watches once `launched()`."""
        self._thread.start()

    def launched(self) -> None:
        self._launched.set()

    def stop(self) -> None:
        self._stop.set()
        self._launched.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=WATCHDOG_JOIN_SECONDS)

    def _watch(self) -> None:
        self._launched.wait()
        while not self._stop.is_set() and self.run.alive():
            procs = [p for p in self.run.descendants() if p.pid != os.getpid()]
            used = resident_bytes(procs, self.limit)
            if used > self.limit:
                # Recorded before the kill, so whoever sees the death also sees why.
                self.run.killed_for = (
                    f"memory: {used / 2**20:.0f} MiB resident, limit {self.limit / 2**20:.0f} MiB"
                )
                # Signals only, never a wait: reaping here would take the exit status from
                # the run's Popen (it would then read 0). Reaping and closing the pipes stay
                # with kill(), which the run's owner calls as for any other run.
                freeze_and_kill(procs, timeout=None)
                return
            self._stop.wait(self.interval)
