"""Robustness, beyond the tutorial: peer reset, non-UTF-8 bytes, half-close, slow reader."""

from __future__ import annotations

import time

from grader.contract import Message, join, msg
from grader.harness.checks import evidence
from grader.harness.checks.common import pattern, reason_of, serve_or_fail
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import (
    CLOSE_DEADLINE,
    DEATH_GRACE,
    REPLY_DEADLINE,
    SLOW_READER_DEADLINE,
    STALL,
    STALL_POLL,
    STALL_SURE,
)


def _still_serves(server: Server, after: Message) -> Message | None:
    f = server.client("F")
    if not f.connect():
        death = server.died_within(DEATH_GRACE)
        what = death or msg("a new client could not connect")
        return msg("after {after}, {what}", after=after, what=what)
    reply = server.exchange(f, b"still there?", REPLY_DEADLINE)
    if not reply.served:
        death = server.died_within(DEATH_GRACE)
        what = death or reply.sentence(REPLY_DEADLINE)
        return msg("after {after}, {what}", after=after, what=what)
    f.close()
    return None


def _length_problem(reply: Reply, what: Message) -> Message | None:
    """A reply cut short (fewer bytes than sent, then nothing more) is lost data."""
    if reply.got and reply.end != "complete" and len(reply.got) < len(reply.sent):
        got, sent = len(reply.got), len(reply.sent)
        if reply.end == "closed":
            return msg(
                "{what}: {got} of {sent} bytes came back, then the server closed",
                what=what,
                got=got,
                sent=sent,
            )
        return msg(
            "{what}: {got} of {sent} bytes came back, then nothing more",
            what=what,
            got=got,
            sent=sent,
        )
    return None


def robust_peer_reset(server: Server) -> Message | None:
    r = server.connect("R")
    serve_or_fail(server, r, b"about to vanish", msg("a client connected"))
    r.reset()
    return _still_serves(server, msg("a client reset its connection (RST)"))


def robust_non_utf8(server: Server) -> Message | None:
    n = server.connect("N")
    data = b"\xff\xfe caf\xe9 \x80\x00 bytes"
    reply = server.exchange(n, data, REPLY_DEADLINE)
    if not reply.served:
        return server.died_within(DEATH_GRACE) or reply.sentence(REPLY_DEADLINE)
    sent = msg("a client sent non-UTF-8 bytes")
    problem = _length_problem(reply, sent)
    if problem:
        return problem
    server.require_alive(sent)
    return _still_serves(server, sent)


def robust_half_close(server: Server) -> Message | None:
    h = server.connect("H")
    h.send(b"half")
    h.shutdown_write()
    reply = Reply(h, b"half")
    server.await_replies([reply], REPLY_DEADLINE)
    if not reply.served:
        server.require_alive(msg("a client half-closed"))
        return msg(
            "a client sent 'half' then half-closed; {what}", what=reply.sentence(REPLY_DEADLINE)
        )
    problem = _length_problem(reply, msg("a client sent 'half' then half-closed"))
    if problem:
        return problem
    end = reply.end if reply.end in ("closed", "reset") else h.wait_closed(CLOSE_DEADLINE)
    if end == "data":
        return msg(
            "a client sent 'half' and half-closed; after serving it the server did not "
            "close the connection in {deadline:g} s (data)",
            deadline=CLOSE_DEADLINE,
        )
    if end not in ("closed", "reset"):
        return msg(
            "a client sent 'half' and half-closed; after serving it the server did not "
            "close the connection in {deadline:g} s (timeout)",
            deadline=CLOSE_DEADLINE,
        )
    server.story.saw(msg("{reply}, then the server closed", reply=reply.told()))
    return _still_serves(server, msg("a client half-closed"))


def robust_slow_reader(server: Server, cap: int = 16 * 1024 * 1024) -> Message | None:
    s = server.connect("S")
    sock = s.sock
    assert sock is not None  # connect() made it
    sock.setblocking(False)
    data = memoryview(pattern(256 * 1024, seed=3))  # sent from, never copied
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
            # Sooner where the kernel shows it: no progress, and the server asleep (not
            # running, nor waiting for a CPU as a starved one would be).
            if now - stalled_since > STALL_SURE and server.asleep():
                break
            time.sleep(STALL_POLL)
        except OSError as exc:
            # The server ended this connection: how many messages a connection carries is
            # `echo`'s business; that the server survives and serves others is judged below.
            ended = exc.strerror or str(exc)
            break
    sock.setblocking(True)
    server.story.did(
        msg(
            "client S sent {mb:.1f} MB without reading any reply (then its connection "
            "ended: {ended})",
            mb=sent / 1e6,
            ended=ended,
        )
        if ended
        else msg("client S sent {mb:.1f} MB without reading any reply", mb=sent / 1e6)
    )
    f = server.client("F")
    if not f.connect():
        return msg("while one client was sending without reading, a new client could not connect")
    reply_f = server.exchange(f, b"am I served?", REPLY_DEADLINE)
    if not reply_f.served:
        server.require_alive(msg("a client sent without reading"))
        return msg(
            "while client S sent {mb:.1f} MB without reading, client F got no reply in "
            "{deadline:g} s, nor did the server read its message: the server was {where}",
            mb=sent / 1e6,
            deadline=REPLY_DEADLINE,
            where=evidence.waiting(server, server.fd_names()),
        )
    f.close()
    server.require_alive(msg("a client sent without reading"))
    if ended or not reply_f.got:
        # A connection the server ended, or a server that sends no replies at all: there is
        # no backlog to measure.
        return None
    reply_s = Reply(s, b"x" * sent)
    server.await_replies([reply_s], SLOW_READER_DEADLINE)
    if reply_s.end in ("complete", "closed", "reset") and len(reply_s.got) >= sent:
        server.story.saw(msg("client S got all {mb:.1f} MB back once it read", mb=sent / 1e6))
        return None
    if reply_s.end == "closed" or reply_s.end == "reset":
        # Ended by the server after the flood: as above, not this check's business.
        return None
    return msg(
        "client S then read its replies: {got} of {sent} bytes came back "
        "({end}: the server had read everything and had nothing left to send)",
        got=len(reply_s.got),
        sent=sent,
        end=str(reply_s.end),
    )


ROBUSTNESS = [
    (msg("half-close"), robust_half_close),
    (msg("non-UTF-8 bytes"), robust_non_utf8),
    (msg("peer reset"), robust_peer_reset),
    (msg("slow reader"), robust_slow_reader),
]


def check_robustness(start_server) -> None:
    """Each scenario on a fresh server, so that one failure does not hide another; each
    server is stopped after its scenario, so that none runs beside the next. A failure reads
    one line per scenario with its own verdict: the failed ones first (the first line is the
    one a summary shows), then those that passed."""
    failed: list[Message] = []
    passed: list[Message] = []
    for name, scenario in ROBUSTNESS:
        server = start_server()
        server.story.did(msg("— scenario: {name} (fresh server) —", name=name))
        try:
            problem = scenario(server)
        except BaseException as exc:  # a fail() inside the scenario
            if type(exc).__name__ != "Failed":
                raise
            problem = reason_of(exc)
        finally:
            server.teardown()
        if problem:
            server.story.saw(problem)
            failed.append(msg("✗ {scenario}: {why}", scenario=name, why=problem))
        else:
            passed.append(msg("✓ {scenario}", scenario=name))
    if failed:
        fail(join([*failed, *passed], "\n"))
