"""Checks every server assignment has: it runs, echoes, survives departures, and (for the
blocking ones) makes a second client wait its turn."""

from __future__ import annotations

import time

from grader.contract import msg
from grader.harness.checks import evidence
from grader.harness.checks.common import ECHO_MESSAGES, CloseWaiter, echo_or_fail, serve_or_fail
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import DEATH_GRACE, REPLY_DEADLINE, TURN_LOOK, TURN_WINDOW


def check_runs(server: Server) -> None:
    server.require_alive(msg("it started listening"))


def check_echo(server: Server) -> None:
    a = server.connect("A")
    for data in ECHO_MESSAGES:
        echo_or_fail(
            server, a, data, msg("message of {size} bytes on one connection", size=len(data))
        )
    # Further connections are 'disconnect''s business, several at once 'concurrency''s.
    a.close()


def check_disconnect(server: Server, rounds: int = 5) -> None:
    waiter = CloseWaiter(server)
    for i in range(1, rounds + 1):
        c = server.connect(f"C{i}")
        context = (
            msg("client {name} had left", name=f"C{i - 1}")
            if i > 1
            else msg("the first client connected")
        )
        serve_or_fail(server, c, b"client %d says hi" % i, context)
        fd = server.server_fd(c)
        c.close()
        # Let the server drop this connection before the next arrives, so that the next
        # accept() reuses the descriptor number (the stale-registration trap).
        waiter.wait([c], [fd])
        server.require_alive(msg("client {name} left", name=f"C{i}"))


def check_waits_its_turn(server: Server, window: float = TURN_WINDOW) -> None:
    """The lesson of the blocking server, shown rather than judged: a second client waits
    until the first leaves. It fails only when the second client is never served."""
    a = server.connect("A")
    serve_or_fail(server, a, b"I am first", msg("client A connected"))
    b = server.connect("B")
    b.send(b"me too?")
    reply = Reply(b, b"me too?")
    # An observation window (what a one-at-a-time server does not do): B is not served. It
    # ends early once the server is seen asleep with B's message unread: it waits on A. The
    # window is shown, not judged: what B gets once A leaves is the verdict.
    opened = time.monotonic()
    deadline = opened + window
    while True:
        reply.end = None
        server.await_replies([reply], max(0.0, min(TURN_LOOK, deadline - time.monotonic())))
        if reply.served or time.monotonic() >= deadline or server.asleep():
            break
    window = round(time.monotonic() - opened, 2)
    if reply.served:
        server.story.saw(
            msg(
                "{reply} at once, while A was still connected: this server is concurrent "
                "(more than this assignment asks), or had already ended A's connection",
                reply=reply.told(),
            )
        )
        return
    server.story.saw(
        msg(
            "client B was not served in {window:g} s while client A stayed connected: "
            "the server is {waiting}",
            window=window,
            waiting=evidence.waiting(server, server.fd_names()),
        )
    )
    a.close()
    left = time.monotonic()
    reply.end = None
    server.await_replies([reply], REPLY_DEADLINE)
    if not reply.served:
        death = server.died_within(DEATH_GRACE)
        fail(
            msg(
                "client B waited while A was connected, as expected, but once A left "
                "it was never served: {death}",
                death=death,
            )
            if death
            else msg(
                "client B waited while A was connected, as expected, but once A left "
                "it was not served in {deadline:g} s (no reply, message not read)",
                deadline=REPLY_DEADLINE,
            )
        )
    server.story.saw(
        msg(
            "client A left; {reply} {seconds:.2f} s later: one client at a time",
            reply=reply.told(),
            seconds=time.monotonic() - left,
        )
    )
