"""The client's socket is non-blocking: the kernel's O_NONBLOCK flag while the reply is held
back and while the handshake is under way; settimeout() told apart by the trace."""

from __future__ import annotations

import time

from grader.harness import procobs
from grader.harness.clientchecks.kit import (
    Kit,
    Look,
    asleep,
    blocking_calls,
    death,
    look,
    settle,
    wait_exit,
    wait_for,
    where,
)
from grader.harness.kitserver import KitServer
from grader.harness.launch import StudentProcess
from grader.harness.plugin import fail
from grader.harness.timing import EXIT_GRACE, HOLD_AT_LEAST, HOLD_CPU, HOLD_MOST, RUN_BOUND


def check_nonblocking(kit: Kit) -> None:
    """Kernel evidence only, taken while the client provably holds its socket: first while
    the kit holds its reply back (the client must survive the wait), then, for a client
    that does not wait for the reply, while a full accept queue holds the handshake back
    (every client that waits for its connection in any way is alive for about a second).
    Whether the client read the reply is echo's to judge, not this check's."""
    message = "are you non-blocking?"
    srv = kit.server(message.encode(), hold=True)
    proc = kit.run(srv, message)
    kit.story.did(
        "the kit's server holds its reply back; meanwhile it reads the client's "
        "socket's flags in /proc/PID/fdinfo"
    )
    looks: list[Look] = []

    def watch() -> None:
        seen = look(proc, srv)
        if seen is not None:
            looks.append(seen)

    def message_in() -> bool:
        watch()
        conv = srv.conversation()
        return (conv is not None and conv.complete) or not proc.alive()

    if not wait_for(message_in, RUN_BOUND):
        fail(
            f"the kit's server did not receive the client's message within {RUN_BOUND:g} s "
            f"({srv.progress()}); the client was {where(proc)}"
        )
    settle(srv, proc)
    conv = srv.conversation()
    held: list[Look] = []  # the looks while the client waited for the reply
    crashed = False  # it ended with an error while the reply was held back
    if conv is None or not conv.complete:
        wait_exit(proc, EXIT_GRACE)
        if proc.returncode() != 0:
            fail(f"the client ended before its message reached the kit's server: {death(proc)}")
        kit.story.saw(
            f"the client exited with code 0 before its message reached the kit's "
            f"server ({srv.progress()}; 'runs' and 'echo' judge that)"
        )
    else:
        held, crashed = _hold(kit, srv, proc, watch, looks)
    first = held[0] if held else None
    if first is not None:
        kit.story.saw(
            f"while the reply was held back, the client's socket connected to the "
            f"kit (fd {first.fd}) had flags {first.flags:o} in /proc/PID/fdinfo: "
            f"O_NONBLOCK {'set' if first.nonblocking else 'not set'}; the client was "
            f"{first.waiting}"
        )
    blocking = next((seen for seen in held if not seen.nonblocking), None)
    if blocking is not None:
        fail(
            f"the client's socket (fd {blocking.fd}, connected to the kit's server) is "
            f"blocking: its flags in /proc/PID/fdinfo ({blocking.flags:o}) lack O_NONBLOCK"
            f"{_blocking_explained(proc, blocking_calls(proc, blocking.fd))}; the client "
            f"was {blocking.waiting}"
        )
    if looks:
        _not_a_timeout_socket(proc, looks[-1].fd)
    if crashed:
        fail(f"the client ended while the kit held its reply back: {death(proc)}")
    connecting = _nonblocking_connect(kit, message)
    if connecting is not None and not connecting.nonblocking:
        fail(
            f"the client's connect() was blocking: while the handshake was under way its "
            f"socket (fd {connecting.fd}) had no O_NONBLOCK and the client was "
            f"{connecting.waiting}; call setblocking(False) before connect() and handle the "
            f"BlockingIOError it raises"
        )
    if connecting is None and not looks:
        fail(
            "the kit never found the client holding a socket to its server, neither while "
            "the reply was held back nor while the handshake was (see 'runs')"
        )


def _hold(
    kit: Kit, srv: KitServer, proc: StudentProcess, watch, looks: list[Look]
) -> tuple[list[Look], bool]:
    """Hold the reply back until the client has provably reached its wait: it sleeps in
    the kernel or has had HOLD_CPU of CPU time (a retry loop), at least HOLD_AT_LEAST; or
    it ended. Measured in the client's own progress, so a starved sandbox cannot release
    the reply before the client got to its recv(). Returns the looks taken meanwhile, and
    whether the client ended with an error before the reply was let go."""
    since, before = time.monotonic(), len(looks)
    cpu0 = procobs.cpu_seconds(proc.pid) or 0.0
    sleeps = 0

    def waiting() -> bool:
        nonlocal sleeps
        watch()
        if not proc.alive():
            return True
        sleeps = sleeps + 1 if asleep(proc.pid) else 0
        if time.monotonic() - since < HOLD_AT_LEAST:
            return False
        cpu = procobs.cpu_seconds(proc.pid)
        return sleeps >= 2 or (cpu is not None and cpu - cpu0 >= HOLD_CPU)

    wait_for(waiting, HOLD_MOST)
    held = looks[before:]
    if not proc.alive():
        wait_exit(proc, EXIT_GRACE)
        settle(srv, proc)
        if proc.returncode() == 0:
            kit.story.saw(
                "the client exited with code 0 while the kit held its reply back: "
                "it did not wait for the reply ('echo' judges reading it)"
            )
        return held, proc.returncode() != 0
    kit.story.saw(
        f"the client was still waiting {time.monotonic() - since:.2f} s later: {where(proc)}"
    )
    srv.reply_allowed.set()
    kit.story.did("the kit's server sent the reply")
    if wait_exit(proc, RUN_BOUND):
        kit.story.saw(f"the client ended with exit code {proc.returncode()}")
    return held, False


def _not_a_timeout_socket(proc: StudentProcess, fd: int) -> None:
    """settimeout() makes the socket O_NONBLOCK underneath; only the trace tells it apart,
    and a trace may fail a check, never pass one."""
    calls = blocking_calls(proc, fd)
    last = calls[-1] if calls else None
    if (
        last
        and last["ev"] == "settimeout"
        and isinstance(last.get("value"), (int, float))
        and last["value"] > 0
    ):
        fail(
            f"the client's socket (fd {fd}) is a timeout socket, set at "
            f"{proc.quote(last.get('at'))}: Python makes it O_NONBLOCK underneath, but its "
            f"connect() and recv() still wait (up to {last['value']:g} s) and never raise "
            f"BlockingIOError; this assignment asks for setblocking(False)"
        )


def _nonblocking_connect(kit: Kit, message: str) -> Look | None:
    """connect() itself, against a full accept queue: the client's SYN is dropped, so for
    about a second the client is provably inside connect() (blocking) or waiting for it
    (non-blocking), holding its SYN_SENT socket. A client that connects blocking and only
    then calls setblocking(False) shows here; so does the socket of a client that does not
    stay for the reply. None when the client never got that far ('runs', 'connect_wait')."""
    kit.story.did(
        "— the client again, against a kit server whose full accept queue makes the "
        "handshake take about a second —"
    )
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    n = srv.fill_queue()
    kit.story.did(
        f"the kit's server listens with backlog 0 and {n} idle connection(s) of its "
        f"own fill its accept queue: the kernel drops a new connection's SYN"
    )
    proc = kit.run(srv, message)
    pending: Look | None = None

    def connecting() -> bool:
        nonlocal pending
        seen = look(proc, srv)
        if seen is not None and seen.status == "SYN_SENT":
            pending = seen
        return pending is not None or not proc.alive()

    wait_for(connecting, RUN_BOUND)
    srv.open_queue()
    if pending is None:
        kit.story.saw(
            "the client did not get as far as a pending connection (judged by "
            "'runs' and 'connect_wait')"
        )
        return None
    kit.story.saw(
        f"while its connection was pending (SYN_SENT), the client's socket fd "
        f"{pending.fd} had O_NONBLOCK {'set' if pending.nonblocking else 'not set'}; "
        f"the client was {pending.waiting}"
    )
    _not_a_timeout_socket(proc, pending.fd)
    return pending


def _blocking_explained(proc: StudentProcess, calls: list[dict]) -> str:
    if not calls:
        return "; the client never called setblocking(False) on it"
    last = calls[-1]
    call = (
        f"setblocking({last.get('flag')})"
        if last["ev"] == "setblocking"
        else f"settimeout({last.get('value')})"
    )
    return f"; the last call on it was {call} at {proc.quote(last.get('at'))}"
