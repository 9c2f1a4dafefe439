"""Cleanup: descriptors return to their count after many clients came and went."""

from __future__ import annotations

import time

from grader.contract import msg
from grader.harness.checks import evidence
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import CLOSE_DEADLINE, MANY_DEADLINE, REPLY_DEADLINE

WAVE = 5  # clients at once in one wave of `cleanup`: within the smallest backlog seen in
# the course (listen(5)), so a blocking server's queue holds all who wait


def _wave(server: Server, name: str, start: int) -> None:
    """WAVE clients connect at once and each sends a message; each leaves (in order: FIN)
    once served, and none leaves before the server has taken in all it will take now
    (every client served, or the server asleep), so within a wave no descriptor number is
    freed and given again: a server that crashes on a reused number (it never unregisters)
    fails `disconnect` for that, not this check."""
    clients = [server.connect(f"{name}{start + i}", quiet=True) for i in range(WAVE)]
    pending = []
    for i, c in enumerate(clients):
        pending.append(Reply(c, b"cycle %d" % (start + i)))
        c.send(pending[-1].sent, quiet=True)
    deadline = time.monotonic() + MANY_DEADLINE
    while pending:

        def taken_in(pending: list[Reply] = pending) -> bool:
            socks = server.sockets()
            for r in pending:
                r.pull()
                server.note_read(r, socks)
            return all(r.served for r in pending)

        server.wait_until_or_asleep(taken_in, max(0.0, deadline - time.monotonic()))
        served = [r for r in pending if r.served]
        if not served:
            server.require_alive(msg("{n} clients came and went", n=start + WAVE - len(pending)))
            fail(
                msg(
                    "{what} (clients came and went {wave} at a time); the server was {where}",
                    what=pending[0].sentence(MANY_DEADLINE),
                    wave=WAVE,
                    where=evidence.waiting(server, server.fd_names()),
                )
            )
        # Whatever is still coming to them is taken first: then their close is a FIN.
        server.await_replies(served, REPLY_DEADLINE)
        for r in served:
            r.client.close(quiet=True)
        pending = [r for r in pending if not r.served]


def check_cleanup(server: Server, cycles: int = 30) -> None:
    """Descriptors return to their count after clients came and went. The first count is
    taken before any client; a server that opens something once, lazily, on its first
    clients is then judged by a second count after more of them."""
    before = len(server.snapshot().descriptors)
    server.story.saw(msg("the server holds {n} descriptors before any client", n=before))
    _wave(server, "K", 1)
    server.story.did(msg("{wave} clients connected at once, were served and left", wave=WAVE))
    first = _back_to(server, before)
    # A server that died has no descriptors at all: that is no return to the count. One
    # that dies of what it does next with the sockets it closed (a busy loop calling recv()
    # on them) is given the time to show it, so that the verdict does not hang on when we
    # looked.
    server.settle(CLOSE_DEADLINE)
    server.require_alive(msg("{n} clients came and went", n=WAVE))
    if first <= before:
        server.story.saw(msg("descriptors back to {n}", n=first))
        return
    server.story.saw(
        msg(
            "the server holds {n} descriptors, {more} more than before any client; "
            "{follow} more clients follow",
            n=first,
            more=first - before,
            follow=cycles - WAVE,
        )
    )
    for start in range(1 + WAVE, cycles + 1, WAVE):
        _wave(server, "K", start)
    server.story.did(
        msg("{cycles} clients in all came and went, {wave} at a time", cycles=cycles, wave=WAVE)
    )
    last = _back_to(server, first)
    server.settle(CLOSE_DEADLINE)
    server.require_alive(msg("{n} clients came and went", n=cycles))
    if last <= first:
        server.story.saw(
            msg(
                "descriptors back to {n}: what the first clients added was opened once, "
                "not per client",
                n=last,
            )
        )
        return
    waiting = [s for s in server.sockets() if s.state == "CLOSE_WAIT"]
    figures = dict(cycles=cycles, n=last, more=last - before, since=last - first, wave=WAVE)
    fail(
        msg(
            "after {cycles} clients came and went the server holds {n} descriptors, "
            "{more} more than before any client and {since} more than after the first "
            "{wave}: {waiting} are sockets whose client has gone (CLOSE_WAIT), never closed",
            waiting=len(waiting),
            **figures,
        )
        if waiting
        else msg(
            "after {cycles} clients came and went the server holds {n} descriptors, "
            "{more} more than before any client and {since} more than after the first "
            "{wave}",
            **figures,
        )
    )


def _back_to(server: Server, count: int) -> int:
    """Poll (deadline) until the server holds at most `count` descriptors; the last count."""
    counts = []

    def back() -> bool:
        counts.append(len(server.snapshot().descriptors))
        return counts[-1] <= count

    server.wait_until(back, CLOSE_DEADLINE)
    return counts[-1]
