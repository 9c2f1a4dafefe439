"""Non-blocking sockets: the kernel's O_NONBLOCK flags, and a server that survives the
BlockingIOErrors they bring."""

from __future__ import annotations

from grader.contract import Message, msg
from grader.harness.checks.common import quote, serve_or_fail
from grader.harness.plugin import Server, fail
from grader.harness.procobs import CpuWindow
from grader.harness.timing import ACCEPT_DEADLINE, CPU_WINDOW, SURVIVE_CPU


def _last_setblocking(server: Server, fd: int) -> Message | None:
    """The line of the last setblocking()/settimeout() on this descriptor, or None if none."""
    calls = [
        e
        for e in server.proc.trace()
        if e["ev"] in ("setblocking", "settimeout") and e.get("fd") == fd
    ]
    return quote(server, calls[-1].get("at")) if calls else None


def check_nonblocking(server: Server) -> None:
    """Kernel evidence that the sockets are non-blocking, and a server with nothing to do (no
    client, then a silent client) that survives the BlockingIOErrors this brings."""
    snap = server.snapshot()
    listener = snap.descriptors.get(server.listen_fd)
    if listener is None or listener.nonblocking is None:
        # The kit's fault, not the student's: an error, scored as the grader's.
        raise RuntimeError("the flags of the listening socket could not be read from /proc")
    server.story.saw(
        msg("listening socket fd {fd}: non-blocking (O_NONBLOCK set)", fd=server.listen_fd)
        if listener.nonblocking
        else msg("listening socket fd {fd}: blocking (O_NONBLOCK not set)", fd=server.listen_fd)
    )
    if not listener.nonblocking:
        site = _last_setblocking(server, server.listen_fd)
        fail(
            msg(
                "the listening socket (fd {fd}) is blocking (no O_NONBLOCK in the kernel's "
                "flags); the last call on it was at {site}",
                fd=server.listen_fd,
                site=site,
            )
            if site is not None
            else msg(
                "the listening socket (fd {fd}) is blocking (no O_NONBLOCK in the kernel's "
                "flags); setblocking(False) was never called on it",
                fd=server.listen_fd,
            )
        )
    idle = server.cpu(CPU_WINDOW, _survived)
    server.story.saw(
        msg(
            "no client for {seconds:.2f} s: the server used {percent:.0f}% CPU, {where}",
            seconds=idle.seconds,
            percent=idle.percent,
            where=server.blocked_on(),
        )
    )
    server.story.measure("cpu_no_client_percent", round(idle.percent, 1))
    server.require_alive(
        msg("it had no client to accept for a while (accept() raises BlockingIOError then)")
    )
    a = server.connect("A")
    server.story.did(msg("client A sends nothing"))
    fd_a = None

    def accepted() -> bool:
        nonlocal fd_a
        fd_a = server.server_fd(a)
        return fd_a is not None

    if not server.wait_until(accepted, ACCEPT_DEADLINE):
        server.require_alive(msg("client A connected"))
        fail(
            msg(
                "client A connected but the server did not accept it within {deadline:g} s",
                deadline=ACCEPT_DEADLINE,
            )
        )
    silent = server.cpu(CPU_WINDOW, _survived)
    assert fd_a is not None  # accepted() held, or fail() ended the check
    server.story.saw(
        msg(
            "client A silent for {seconds:.2f} s: the server used {percent:.0f}% CPU",
            seconds=silent.seconds,
            percent=silent.percent,
        )
    )
    server.story.measure("cpu_silent_client_percent", round(silent.percent, 1))
    server.require_alive(
        msg("client A connected and sent nothing (recv() raises BlockingIOError then)")
    )
    conn = server.snapshot().descriptors.get(fd_a)
    if conn is not None and conn.nonblocking is False:
        site = _last_setblocking(server, fd_a)
        fail(
            msg(
                "client A's connection (fd {fd}) is blocking (no O_NONBLOCK in the kernel's "
                "flags); the last call on it was at {site}; accepted sockets do not inherit "
                "non-blocking mode from the listening socket",
                fd=fd_a,
                site=site,
            )
            if site is not None
            else msg(
                "client A's connection (fd {fd}) is blocking (no O_NONBLOCK in the kernel's "
                "flags); setblocking(False) was never called on it; accepted sockets do not "
                "inherit non-blocking mode from the listening socket",
                fd=fd_a,
            )
        )
    server.story.saw(msg("client A's connection (fd {fd}) is non-blocking", fd=fd_a))
    serve_or_fail(server, a, b"now I speak", msg("client A stayed silent for a while"))


def _survived(measured: CpuWindow) -> bool:
    """Enough turns of a retrying loop to have met BlockingIOError many times over."""
    return (measured.running or 0.0) >= SURVIVE_CPU
