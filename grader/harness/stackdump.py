"""Where the student's interpreter stands right now: the kit signals it, the tracer's
faulthandler writes the main thread's stack to a file, and the innermost frame of the
student's own code is the line a reason quotes.

The signal is SIGUSR2: the tutorial's programs never use it, the Python runtime leaves it
alone (SIGUSR1 is the one tools and frameworks most often claim), and it is not a real-time
signal, whose low numbers glibc keeps for itself. Its default action ends the process, so it
is sent only when /proc says the program catches it (faulthandler's handler is in place) and
does not block it: a program that took the signal over, ignores or blocks it, is left alone,
and its reason keeps the kernel's evidence without a line.

The tracer's handler is a Python-level one that calls faulthandler.dump_traceback (boot.py
says why not faulthandler's own C handler: errno). It runs in the main thread as soon as the
interpreter gets control: a server blocked in recv() or select() is interrupted, dumps, and
its call is restarted (PEP 475); one spinning in Python code dumps at once; one stuck in C
code does not answer before the deadline, and its reason keeps the kernel's evidence. The
dump only names a line: where the server waits or spins is the kernel's reading, never the
dump's."""

from __future__ import annotations

import os
import re
import signal
import stat
import time
from pathlib import Path

from grader.harness.timing import STACK_DEADLINE, STACK_POLL

STACK_SIGNAL = signal.SIGUSR2
STACK_BYTES = 64 * 1024  # one dump of a deep stack is a few KiB; the student writes the file
# A thread's header in a dump: the main thread's block is the last (faulthandler lists the
# newest thread first), and a one-thread dump says "Stack".
HEADER = re.compile(
    r"^(?:Current thread|Thread) 0x[0-9a-f]+ .*:$|^Stack \(most recent call first\):$"
)
FRAME = re.compile(r'^  File "(?P<path>.+)", line (?P<line>\d+) in ')


def _mask(pid: int, field: str) -> int:
    """A signal mask of /proc/PID/status (SigCgt, SigBlk, SigIgn); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def answers(pid: int, signum: int = STACK_SIGNAL) -> bool:
    """Whether the process catches `signum` and does not block or ignore it: only then can
    sending it neither end the program nor wait in vain."""
    bit = 1 << (signum - 1)
    return bool(_mask(pid, "SigCgt") & bit) and not (
        (_mask(pid, "SigBlk") | _mask(pid, "SigIgn")) & bit
    )


def innermost_site(dump: str, root: Path) -> str | None:
    """'server.py:14': the innermost frame under `root` of the last thread in a dump (the
    main thread), relative to `root`; None when it has none."""
    base = os.path.realpath(root)
    blocks: list[list[str]] = [[]]
    for line in dump.splitlines():
        if HEADER.match(line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    for block in reversed(blocks):
        frames = [m for m in map(FRAME.match, block) if m]
        if not frames:
            continue
        for frame in frames:
            path = frame["path"]
            if path.startswith(base + os.sep) and ".." not in path:
                return f"{os.path.relpath(path, base)}:{frame['line']}"
        return None
    return None


def _size(path: Path) -> int:
    try:
        info = os.lstat(path)
    except OSError:
        return -1
    return info.st_size if stat.S_ISREG(info.st_mode) else -1


def _read_from(path: Path, offset: int) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return ""
        fh.seek(offset)
        return fh.read(STACK_BYTES).decode("utf-8", errors="replace")


def current_site(
    pid: int, path: Path | None, root: Path, deadline: float = STACK_DEADLINE
) -> str | None:
    """The student's line the process stands at now, from a fresh dump; None when it cannot
    be had (no dump file, the signal not caught, the process gone, no dump by the deadline)."""
    if path is None or not answers(pid):
        return None
    start = _size(path)
    if start < 0:
        return None
    try:
        os.kill(pid, STACK_SIGNAL)
    except OSError:
        return None
    end = time.monotonic() + deadline
    seen = start
    while time.monotonic() < end:
        time.sleep(STACK_POLL)
        size = _size(path)
        # Written in many small writes: complete once it stops growing between two looks.
        if size > start and size == seen:
            return innermost_site(_read_from(path, start), root)
        seen = size
    return innermost_site(_read_from(path, start), root) if seen > start else None
