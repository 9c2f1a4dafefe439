"""Idle CPU: an idle server sleeps in the kernel instead of spinning."""

from __future__ import annotations

from grader.harness.checks import evidence
from grader.harness.checks.common import serve_or_fail, wait_accepted, wait_server_closed
from grader.harness.plugin import Server, fail
from grader.harness.timing import CPU_WINDOW, IDLE_CPU_LIMIT


def check_idle_cpu(server: Server) -> None:
    """Three observation windows of CPU time: fresh, with silent clients, after they left.
    A failure names the wait call that makes the loop spin (a zero timeout, or something
    always ready), where traced."""
    readings = []

    def window(label: str, key: str) -> None:
        measured = server.cpu(CPU_WINDOW)
        where = evidence.waiting(server)
        # Judged on how much of the window it wanted the CPU, which a loaded machine does
        # not change; the CPU it got is shown too.
        readings.append((label, measured.busy_percent, where))
        server.story.saw(
            f"{label}: {measured.percent:.0f}% CPU over {measured.seconds:.2f} s "
            f"(running or ready to run {measured.busy_percent:.0f}% of it), {where}"
        )
        server.story.measure(f"cpu_{key}_percent", round(measured.percent, 1))

    window("fresh, no client", "fresh")
    e = server.connect("E")
    serve_or_fail(server, e, b"wake up", "a first client", quiet=True)
    silent = [server.connect(f"S{i}", quiet=True) for i in range(1, 6)]
    # The window starts once the server has taken in what it will: the new connections are
    # accepted, or it sleeps without them (one client at a time).
    wait_accepted(server, silent)
    server.story.did("client E was served; 5 more clients connected and sent nothing")
    window("silent clients connected", "silent")
    clients = [e, *silent]
    fds = [server.server_fd(c) for c in clients]
    for c in clients:
        c.close(quiet=True)
    server.story.did("all 6 clients left")
    wait_server_closed(server, clients, fds)
    window("after clients left", "after")
    server.require_alive("the idle observations")
    busy = [(label, pct, where) for label, pct, where in readings if pct > IDLE_CPU_LIMIT]
    if busy:
        label, pct, _ = busy[0]
        because = evidence.spinning_because(server)
        fail(
            f"the server kept the CPU busy {pct:.0f}% of the time while idle ({label}; "
            f"limit {IDLE_CPU_LIMIT:g}%): a busy loop instead of sleeping in the kernel{because}"
        )
