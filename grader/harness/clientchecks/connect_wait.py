"""The client waits until its connection is up before sending, even when the handshake is
slow (a full accept queue drops its first SYN)."""

from __future__ import annotations

import time

from grader.contract import msg
from grader.harness import procobs
from grader.harness.clientchecks.kit import (
    Kit,
    connection_to,
    death,
    fill_story,
    wait_exit,
    wait_for,
    where,
)
from grader.harness.kitserver import MESSAGE_DEADLINE
from grader.harness.plugin import fail
from grader.harness.timing import EXIT_GRACE, HANDSHAKE_DEADLINE, QUEUE_FULL_FOR, RUN_BOUND


def _slow_handshake(kit: Kit, message: str):
    """Start the client against a kit server whose accept queue is full, and wait until its
    connection is pending (SYN_SENT). Returns (server, process, pending connection), or
    fails the check when the client never gets that far."""
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    fill_story(kit, srv.fill_queue())
    proc = kit.run(srv, message)

    pending = None

    def connecting() -> bool:
        nonlocal pending
        pending = connection_to(proc, srv)
        return pending is not None or not proc.alive()

    wait_for(connecting, RUN_BOUND)
    if pending is None:
        if not proc.alive():
            # Too soon for the kit to see its SYN, if it sent one: a crash right after
            # connect(), typically at a send() on the connection that is not up yet.
            wait_exit(proc, EXIT_GRACE)
            fail(
                msg(
                    "the client ended without a connection to the kit's server, whose accept "
                    "queue was full (a connection would take about a second to come up): "
                    "{death}",
                    death=death(proc),
                )
            )
        fail(
            msg(
                "the client did not connect to the kit's server within {bound:g} s: it was {where}",
                bound=RUN_BOUND,
                where=where(proc),
            )
        )
    if pending.status != "SYN_SENT":
        raise RuntimeError(
            f"the kit's full accept queue did not hold the client's connection "
            f"back (it was {pending.status} at once)"
        )
    return srv, proc, pending


def check_connect_wait(kit: Kit) -> None:
    """The handshake is made slow by a full accept queue: the kernel drops the client's SYN,
    and its kernel resends it about 1 s later, when the kit has made room."""
    message = "sent once the connection is up"
    srv, proc, pending = _slow_handshake(kit, message)
    syn_seen = time.monotonic()
    snap = procobs.snapshot(proc.pid)
    desc = snap.descriptors.get(pending.fd)
    where_now = where(proc, pending.fd)
    if desc is None or desc.nonblocking is None:
        seen = msg(
            "the client's socket fd {fd} is connecting (SYN_SENT); its SYN was dropped; the "
            "client was {where}",
            fd=pending.fd,
            where=where_now,
        )
    elif desc.nonblocking:
        seen = msg(
            "the client's socket fd {fd} (non-blocking) is connecting (SYN_SENT); its SYN was "
            "dropped; the client was {where}",
            fd=pending.fd,
            where=where_now,
        )
    else:
        seen = msg(
            "the client's socket fd {fd} (blocking) is connecting (SYN_SENT); its SYN was "
            "dropped; the client was {where}",
            fd=pending.fd,
            where=where_now,
        )
    kit.story.saw(seen)
    wait_for(lambda: not proc.alive(), QUEUE_FULL_FOR)
    srv.open_queue()
    kit.story.did(
        msg(
            "{seconds:.2f} s later the kit accepted and closed its own connections: the queue "
            "has room for the resent SYN",
            seconds=time.monotonic() - syn_seen,
        )
    )

    def settled() -> bool:
        conv = srv.conversation()
        if conv is not None and conv.complete:
            return True
        if conv is not None and conv.received_all.is_set():
            # Connected: the kit stops waiting for the message MESSAGE_DEADLINE after that.
            return True
        # Not connected (yet): a client that has ended never will be, once the kit has
        # taken in whatever it left in the accept queue.
        return not proc.alive() and srv.settled()

    wait_for(settled, HANDSHAKE_DEADLINE + MESSAGE_DEADLINE)
    conv = srv.conversation()
    if conv is not None:
        handshake = conv.accepted_at - syn_seen
        kit.story.measure("handshake_seconds", round(handshake, 3))
        kit.story.saw(
            msg(
                "the connection came up {seconds:.2f} s after the kit saw the client's SYN",
                seconds=handshake,
            )
        )
    if conv is not None and conv.complete:
        kit.story.saw(
            msg(
                "the kit's server received the whole message {seconds:.2f} s after the "
                "connection came up",
                seconds=conv.message_at - conv.accepted_at,
            )
        )
        if wait_exit(proc, RUN_BOUND):
            kit.story.saw(
                msg("the client ended with exit code {code}", code=str(proc.returncode()))
            )
        return
    if conv is None:
        if not proc.alive():
            wait_exit(proc, EXIT_GRACE)
            fail(
                msg(
                    "the client ended without a connection to the kit's server, whose accept "
                    "queue was full (a connection would take about a second to come up): "
                    "{death}",
                    death=death(proc),
                )
            )
        fail(
            msg(
                "the client's connection was still not up {bound:g} s after its first SYN: it "
                "was {where}",
                bound=HANDSHAKE_DEADLINE,
                where=where(proc),
            )
        )
    lost = msg(
        "the connection came up {seconds:.1f} s after the client's first SYN, but {progress}: "
        "the client sent before the connection was up and that send failed; wait until the "
        "socket is writable (selectors EVENT_WRITE) after connect(), then send",
        seconds=conv.accepted_at - syn_seen,
        progress=conv.progress(),
    )
    if proc.alive():
        fail(msg("{problem}; the client was then {where}", problem=lost, where=where(proc)))
    wait_exit(proc, EXIT_GRACE)
    fail(msg("{problem}; then {death}", problem=lost, death=death(proc)))
