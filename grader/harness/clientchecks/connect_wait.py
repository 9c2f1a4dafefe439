"""The client waits until its connection is up before sending, even when the handshake is
slow (a full accept queue drops its first SYN)."""

from __future__ import annotations

import time

from grader.harness import procobs
from grader.harness.clientchecks.kit import Kit, connection_to, death, wait_exit, wait_for, where
from grader.harness.kitserver import MESSAGE_DEADLINE
from grader.harness.plugin import fail
from grader.harness.timing import EXIT_GRACE, HANDSHAKE_DEADLINE, QUEUE_FULL_FOR, RUN_BOUND


def _slow_handshake(kit: Kit, message: str):
    """Start the client against a kit server whose accept queue is full, and wait until its
    connection is pending (SYN_SENT). Returns (server, process, pending connection), or
    fails the check when the client never gets that far."""
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    n = srv.fill_queue()
    kit.story.did(
        f"the kit's server listens with backlog 0 and {n} idle connection(s) of its "
        f"own fill its accept queue: the kernel drops a new connection's SYN"
    )
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
                f"the client ended without a connection to the kit's server, whose accept "
                f"queue was full (a connection would take about a second to come up): "
                f"{death(proc)}"
            )
        fail(
            f"the client did not connect to the kit's server within {RUN_BOUND:g} s: it was "
            f"{where(proc)}"
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
    mode = (
        ""
        if desc is None or desc.nonblocking is None
        else " (non-blocking)"
        if desc.nonblocking
        else " (blocking)"
    )
    kit.story.saw(
        f"the client's socket fd {pending.fd}{mode} is connecting (SYN_SENT); its SYN "
        f"was dropped; the client was {where(proc, pending.fd)}"
    )
    wait_for(lambda: not proc.alive(), QUEUE_FULL_FOR)
    srv.open_queue()
    kit.story.did(
        f"{time.monotonic() - syn_seen:.2f} s later the kit accepted and closed its "
        f"own connections: the queue has room for the resent SYN"
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
            f"the connection came up {handshake:.2f} s after the kit saw the client's SYN"
        )
    if conv is not None and conv.complete:
        kit.story.saw(
            f"the kit's server received the whole message "
            f"{conv.message_at - conv.accepted_at:.2f} s after the connection came up"
        )
        if wait_exit(proc, RUN_BOUND):
            kit.story.saw(f"the client ended with exit code {proc.returncode()}")
        return
    if conv is None:
        if not proc.alive():
            wait_exit(proc, EXIT_GRACE)
            fail(
                f"the client ended without a connection to the kit's server, whose accept "
                f"queue was full (a connection would take about a second to come up): "
                f"{death(proc)}"
            )
        fail(
            f"the client's connection was still not up {HANDSHAKE_DEADLINE:g} s after its "
            f"first SYN: it was {where(proc)}"
        )
    lost = (
        f"the connection came up {conv.accepted_at - syn_seen:.1f} s after the client's "
        f"first SYN, but {conv.progress()}: the client sent before the connection was up "
        f"and that send failed; wait until the socket is writable (selectors EVENT_WRITE) "
        f"after connect(), then send"
    )
    if proc.alive():
        fail(f"{lost}; the client was then {where(proc)}")
    wait_exit(proc, EXIT_GRACE)
    fail(f"{lost}; then {death(proc)}")
