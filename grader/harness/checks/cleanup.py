"""Cleanup: descriptors return to their count after many clients came and went."""

from __future__ import annotations

import time

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
            server.require_alive(f"{start + WAVE - len(pending)} clients came and went")
            fail(
                f"{pending[0].sentence(MANY_DEADLINE)} (clients came and went {WAVE} at a "
                f"time); the server was {evidence.waiting(server, server.fd_names())}"
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
    server.story.saw(f"the server holds {before} descriptors before any client")
    _wave(server, "K", 1)
    server.story.did(f"{WAVE} clients connected at once, were served and left")
    first = _back_to(server, before)
    # A server that died has no descriptors at all: that is no return to the count. One
    # that dies of what it does next with the sockets it closed (a busy loop calling recv()
    # on them) is given the time to show it, so that the verdict does not hang on when we
    # looked.
    server.settle(CLOSE_DEADLINE)
    server.require_alive(f"{WAVE} clients came and went")
    if first <= before:
        server.story.saw(f"descriptors back to {first}")
        return
    server.story.saw(
        f"the server holds {first} descriptors, {first - before} more than before "
        f"any client; {cycles - WAVE} more clients follow"
    )
    for start in range(1 + WAVE, cycles + 1, WAVE):
        _wave(server, "K", start)
    server.story.did(f"{cycles} clients in all came and went, {WAVE} at a time")
    last = _back_to(server, first)
    server.settle(CLOSE_DEADLINE)
    server.require_alive(f"{cycles} clients came and went")
    if last <= first:
        server.story.saw(
            f"descriptors back to {last}: what the first clients added was opened "
            f"once, not per client"
        )
        return
    waiting = [s for s in server.sockets() if s.state == "CLOSE_WAIT"]
    what = (
        f": {len(waiting)} are sockets whose client has gone (CLOSE_WAIT), never closed"
        if waiting
        else ""
    )
    fail(
        f"after {cycles} clients came and went the server holds {last} descriptors, "
        f"{last - before} more than before any client and {last - first} more than after the "
        f"first {WAVE}{what}"
    )


def _back_to(server: Server, count: int) -> int:
    """Poll (deadline) until the server holds at most `count` descriptors; the last count."""
    counts = []

    def back() -> bool:
        counts.append(len(server.snapshot().descriptors))
        return counts[-1] <= count

    server.wait_until(back, CLOSE_DEADLINE)
    return counts[-1]
