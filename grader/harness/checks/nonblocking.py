"""Non-blocking sockets: the kernel's O_NONBLOCK flags, and a server that survives the
BlockingIOErrors they bring."""

from __future__ import annotations

from grader.harness.checks.common import quote, serve_or_fail
from grader.harness.plugin import Server, fail
from grader.harness.timing import ACCEPT_DEADLINE, CPU_WINDOW


def _setblocking_sites(server: Server, fd: int) -> str:
    calls = [
        e
        for e in server.proc.trace()
        if e["ev"] in ("setblocking", "settimeout") and e.get("fd") == fd
    ]
    if not calls:
        return "; setblocking(False) was never called on it"
    last = calls[-1]
    return f"; the last call on it was at {quote(server, last.get('at'))}"


def check_nonblocking(server: Server) -> None:
    """Kernel evidence that the sockets are non-blocking, and a server with nothing to do (no
    client, then a silent client) that survives the BlockingIOErrors this brings."""
    snap = server.snapshot()
    listener = snap.descriptors.get(server.listen_fd)
    if listener is None or listener.nonblocking is None:
        # The kit's fault, not the student's: an error, scored as the grader's.
        raise RuntimeError("the flags of the listening socket could not be read from /proc")
    server.story.saw(
        f"listening socket fd {server.listen_fd}: "
        f"{'non-blocking' if listener.nonblocking else 'blocking'} (O_NONBLOCK "
        f"{'set' if listener.nonblocking else 'not set'})"
    )
    if not listener.nonblocking:
        fail(
            f"the listening socket (fd {server.listen_fd}) is blocking (no O_NONBLOCK in the "
            f"kernel's flags){_setblocking_sites(server, server.listen_fd)}"
        )
    idle = server.cpu(CPU_WINDOW)
    server.story.saw(
        f"no client for {idle.seconds:.2f} s: the server used {idle.percent:.0f}% "
        f"CPU, {server.blocked_on()}"
    )
    server.story.measure("cpu_no_client_percent", round(idle.percent, 1))
    server.require_alive(
        "it had no client to accept for a while (accept() raises BlockingIOError then)"
    )
    a = server.connect("A")
    server.story.did("client A sends nothing")
    fd_a = None

    def accepted() -> bool:
        nonlocal fd_a
        fd_a = server.server_fd(a)
        return fd_a is not None

    if not server.wait_until(accepted, ACCEPT_DEADLINE):
        server.require_alive("client A connected")
        fail(f"client A connected but the server did not accept it within {ACCEPT_DEADLINE:g} s")
    silent = server.cpu(CPU_WINDOW)
    assert fd_a is not None  # accepted() held, or fail() ended the check
    server.story.saw(
        f"client A silent for {silent.seconds:.2f} s: the server used {silent.percent:.0f}% CPU"
    )
    server.story.measure("cpu_silent_client_percent", round(silent.percent, 1))
    server.require_alive("client A connected and sent nothing (recv() raises BlockingIOError then)")
    conn = server.snapshot().descriptors.get(fd_a)
    if conn is not None and conn.nonblocking is False:
        fail(
            f"client A's connection (fd {fd_a}) is blocking (no O_NONBLOCK in the kernel's "
            f"flags){_setblocking_sites(server, fd_a)}; accepted sockets do not inherit "
            f"non-blocking mode from the listening socket"
        )
    server.story.saw(f"client A's connection (fd {fd_a}) is non-blocking")
    serve_or_fail(server, a, b"now I speak", "client A stayed silent for a while")
