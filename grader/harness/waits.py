"""Where a process waits, from the kernel: /proc/PID/syscall (the call and its descriptor),
/proc/PID/wchan and the task state; and which readiness mechanism (select, poll, epoll) that
wait belongs to, on x86_64 and aarch64."""

from __future__ import annotations

import platform

from grader.contract import Message, msg
from grader.harness.asstudent import reads_as_student

# Syscall numbers we name when telling where a server is stuck (per machine architecture).
# aarch64 has no select, poll or epoll_wait: its libc calls pselect6, ppoll and epoll_pwait.
SYSCALLS = {
    "x86_64": {
        0: "read",
        7: "poll",
        23: "select",
        43: "accept",
        45: "recvfrom",
        47: "recvmsg",
        44: "sendto",
        1: "write",
        232: "epoll_wait",
        281: "epoll_pwait",
        441: "epoll_pwait2",
        288: "accept4",
        270: "pselect6",
        271: "ppoll",
        35: "nanosleep",
        230: "clock_nanosleep",
        202: "futex",
        61: "wait4",
        42: "connect",
    },
    "aarch64": {
        63: "read",
        73: "ppoll",
        72: "pselect6",
        202: "accept",
        242: "accept4",
        207: "recvfrom",
        212: "recvmsg",
        206: "sendto",
        64: "write",
        22: "epoll_pwait",
        441: "epoll_pwait2",
        101: "nanosleep",
        115: "clock_nanosleep",
        98: "futex",
        260: "wait4",
        203: "connect",
    },
}
FD_ARG_SYSCALLS = {
    "read",
    "accept",
    "accept4",
    "recvfrom",
    "recvmsg",
    "sendto",
    "write",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "connect",
}

# The readiness mechanism each waiting syscall belongs to: what an assignment asks for is
# "select" or "poll" or "epoll", whichever variant the C library picked.
MECHANISM_OF_SYSCALL = {
    "select": "select",
    "pselect6": "select",
    "poll": "poll",
    "ppoll": "poll",
    "epoll_wait": "epoll",
    "epoll_pwait": "epoll",
    "epoll_pwait2": "epoll",
}
# The same from the kernel function a sleeping task waits in (/proc/PID/wchan, without its
# ".constprop.0"-like suffix), for when /proc/PID/syscall is unreadable (it needs ptrace
# access; wchan does not). select and poll both sleep in poll_schedule_timeout: from wchan
# alone they are one, "select|poll".
MECHANISM_OF_WCHAN = {
    "do_select": "select",
    "core_sys_select": "select",
    "do_sys_poll": "poll",
    "do_poll": "poll",
    "poll_schedule_timeout": "select|poll",
    "do_epoll_wait": "epoll",
    "ep_poll": "epoll",
}
# How each mechanism's wait is named to a student.
WAIT_CALL = {
    "select": "select()",
    "poll": "poll()",
    "epoll": "epoll_wait()",
    "select|poll": "select() or poll()",
}


def matches(mechanism: str | None, wanted: tuple[str, ...]) -> bool:
    """Whether a mechanism seen is one of those wanted ("select|poll" is either)."""
    return mechanism is not None and all(m in wanted for m in mechanism.split("|"))


@reads_as_student
def where(pid: int) -> dict:
    """Where the main thread sleeps: wchan and, when readable, the syscall and its fd."""
    info: dict = {}
    try:
        with open(f"/proc/{pid}/wchan") as fh:
            info["wchan"] = fh.read().strip() or None
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            info["state"] = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/syscall") as fh:
            parts = fh.read().split()
        if parts and parts[0].lstrip("-").isdigit():
            name = SYSCALLS.get(platform.machine(), {}).get(int(parts[0]))
            if name:
                info["syscall"] = name
                if name in FD_ARG_SYSCALLS and len(parts) > 1:
                    info["fd"] = int(parts[1], 16)
    except (OSError, ValueError):
        pass
    return info


def describe_wait(
    pid: int, names: dict[int, Message] | None = None, info: dict | None = None
) -> Message:
    """Where the main thread waits, in words: 'blocked in recvfrom() on client A's connection
    (fd 5)'. `names` says what some descriptors are; `info` is a look already taken."""
    info = where(pid) if info is None else info
    syscall = info.get("syscall")
    if syscall is None:
        if info.get("state") == "R":
            return msg("running (busy on the CPU)")
        if info.get("wchan"):
            return msg("asleep in {wchan}", wchan=info["wchan"])
        return msg("in an unknown state")
    fd = info.get("fd")
    if fd is None or MECHANISM_OF_SYSCALL.get(syscall) == "epoll":
        return msg("blocked in {call}()", call=syscall)
    if names and fd in names:
        return msg("blocked in {call}() on {what} (fd {fd})", call=syscall, what=names[fd], fd=fd)
    return msg("blocked in {call}() on fd {fd}", call=syscall, fd=fd)


def wait_mechanism(pid: int, info: dict | None = None) -> str | None:
    """The readiness mechanism the main thread is blocked in right now: "select", "poll",
    "epoll", or None (running, or blocked in something else: recv, accept, sleep, a lock).
    From /proc/PID/syscall where readable, else from /proc/PID/wchan."""
    info = where(pid) if info is None else info
    syscall = info.get("syscall")
    if syscall is not None:
        return MECHANISM_OF_SYSCALL.get(syscall)
    if info.get("state") == "R":
        return None
    return MECHANISM_OF_WCHAN.get((info.get("wchan") or "").split(".")[0])


def waits_in_selector(pid: int) -> bool:
    """Whether the main thread is blocked in select/poll/epoll right now."""
    return wait_mechanism(pid) is not None
