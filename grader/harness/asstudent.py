"""Reads of the student's /proc as the student: the calling thread's fsuid and fsgid set to
the student's uid for the duration, and back to the harness's own after, even on error."""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

# Why: the kernel lets a process read another's /proc/PID/fd, fdinfo, syscall and wchan only
# when ptrace_may_access() agrees. For these files it checks the caller's *filesystem* ids
# (PTRACE_MODE_*_FSCREDS): a caller whose fsuid and fsgid are the target's own passes without
# CAP_SYS_PTRACE, which platform containers (and Docker's default set) do not grant. fsuid is
# per thread in Linux, so only the thread doing the read changes, and only for that read.
# glibc's setfsuid/setfsgid are plain per-thread system calls (unlike setuid, which glibc
# broadcasts to every thread).

T = TypeVar("T")

_STUDENT: dict[str, int | None] = {"uid": None}
_DEPTH = threading.local()


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def use(uid: int | None) -> None:
    """The uid (and gid) the student's program runs as; None: it runs as the harness does,
    and reads need no change of identity."""
    _STUDENT["uid"] = uid


def student() -> int | None:
    return _STUDENT["uid"]


def fsids() -> tuple[int, int]:
    """The calling thread's (fsuid, fsgid): a call with -1 changes nothing and returns them."""
    if _LIBC is None:
        return os.geteuid(), os.getegid()
    return _LIBC.setfsuid(-1), _LIBC.setfsgid(-1)


def _set(uid: int, gid: int) -> None:
    assert _LIBC is not None
    # fsgid first while fsuid is still ours (the kernel then still grants CAP_SETGID's use),
    # and on the way back fsuid first, which gives the thread its file capabilities again.
    if uid == 0:
        _LIBC.setfsuid(uid)
        _LIBC.setfsgid(gid)
    else:
        _LIBC.setfsgid(gid)
        _LIBC.setfsuid(uid)
    if fsids() != (uid, gid):
        raise RuntimeError(f"could not set this thread's fsuid/fsgid to {uid}/{gid}")


@contextmanager
def as_student() -> Iterator[None]:
    """Within it, this thread reads files as the student's uid does. Nothing changes when no
    student uid is set, when the harness is not root, or when already inside (nesting)."""
    uid = _STUDENT["uid"]
    depth = getattr(_DEPTH, "n", 0)
    if uid is None or _LIBC is None or os.geteuid() != 0 or depth:
        _DEPTH.n = depth + 1
        try:
            yield
        finally:
            _DEPTH.n = depth
        return
    own = fsids()
    _DEPTH.n = 1
    try:
        _set(uid, uid)
        yield
    finally:
        _DEPTH.n = 0
        _set(*own)


def reads_as_student(func: Callable[..., T]) -> Callable[..., T]:
    """The function's /proc reads are made as the student (see as_student)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with as_student():
            return func(*args, **kwargs)

    return wrapper
