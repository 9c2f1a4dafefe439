"""The event loop's selector: epoll's interest lists, unregistering before close, and which
readiness mechanism the idle server waits in."""

from __future__ import annotations

import pytest

from grader.harness import procobs
from grader.harness.checks import evidence
from grader.harness.checks.common import CloseWaiter, peer_gone_fds, quote, wait_accepted
from grader.harness.clients import Client
from grader.harness.plugin import Server, fail
from grader.harness.timing import ACCEPT_DEADLINE, CLOSE_DEADLINE, POLL, WAIT_DEADLINE, WAIT_LOOKS


def check_uses_epoll(server: Server) -> None:
    """No message at all: the kernel shows whether the connections were accepted and are in
    an epoll interest list. Polled until that holds, the deadline, or the server sleeps
    (then nothing more will change)."""
    a = server.connect("A")
    b = server.connect("B")
    server.story.did("clients A and B send nothing")
    seen: dict = {}

    def look() -> bool:
        snap = server.snapshot()
        fa, fb = server.server_fd(a, snap), server.server_fd(b, snap)
        seen.update(snap=snap, fa=fa, fb=fb)
        wanted = {server.listen_fd, fa, fb}
        return None not in wanted and any(wanted <= set(ep.epoll_targets) for ep in snap.epolls())

    if server.wait_until_or_asleep(look, ACCEPT_DEADLINE):
        for ep in seen["snap"].epolls():
            server.story.saw(f"epoll instance fd {ep.fd} watches fds {list(ep.epoll_targets)}")
        return
    server.require_alive("two clients connected")
    snap, fa, fb = seen["snap"], seen["fa"], seen["fb"]
    if not snap.epolls():
        kinds = evidence.uses(server.proc.trace())
        uses = f"; it uses {', '.join(kinds)}" if kinds else ""
        where = evidence.waiting(server, server.fd_names())
        fail(
            f"the server holds no epoll instance (no anon_inode:[eventpoll] descriptor) while "
            f"two clients are connected{uses}; the server was {where}"
        )
    for ep in snap.epolls():
        server.story.saw(f"epoll instance fd {ep.fd} watches fds {list(ep.epoll_targets)}")
    unaccepted = [name for name, fd in (("A", fa), ("B", fb)) if fd is None]
    if unaccepted:
        fail(
            f"client {' and '.join(unaccepted)} connected but the server had not accepted "
            f"{'it' if len(unaccepted) == 1 else 'them'} after {ACCEPT_DEADLINE:g} s, so no "
            f"interest list could hold {'its connection' if len(unaccepted) == 1 else 'theirs'}"
            f"; the server was {evidence.waiting(server, server.fd_names())}"
        )
    wanted = {
        "the listening socket": server.listen_fd,
        "client A's connection": fa,
        "client B's connection": fb,
    }
    best = min(
        (ep for ep in snap.epolls()),
        key=lambda ep: sum(fd not in ep.epoll_targets for fd in wanted.values()),
    )
    missing = [name for name, fd in wanted.items() if fd not in best.epoll_targets]
    fail(
        f"no epoll instance of the server watches {', '.join(missing)} "
        f"(watched: {sorted(snap.watched())}; listening fd {server.listen_fd}, "
        f"connections {fa} and {fb})"
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
            fail(f"{culprit}; then: {exc}")
        raise
    culprit = _closed_while_registered(server)
    if culprit:
        fail(culprit)


def _closed_while_registered(server: Server) -> str:
    bad = [e for e in server.proc.trace() if e["ev"] == "close_registered"]
    if not bad:
        return ""
    e = bad[0]
    return (
        f"{quote(server, e.get('at'))} closed fd {e.get('fd')} while it was still "
        f"registered with the selector (registered at {quote(server, e.get('registered_at'))}"
        f"); call unregister() before close()"
    )


def _no_selector(server: Server) -> str | None:
    """Why there is nothing to unregister from, when there is not: no epoll instance in the
    kernel, no selector registration traced, and not waiting in select/poll/epoll."""
    if server.snapshot().epolls() or procobs.waits_in_selector(server.pid):
        return None
    if evidence.uses_any_selector(server.proc.trace()):
        return None
    where = evidence.waiting(server, server.fd_names())
    return (
        f"not applicable: the server has no selector to unregister from (the kernel shows "
        f"no epoll instance, and the server was {where}, not in select/poll/epoll); this "
        f"check earns nothing without one"
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
            server.require_alive(f"client U{i} connected")
            if i == 1:
                absent = _no_selector(server)
                if absent:
                    fail(absent)
            if fd is None:
                fail(
                    f"client U{i} connected but the server did not accept it in "
                    f"{ACCEPT_DEADLINE:g} s; the server was {evidence.waiting(server)}"
                )
            reuse = " (a number a departed client had)" if i > 1 else ""
            fail(
                f"client U{i}'s connection (fd {fd}{reuse}) was accepted but is not in the "
                f"epoll interest list: the selector still held a stale registration"
            )
        if i == 1 and not server.snapshot().epolls():
            # No epoll instance: is there any selector? Where it waits says so once it has
            # settled (asleep), so look then.
            server.wait_until_or_asleep(lambda: False, ACCEPT_DEADLINE)
            absent = _no_selector(server)
            if absent:
                fail(absent)
        server.story.saw(f"client U{i}'s connection (fd {fd}) is accepted and registered")
        c.close()
        waiter.wait([c], [fd])
        server.require_alive(f"client U{i} left")

        def stale() -> list[int]:
            watched = server.snapshot().watched()
            return sorted(fd for fd in peer_gone_fds(server) if fd in watched)

        # Reading the end of stream and unregistering takes the server a moment: polled
        # until the deadline, never judged from one look.
        if not server.wait_until(lambda: not stale(), CLOSE_DEADLINE):
            left = stale()
            if left:
                fail(
                    f"client U{i} left, but {CLOSE_DEADLINE:g} s later the server still "
                    f"watches its socket with epoll (fd {left[0]}: the client has gone; it "
                    f"was neither unregistered nor closed)"
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
    calls = " or ".join(procobs.WAIT_CALL[m] for m in wanted)
    clients = [server.connect(f"W{i}", quiet=True) for i in range(1, WAIT_SILENT + 1)]
    server.story.did(f"{WAIT_SILENT} clients connected and sent nothing")
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
            f"with {WAIT_SILENT} silent clients connected the server sleeps "
            f"{evidence.asleep_in(server, mechanism)}"
        )
        return
    server.require_alive(f"{WAIT_SILENT} clients connected and sent nothing")
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
        where = "never asleep: it ran on the CPU (a busy loop)" + evidence.busy_because(server)
    else:
        last = next(i for i in reversed(infos) if i.get("state") != "R")
        where = evidence.waiting(server, server.fd_names(), info=last)
    server.story.saw(f"with {WAIT_SILENT} silent clients connected the server was {where}")
    fail(
        f"with {WAIT_SILENT} silent clients connected, the server was {where}; this "
        f"assignment asks for an event loop that waits in {calls}"
    )


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
        f"the server never slept (a busy loop: idle_cpu's to judge); it waits in "
        f"{evidence.call_text(e)} at {server.proc.quote(e.get('at'))} (traced), "
        f"and the kernel shows no epoll instance among its descriptors"
    )
    return True
