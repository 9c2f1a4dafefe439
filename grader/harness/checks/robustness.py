"""Robustness, beyond the tutorial: peer reset, non-UTF-8 bytes, half-close, slow reader."""

from __future__ import annotations

import time

from grader.harness.checks import evidence
from grader.harness.checks.common import pattern, serve_or_fail
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import (
    CLOSE_DEADLINE,
    DEATH_GRACE,
    REPLY_DEADLINE,
    SLOW_READER_DEADLINE,
    STALL,
    STALL_POLL,
)

# connection carries too.


def _still_serves(server: Server, after: str) -> str | None:
    f = server.client("F")
    if not f.connect():
        death = server.died_within(DEATH_GRACE)
        return f"after {after}, {death or 'a new client could not connect'}"
    reply = server.exchange(f, b"still there?", REPLY_DEADLINE)
    if not reply.served:
        death = server.died_within(DEATH_GRACE)
        return f"after {after}, {death or reply.sentence(REPLY_DEADLINE)}"
    f.close()
    return None


def _length_problem(reply: Reply, what: str) -> str | None:
    """A reply cut short (fewer bytes than sent, then nothing more) is lost data."""
    if reply.got and reply.end != "complete" and len(reply.got) < len(reply.sent):
        return (
            f"{what}: {len(reply.got)} of {len(reply.sent)} bytes came back, then "
            f"{'the server closed' if reply.end == 'closed' else 'nothing more'}"
        )
    return None


def robust_peer_reset(server: Server) -> str | None:
    r = server.connect("R")
    serve_or_fail(server, r, b"about to vanish", "a client connected")
    r.reset()
    return _still_serves(server, "a client reset its connection (RST)")


def robust_non_utf8(server: Server) -> str | None:
    n = server.connect("N")
    data = b"\xff\xfe caf\xe9 \x80\x00 bytes"
    reply = server.exchange(n, data, REPLY_DEADLINE)
    if not reply.served:
        return server.died_within(DEATH_GRACE) or reply.sentence(REPLY_DEADLINE)
    problem = _length_problem(reply, "a client sent non-UTF-8 bytes")
    if problem:
        return problem
    server.require_alive("a client sent non-UTF-8 bytes")
    return _still_serves(server, "a client sent non-UTF-8 bytes")


def robust_half_close(server: Server) -> str | None:
    h = server.connect("H")
    h.send(b"half")
    h.shutdown_write()
    reply = Reply(h, b"half")
    server.await_replies([reply], REPLY_DEADLINE)
    if not reply.served:
        server.require_alive("a client half-closed")
        return f"a client sent 'half' then half-closed; {reply.sentence(REPLY_DEADLINE)}"
    problem = _length_problem(reply, "a client sent 'half' then half-closed")
    if problem:
        return problem
    end = reply.end if reply.end in ("closed", "reset") else h.wait_closed(CLOSE_DEADLINE)
    if end not in ("closed", "reset"):
        return (
            f"a client sent 'half' and half-closed; after serving it the server did not "
            f"close the connection in {CLOSE_DEADLINE:g} s ({end})"
        )
    server.story.saw(f"{reply.told()}, then the server closed")
    return _still_serves(server, "a client half-closed")


def robust_slow_reader(server: Server, cap: int = 16 * 1024 * 1024) -> str | None:
    s = server.connect("S")
    sock = s.sock
    assert sock is not None  # connect() made it
    sock.setblocking(False)
    data = pattern(256 * 1024, seed=3)
    sent = 0
    stalled_since = None
    ended = None
    while sent < cap:
        try:
            sent += sock.send(data[sent % len(data) :] if sent % len(data) else data)
            stalled_since = None
        except BlockingIOError:
            # The buffers are full (the server stopped reading, as it should when its
            # replies pile up): the rest of the scenario happens in this state.
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > STALL:
                break
            time.sleep(STALL_POLL)
        except OSError as exc:
            # The server ended this connection: how many messages a connection carries is
            # `echo`'s business; that the server survives and serves others is judged below.
            ended = exc.strerror or str(exc)
            break
    sock.setblocking(True)
    server.story.did(
        f"client S sent {sent / 1e6:.1f} MB without reading any reply"
        + (f" (then its connection ended: {ended})" if ended else "")
    )
    f = server.client("F")
    if not f.connect():
        return "while one client was sending without reading, a new client could not connect"
    reply_f = server.exchange(f, b"am I served?", REPLY_DEADLINE)
    if not reply_f.served:
        server.require_alive("a client sent without reading")
        return (
            f"while client S sent {sent / 1e6:.1f} MB without reading, client F got no "
            f"reply in {REPLY_DEADLINE:g} s, nor did the server read its message: the "
            f"server was {evidence.waiting(server, server.fd_names())}"
        )
    f.close()
    server.require_alive("a client sent without reading")
    if ended or not reply_f.got:
        # A connection the server ended, or a server that sends no replies at all: there is
        # no backlog to measure.
        return None
    reply_s = Reply(s, b"x" * sent)
    server.await_replies([reply_s], SLOW_READER_DEADLINE)
    if reply_s.end in ("complete", "closed", "reset") and len(reply_s.got) >= sent:
        server.story.saw(f"client S got all {sent / 1e6:.1f} MB back once it read")
        return None
    if reply_s.end == "closed" or reply_s.end == "reset":
        # Ended by the server after the flood: as above, not this check's business.
        return None
    return (
        f"client S then read its replies: {len(reply_s.got)} of {sent} bytes came back "
        f"({reply_s.end}: the server had read everything and had nothing left to send)"
    )


ROBUSTNESS = [
    ("half-close", robust_half_close),
    ("non-UTF-8 bytes", robust_non_utf8),
    ("peer reset", robust_peer_reset),
    ("slow reader", robust_slow_reader),
]


def check_robustness(start_server) -> None:
    """Each scenario on a fresh server, so that one failure does not hide another; each
    server is stopped after its scenario, so that none runs beside the next."""
    problems = []
    for name, scenario in ROBUSTNESS:
        server = start_server()
        server.story.did(f"— scenario: {name} (fresh server) —")
        try:
            problem = scenario(server)
        except BaseException as exc:  # a fail() inside the scenario
            if type(exc).__name__ != "Failed":
                raise
            problem = str(exc)
        finally:
            server.teardown()
        if problem:
            server.story.saw(problem)
            problems.append(f"{name}: {problem}")
    if problems:
        fail("; ".join(problems))
