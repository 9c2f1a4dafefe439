"""The event loop's selector: epoll's interest lists, unregistering before close, and which
readiness mechanism the idle server waits in."""

from __future__ import annotations

import pytest

from grader.contract import Message, join, msg, verbatim
from grader.harness import procobs
from grader.harness.checks import evidence
from grader.harness.checks.common import (
    CloseWaiter,
    peer_gone_fds,
    quote,
    reason_of,
    wait_accepted,
)
from grader.harness.clients import Client
from grader.harness.plugin import Server, fail
from grader.harness.timing import ACCEPT_DEADLINE, CLOSE_DEADLINE, POLL, WAIT_DEADLINE, WAIT_LOOKS


def check_uses_epoll(server: Server) -> None:
    """No message at all: the kernel shows whether the connections were accepted and are in
    an epoll interest list. Polled until that holds, the deadline, or the server sleeps
    (then nothing more will change)."""
    a = server.connect("A")
    b = server.connect("B")
    server.story.did(msg("clients A and B send nothing"))
    seen: dict = {}

    def look() -> bool:
        snap = server.snapshot()
        fa, fb = server.server_fd(a, snap), server.server_fd(b, snap)
        seen.update(snap=snap, fa=fa, fb=fb)
        wanted = {server.listen_fd, fa, fb}
        return None not in wanted and any(wanted <= set(ep.epoll_targets) for ep in snap.epolls())

    if server.wait_until_or_asleep(look, ACCEPT_DEADLINE):
        _tell_epolls(server, seen["snap"])
        return
    server.require_alive(msg("two clients connected"))
    snap, fa, fb = seen["snap"], seen["fa"], seen["fb"]
    if not snap.epolls():
        kinds = evidence.uses(server.proc.trace())
        where = evidence.waiting(server, server.fd_names())
        fail(
            msg(
                "the server holds no epoll instance (no anon_inode:[eventpoll] descriptor) "
                "while two clients are connected; it uses {kinds}; the server was {where}",
                kinds=", ".join(kinds),
                where=where,
            )
            if kinds
            else msg(
                "the server holds no epoll instance (no anon_inode:[eventpoll] descriptor) "
                "while two clients are connected; the server was {where}",
                where=where,
            )
        )
    _tell_epolls(server, snap)
    unaccepted = [name for name, fd in (("A", fa), ("B", fb)) if fd is None]
    if unaccepted:
        where = evidence.waiting(server, server.fd_names())
        fail(
            msg(
                "client {name} connected but the server had not accepted it after "
                "{deadline:g} s, so no interest list could hold its connection; the server "
                "was {where}",
                name=unaccepted[0],
                deadline=ACCEPT_DEADLINE,
                where=where,
            )
            if len(unaccepted) == 1
            else msg(
                "client {a} and {b} connected but the server had not accepted them after "
                "{deadline:g} s, so no interest list could hold theirs; the server was {where}",
                a=unaccepted[0],
                b=unaccepted[1],
                deadline=ACCEPT_DEADLINE,
                where=where,
            )
        )
    wanted = [
        (msg("the listening socket"), server.listen_fd),
        (msg("client A's connection"), fa),
        (msg("client B's connection"), fb),
    ]
    best = min(
        (ep for ep in snap.epolls()),
        key=lambda ep: sum(fd not in ep.epoll_targets for _, fd in wanted),
    )
    missing = [name for name, fd in wanted if fd not in best.epoll_targets]
    fail(
        msg(
            "no epoll instance of the server watches {missing} (watched: {watched}; "
            "listening fd {listen}, connections {fa} and {fb})",
            missing=join(missing, ", "),
            watched=str(sorted(snap.watched())),
            listen=server.listen_fd,
            fa=str(fa),
            fb=str(fb),
        )
    )


def _tell_epolls(server: Server, snap: procobs.Snapshot) -> None:
    for ep in snap.epolls():
        server.story.saw(
            msg(
                "epoll instance fd {fd} watches fds {fds}",
                fd=ep.fd,
                fds=str(list(ep.epoll_targets)),
            )
        )


def check_unregister(server: Server, rounds: int = 3) -> None:
    """One client at a time, each leaving before the next comes, so that descriptor numbers
    are reused; after each: the kernel's interest lists, then the tracer's account."""
    try:
        _unregister_rounds(server, rounds)
    except pytest.fail.Exception as exc:
        if str(exc).startswith("not applicable"):
            raise
        # The tracer explains what the kernel saw (or the crash it led to).
        culprit = _closed_while_registered(server)
        if culprit:
            fail(msg("{culprit}; then: {reason}", culprit=culprit, reason=reason_of(exc)))
        raise
    culprit = _closed_while_registered(server)
    if culprit:
        fail(culprit)


def _closed_while_registered(server: Server) -> Message | None:
    bad = [e for e in server.proc.trace() if e["ev"] == "close_registered"]
    if not bad:
        return None
    e = bad[0]
    return msg(
        "{site} closed fd {fd} while it was still registered with the selector (registered "
        "at {registered}); call unregister() before close()",
        site=quote(server, e.get("at")),
        fd=str(e.get("fd")),
        registered=quote(server, e.get("registered_at")),
    )


def _no_selector(server: Server) -> Message | None:
    """Why there is nothing to unregister from, when there is not: no epoll instance in the
    kernel, no selector registration traced, and not waiting in select/poll/epoll."""
    if server.snapshot().epolls() or procobs.waits_in_selector(server.pid):
        return None
    if evidence.uses_any_selector(server.proc.trace()):
        return None
    where = evidence.waiting(server, server.fd_names())
    return msg(
        "not applicable: the server has no selector to unregister from (the kernel shows "
        "no epoll instance, and the server was {where}, not in select/poll/epoll); this "
        "check earns nothing without one",
        where=where,
    )


def _unregister_rounds(server: Server, rounds: int) -> None:
    waiter = CloseWaiter(server)
    for i in range(1, rounds + 1):
        c = server.connect(f"U{i}")
        fd = None

        def registered(c: Client = c) -> bool:
            nonlocal fd
            snap = server.snapshot()
            fd = server.server_fd(c, snap)
            return fd is not None and (not snap.epolls() or fd in snap.watched())

        # Until accepted and in the interest list, or the deadline, or the server sleeps
        # (then it will not change): no message needed, the kernel shows both.
        if not server.wait_until_or_asleep(registered, ACCEPT_DEADLINE):
            server.require_alive(msg("client {name} connected", name=f"U{i}"))
            if i == 1:
                absent = _no_selector(server)
                if absent:
                    fail(absent)
            if fd is None:
                fail(
                    msg(
                        "client {name} connected but the server did not accept it in "
                        "{deadline:g} s; the server was {where}",
                        name=f"U{i}",
                        deadline=ACCEPT_DEADLINE,
                        where=evidence.waiting(server),
                    )
                )
            fail(
                msg(
                    "client {name}'s connection (fd {fd} (a number a departed client had)) "
                    "was accepted but is not in the epoll interest list: the selector still "
                    "held a stale registration",
                    name=f"U{i}",
                    fd=fd,
                )
                if i > 1
                else msg(
                    "client {name}'s connection (fd {fd}) was accepted but is not in the "
                    "epoll interest list: the selector still held a stale registration",
                    name=f"U{i}",
                    fd=fd,
                )
            )
        if i == 1 and not server.snapshot().epolls():
            # No epoll instance: is there any selector? Where it waits says so once it has
            # settled (asleep), so look then.
            server.wait_until_or_asleep(lambda: False, ACCEPT_DEADLINE)
            absent = _no_selector(server)
            if absent:
                fail(absent)
        server.story.saw(
            msg(
                "client {name}'s connection (fd {fd}) is accepted and registered",
                name=f"U{i}",
                fd=str(fd),
            )
        )
        c.close()
        waiter.wait([c], [fd])
        server.require_alive(msg("client {name} left", name=f"U{i}"))

        def stale() -> list[int]:
            watched = server.snapshot().watched()
            return sorted(fd for fd in peer_gone_fds(server) if fd in watched)

        # Reading the end of stream and unregistering takes the server a moment: polled
        # until the deadline, never judged from one look.
        if not server.wait_until(lambda: not stale(), CLOSE_DEADLINE):
            left = stale()
            if left:
                fail(
                    msg(
                        "client {name} left, but {deadline:g} s later the server still "
                        "watches its socket with epoll (fd {fd}: the client has gone; it "
                        "was neither unregistered nor closed)",
                        name=f"U{i}",
                        deadline=CLOSE_DEADLINE,
                        fd=left[0],
                    )
                )


WAIT_SILENT = 3  # silent clients while check_waits_in looks: enough that a one-at-a-time
# server is seen blocked on one, within the course's smallest backlog (5)


def check_waits_in(server: Server, mechanisms: tuple[str, ...]) -> None:
    """The idle server, with a few silent clients connected, sleeps in one of `mechanisms`
    ("select", "poll", "epoll"), as the kernel shows it (/proc/PID/syscall, else wchan):
    polled until WAIT_LOOKS looks in a row find it there, or the deadline. A failure says
    where it is instead, with the student's line where the trace has it."""
    wanted = tuple(mechanisms)
    unknown = [m for m in wanted if m not in ("select", "poll", "epoll")]
    if unknown or not wanted:
        # The assignment's own mistake, not the student's.
        raise ValueError(
            f"check_waits_in: unknown mechanism(s) {unknown or wanted!r}; "
            f"known: select, poll, epoll"
        )
    calls = _either([procobs.WAIT_CALL[m] for m in wanted])
    clients = [server.connect(f"W{i}", quiet=True) for i in range(1, WAIT_SILENT + 1)]
    server.story.did(msg("{n} clients connected and sent nothing", n=WAIT_SILENT))
    wait_accepted(server, clients)
    looks: list[tuple[dict, str | None]] = []

    def settled() -> bool:
        info = procobs.where(server.pid)
        looks.append((info, procobs.wait_mechanism(server.pid, info)))
        recent = looks[-WAIT_LOOKS:]
        return len(recent) == WAIT_LOOKS and all(
            procobs.matches(m, wanted) and i.get("state") != "R" for i, m in recent
        )

    if server.wait_until(settled, WAIT_DEADLINE, interval=POLL):
        mechanism = looks[-1][1] or wanted[0]
        server.story.saw(
            msg(
                "with {n} silent clients connected the server sleeps {where}",
                n=WAIT_SILENT,
                where=evidence.asleep_in(server, mechanism),
            )
        )
        return
    server.require_alive(msg("{n} clients connected and sent nothing", n=WAIT_SILENT))
    infos = [i for i, _ in looks]
    if infos and all(
        "syscall" not in i and i.get("wchan") in (None, "", "0") and i.get("state") != "R"
        for i in infos
    ):
        # The kit's fault, not the student's: where it sleeps could not be read.
        raise RuntimeError(
            "where the server sleeps could not be read from /proc "
            "(neither /proc/PID/syscall nor /proc/PID/wchan)"
        )
    running = sum(i.get("state") == "R" for i in infos)
    if running * 2 > len(infos):
        if _busy_but_waits_in(server, wanted):
            return
        # `because` is empty, or a clause that carries its own leading "; ".
        where: Message = msg(
            "never asleep: it ran on the CPU (a busy loop){because}",
            because=evidence.busy_because(server),
        )
    else:
        last = next(i for i in reversed(infos) if i.get("state") != "R")
        where = evidence.waiting(server, server.fd_names(), info=last)
    server.story.saw(
        msg(
            "with {n} silent clients connected the server was {where}",
            n=WAIT_SILENT,
            where=where,
        )
    )
    fail(
        msg(
            "with {n} silent clients connected, the server was {where}; this assignment "
            "asks for an event loop that waits in {calls}",
            n=WAIT_SILENT,
            where=where,
            calls=calls,
        )
    )


def _either(calls: list[str]) -> Message:
    """'select()', 'select() or poll()', 'select(), poll() or epoll_wait()'."""
    if len(calls) == 1:
        return verbatim(calls[0])
    return msg("{rest} or {last}", rest=", ".join(calls[:-1]), last=calls[-1])


def _busy_but_waits_in(server: Server, wanted: tuple[str, ...]) -> bool:
    """A busy loop never sleeps, so the kernel cannot show what it would sleep in; that loop
    is idle_cpu's fault, not this check's (one property per check). Its mechanism is then
    taken from its wait calls as traced, provided the kernel agrees as far as it can see: no
    epoll instance among its descriptors unless epoll is wanted. Every traced wait must be
    one of those wanted."""
    trace = server.proc.trace()
    waits = [e for e in trace if e.get("ev") in evidence.WAITS]
    mechanisms = {evidence.mechanism_of(e) for e in waits}
    if not waits or not all(procobs.matches(m, wanted) for m in mechanisms):
        return False
    if "epoll" not in wanted and server.snapshot().epolls():
        return False
    e = waits[-1]
    server.story.saw(
        msg(
            "the server never slept (a busy loop: idle_cpu's to judge); it waits in {call} at "
            "{site} (traced), and the kernel shows no epoll instance among its descriptors",
            call=evidence.call_text(e),
            site=quote(server, e.get("at")),
        )
    )
    return True
