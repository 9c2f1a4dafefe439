"""Idle CPU: an idle server sleeps in the kernel instead of spinning."""

from __future__ import annotations

from grader.contract import Message, msg
from grader.harness.checks import evidence
from grader.harness.checks.common import serve_or_fail, wait_accepted, wait_server_closed
from grader.harness.plugin import Server, fail
from grader.harness.procobs import CpuWindow
from grader.harness.timing import CPU_WINDOW, IDLE_CPU_LIMIT, SETTLE_AWAKE, SURE_BUSY, SURE_IDLE


def certain(measured: CpuWindow, server: Server) -> bool:
    """Whether a window's verdict is already certain (idle or busy), far from the limit.
    Idle only while the server is seen asleep: schedstat counts a thread's wait for a CPU
    only once it gets one, so a busy loop kept off the CPU for the whole of a short window (a
    crowded machine, the container's CPU quota) would read as neither running nor waiting,
    that is, idle; a thread waiting for a CPU shows 'R', never asleep."""
    pct = measured.busy_percent
    if measured.awake < SETTLE_AWAKE or SURE_IDLE < pct < SURE_BUSY:
        return False
    if pct >= SURE_BUSY:
        return True
    now = server.activity()
    return now is not None and now.asleep


def check_idle_cpu(server: Server) -> None:
    """Three observation windows of CPU time: fresh, with silent clients, after they left.
    A failure names the wait call that makes the loop spin (a zero timeout, or something
    always ready), where traced."""
    readings: list[tuple[Message, float, Message]] = []

    def window(label: Message, key: str) -> None:
        measured = server.cpu(CPU_WINDOW, lambda m: certain(m, server))
        where = evidence.waiting(server)
        # Judged on how much of its time not spent waiting for a CPU it ran, which neither a
        # loaded machine nor a CPU quota changes; the CPU it got is shown too.
        readings.append((label, measured.busy_percent, where))
        server.story.saw(
            msg(
                "{label}: {percent:.0f}% CPU over {seconds:.2f} s "
                "(running {busy:.0f}% of the time it was not kept waiting for a CPU), {where}",
                label=label,
                percent=measured.percent,
                seconds=measured.seconds,
                busy=measured.busy_percent,
                where=where,
            )
        )
        server.story.measure(f"cpu_{key}_percent", round(measured.percent, 1))

    window(msg("fresh, no client"), "fresh")
    e = server.connect("E")
    serve_or_fail(server, e, b"wake up", msg("a first client"), quiet=True)
    silent = [server.connect(f"S{i}", quiet=True) for i in range(1, 6)]
    # The window starts once the server has taken in what it will: the new connections are
    # accepted, or it sleeps without them (one client at a time).
    wait_accepted(server, silent)
    server.story.did(msg("client E was served; 5 more clients connected and sent nothing"))
    window(msg("silent clients connected"), "silent")
    clients = [e, *silent]
    fds = [server.server_fd(c) for c in clients]
    for c in clients:
        c.close(quiet=True)
    server.story.did(msg("all 6 clients left"))
    wait_server_closed(server, clients, fds)
    window(msg("after clients left"), "after")
    server.require_alive(msg("the idle observations"))
    busy = [(label, pct, where) for label, pct, where in readings if pct > IDLE_CPU_LIMIT]
    if busy:
        label, pct, _ = busy[0]
        because = evidence.spinning_because(server)
        # `because` is empty, or a clause that carries its own leading "; ".
        fail(
            msg(
                "the server kept the CPU busy {percent:.0f}% of the time while idle ({label}; "
                "limit {limit:g}%): a busy loop instead of sleeping in the kernel{because}",
                percent=pct,
                label=label,
                limit=IDLE_CPU_LIMIT,
                because=because,
            )
        )
