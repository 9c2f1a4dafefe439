"""The client's socket is non-blocking: the kernel's O_NONBLOCK flag while the reply is held
back and while the handshake is under way; settimeout() told apart by the trace."""

from __future__ import annotations

import time

from grader.contract import Message, msg
from grader.harness import procobs
from grader.harness.clientchecks.kit import (
    Kit,
    Look,
    asleep,
    blocking_calls,
    death,
    fill_story,
    look,
    settle,
    wait_exit,
    wait_for,
    where,
)
from grader.harness.kitserver import KitServer
from grader.harness.launch import StudentProcess
from grader.harness.plugin import fail
from grader.harness.timing import (
    EXIT_GRACE,
    HANDSHAKE_DEADLINE,
    HOLD_AT_LEAST,
    HOLD_CPU,
    HOLD_MOST,
    RUN_BOUND,
)


def check_nonblocking(kit: Kit) -> None:
    """Kernel evidence only, taken while the client provably holds its socket: first while
    the kit holds its reply back (the client must survive the wait), then, for a client
    that does not wait for the reply, while a full accept queue holds the handshake back
    (every client that waits for its connection in any way is alive for about a second).
    Whether the client read the reply is echo's to judge, not this check's. A client seen
    waiting for neither has shown nothing to judge: the check is not applicable, and fails."""
    message = "are you non-blocking?"
    srv = kit.server(message.encode(), hold=True)
    proc = kit.run(srv, message)
    kit.story.did(
        msg(
            "the kit's server holds its reply back; meanwhile it reads the client's "
            "socket's flags in /proc/PID/fdinfo"
        )
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
            msg(
                "the kit's server did not receive the client's message within {bound:g} s "
                "({progress}); the client was {where}",
                bound=RUN_BOUND,
                progress=srv.progress(),
                where=where(proc),
            )
        )
    settle(srv, proc)
    conv = srv.conversation()
    held: list[Look] = []  # the looks while the client waited for the reply
    crashed = False  # it ended with an error while the reply was held back
    waited = False  # it was still there when the kit let the reply go
    if conv is None or not conv.complete:
        wait_exit(proc, EXIT_GRACE)
        if proc.returncode() != 0:
            fail(
                msg(
                    "the client ended before its message reached the kit's server: {death}",
                    death=death(proc),
                )
            )
        kit.story.saw(
            msg(
                "the client exited with code 0 before its message reached the kit's server "
                "({progress}; 'runs' and 'echo' judge that)",
                progress=srv.progress(),
            )
        )
    else:
        held, crashed, waited = _hold(kit, srv, proc, watch, looks)
    first = held[0] if held else None
    if first is not None:
        kit.story.saw(
            msg(
                "while the reply was held back, the client's socket connected to the kit "
                "(fd {fd}) had flags {flags:o} in /proc/PID/fdinfo: O_NONBLOCK set; the client "
                "was {where}",
                fd=first.fd,
                flags=first.flags,
                where=first.waiting,
            )
            if first.nonblocking
            else msg(
                "while the reply was held back, the client's socket connected to the kit "
                "(fd {fd}) had flags {flags:o} in /proc/PID/fdinfo: O_NONBLOCK not set; the "
                "client was {where}",
                fd=first.fd,
                flags=first.flags,
                where=first.waiting,
            )
        )
    blocking = next((seen for seen in held if not seen.nonblocking), None)
    if blocking is not None:
        fail(
            msg(
                "the client's socket (fd {fd}, connected to the kit's server) is blocking: its "
                "flags in /proc/PID/fdinfo ({flags:o}) lack O_NONBLOCK; {calls}; the client "
                "was {where}",
                fd=blocking.fd,
                flags=blocking.flags,
                calls=_blocking_explained(proc, blocking_calls(proc, blocking.fd)),
                where=blocking.waiting,
            )
        )
    if looks:
        _not_a_timeout_socket(proc, looks[-1].fd)
    if crashed:
        fail(
            msg(
                "the client ended while the kit held its reply back: {death}",
                death=death(proc),
            )
        )
    connecting = _nonblocking_connect(kit, message)
    if connecting is not None and not connecting.nonblocking:
        fail(
            msg(
                "the client's connect() was blocking: while the handshake was under way its "
                "socket (fd {fd}) had no O_NONBLOCK and the client was {where}; call "
                "setblocking(False) before connect() and handle the BlockingIOError it raises",
                fd=connecting.fd,
                where=connecting.waiting,
            )
        )
    if connecting is None and not (waited and held):
        # Looks taken as the client was leaving may fail it (a blocking socket is blocking),
        # never pass it: they show no wait, and a race decides whether there are any.
        fail(_not_applicable(waited))


def _not_applicable(waited: bool) -> Message:
    """Nothing was seen while the client waited: a pass here would be a vacuous one."""
    if not waited:
        return msg(
            "not applicable: the client had already exited before the kit could look at its "
            "socket while it waited, neither for the reply (held back) nor for a slow "
            "handshake, so whether that socket is non-blocking and its BlockingIOError "
            "handled was never seen"
        )
    return msg(
        "not applicable: the kit never found the client holding its socket to the kit's "
        "server while it waited, neither for the reply (held back) nor for a slow "
        "handshake (see 'runs')"
    )


def _hold(
    kit: Kit, srv: KitServer, proc: StudentProcess, watch, looks: list[Look]
) -> tuple[list[Look], bool, bool]:
    """Hold the reply back until the client has provably reached its wait: it sleeps in
    the kernel or has had HOLD_CPU of CPU time (a retry loop), at least HOLD_AT_LEAST; or
    it ended. Measured in the client's own progress, so a starved sandbox cannot release
    the reply before the client got to its recv(). Returns the looks taken meanwhile,
    whether the client ended with an error before the reply was let go, and whether it was
    still there to be sent the reply (it waited for it)."""
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
                msg(
                    "the client exited with code 0 while the kit held its reply back: it did "
                    "not wait for the reply ('echo' judges reading it)"
                )
            )
        return held, proc.returncode() != 0, False
    kit.story.saw(
        msg(
            "the client was still waiting {seconds:.2f} s later: {where}",
            seconds=time.monotonic() - since,
            where=where(proc),
        )
    )
    srv.reply_allowed.set()
    kit.story.did(msg("the kit's server sent the reply"))
    if wait_exit(proc, RUN_BOUND):
        kit.story.saw(msg("the client ended with exit code {code}", code=str(proc.returncode())))
    return held, False, True


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
            msg(
                "the client's socket (fd {fd}) is a timeout socket, set at {at}: Python makes "
                "it O_NONBLOCK underneath, but its connect() and recv() still wait (up to "
                "{seconds:g} s) and never raise BlockingIOError; this assignment asks for "
                "setblocking(False)",
                fd=fd,
                at=proc.quote(last.get("at")),
                seconds=last["value"],
            )
        )


def _nonblocking_connect(kit: Kit, message: str) -> Look | None:
    """connect() itself, against a full accept queue: the client's SYN is dropped, so for
    about a second the client is provably inside connect() (blocking) or waiting for it
    (non-blocking), holding its SYN_SENT socket. A client that connects blocking and only
    then calls setblocking(False) shows here; so does the socket of a client that does not
    stay for the reply. None when the client never got that far ('runs', 'connect_wait'),
    and for a non-blocking socket seen only in passing: one whose connection never came up
    because the client had gone before the resent SYN (a client that waits for its
    connection in any way is still there)."""
    kit.story.did(
        msg(
            "— the client again, against a kit server whose full accept queue makes the "
            "handshake take about a second —"
        )
    )
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    fill_story(kit, srv.fill_queue())
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
            msg(
                "the client did not get as far as a pending connection (judged by 'runs' "
                "and 'connect_wait')"
            )
        )
        return None
    kit.story.saw(
        msg(
            "while its connection was pending (SYN_SENT), the client's socket fd {fd} had "
            "O_NONBLOCK set; the client was {where}",
            fd=pending.fd,
            where=pending.waiting,
        )
        if pending.nonblocking
        else msg(
            "while its connection was pending (SYN_SENT), the client's socket fd {fd} had "
            "O_NONBLOCK not set; the client was {where}",
            fd=pending.fd,
            where=pending.waiting,
        )
    )
    _not_a_timeout_socket(proc, pending.fd)
    if pending.nonblocking and not _came_up(srv, proc):
        kit.story.saw(
            msg(
                "the client exited before its connection came up: it did not wait for the "
                "handshake either"
            )
        )
        return None
    return pending


def _came_up(srv: KitServer, proc: StudentProcess) -> bool:
    """The client's connection to the kit came up (it stayed for the handshake); False once
    it has ended without one and the kit has taken in all that reached it."""
    wait_for(lambda: srv.conversation() is not None or not proc.alive(), HANDSHAKE_DEADLINE)
    settle(srv, proc)
    return srv.conversation() is not None


def _blocking_explained(proc: StudentProcess, calls: list[dict]) -> Message:
    if not calls:
        return msg("the client never called setblocking(False) on it")
    last = calls[-1]
    if last["ev"] == "setblocking":
        return msg(
            "the last call on it was setblocking({flag}) at {at}",
            flag=str(last.get("flag")),
            at=proc.quote(last.get("at")),
        )
    return msg(
        "the last call on it was settimeout({value}) at {at}",
        value=str(last.get("value")),
        at=proc.quote(last.get("at")),
    )
