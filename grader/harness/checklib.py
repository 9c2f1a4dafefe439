"""Checks shared by the assignments: each takes a started server and its story, and either
returns (pass) or fails with one sentence in terms of what the grader did and saw."""

from __future__ import annotations

import time

import pytest

from grader.harness.clients import Client, preview
from grader.harness import procobs
from grader.harness.plugin import Reply, Server, fail

REPLY_DEADLINE = 5.0     # a reply that should come: far above loopback latency, even starved
MANY_DEADLINE = 10.0     # many clients at once, each perhaps a thread to start: a wider bound
ACCEPT_DEADLINE = 5.0    # a connection the server should accept (and register)
CLOSE_DEADLINE = 5.0     # a descriptor that should be closed after its peer left
SLOW_READER_DEADLINE = 30.0   # megabytes of backlog to come back once the client reads
STALL = 0.5              # the slow reader's sending made no progress this long: buffers full
CPU_WINDOW = 0.8         # one observation window of CPU time
IDLE_CPU_LIMIT = 20.0    # percent; an idle event loop is near 0, a busy loop near 100
PEER_GONE = ("CLOSE_WAIT", "LAST_ACK", "CLOSING", "CLOSE")   # the client has closed its end
ECHO_MESSAGES = [b"ping", b"hello, world\n", bytes(range(32, 127)) * 11,
                 (b"0123456789abcdef" * 1024), bytes(range(33, 127)) * 697 + b"!" * 2]


def pattern(size: int, seed: int = 0) -> bytes:
    """Printable bytes in which every position is recognisable (truncation shows)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return bytes(alphabet[(i * 7 + seed) % len(alphabet)] for i in range(size))


def quote(server: Server, site: str | None) -> str:
    """'server.py:16 (`conn.close()`)' from a trace site, reading the student's own line."""
    return server.proc.quote(site)


def echo_or_fail(server: Server, client: Client, data: bytes, context: str,
                 quiet: bool = False) -> None:
    """For `echo` alone: the very bytes must come back."""
    ok, sentence = client.echo(data, REPLY_DEADLINE, quiet=quiet)
    if not ok:
        death = server.died_within(1.0)
        if death:
            server.story.saw(f"the server is gone: {death}")
            fail(f"the server died after {context}: {death}")
        fail(f"{sentence} ({context})")


def serve_or_fail(server: Server, client: Client, data: bytes, context: str,
                  quiet: bool = False) -> Reply:
    """For every check but `echo`: the message must be served, which means that any reply
    came, or that the server read it. What the reply says is `echo`'s business. On return
    nothing is left unread or still coming, so the client may close in order."""
    reply = server.exchange(client, data, REPLY_DEADLINE, quiet=quiet)
    if not reply.served:
        death = server.died_within(1.0)
        if death:
            server.story.saw(f"the server is gone: {death}")
            fail(f"the server died after {context}: {death}")
        server.story.saw(reply.sentence(REPLY_DEADLINE))
        fail(f"{reply.sentence(REPLY_DEADLINE)} ({context}); the server was "
             f"{server.blocked_on(server.fd_names())}")
    return reply


def _peer_gone_fds(server: Server) -> set[int]:
    return {s.fd for s in server.sockets() if s.state in PEER_GONE}


def wait_server_closed(server: Server, clients: list[Client], fds: list[int | None]) -> list[str]:
    """After clients left, wait (with a deadline) until the server dropped their sockets.
    Returns the names of those whose server-side socket is still open."""
    pairs = [(c, fd) for c, fd in zip(clients, fds) if fd is not None]

    def still_open():
        gone = _peer_gone_fds(server)
        return [c.name for c, fd in pairs if fd in gone]

    server.wait_until(lambda: not still_open(), CLOSE_DEADLINE)
    return still_open()


def wait_accepted(server: Server, clients: list[Client], timeout: float = ACCEPT_DEADLINE) -> bool:
    """Until the server's fd table shows every client's connection, or the server sleeps
    without having accepted them all (a one-client-at-a-time server)."""
    return server.wait_until_or_asleep(
        lambda: all(server.socket_of(c) is not None for c in clients), timeout)


# --- the checks -------------------------------------------------------------------------

class CloseWaiter:
    """Waits for the server to drop departed clients' sockets, until it once shows that it
    does not (a leak, judged by 'cleanup'): then waiting again would only cost time."""

    def __init__(self, server: Server):
        self.server = server
        self.leaks = False

    def wait(self, clients: list[Client], fds: list[int | None]) -> None:
        if self.leaks:
            return
        left_open = wait_server_closed(self.server, clients, fds)
        if left_open:
            self.leaks = True
            self.server.story.saw(f"the server kept the socket of {left_open[0]} open after it "
                                  f"left (a leak, judged by 'cleanup')")


def check_runs(server: Server) -> None:
    server.require_alive("it started listening")


def check_echo(server: Server) -> None:
    a = server.connect("A")
    for data in ECHO_MESSAGES:
        echo_or_fail(server, a, data, f"message of {len(data)} bytes on one connection")
    # Further connections are 'disconnect''s business, several at once 'concurrency''s.
    a.close()


def check_disconnect(server: Server, rounds: int = 5) -> None:
    waiter = CloseWaiter(server)
    for i in range(1, rounds + 1):
        c = server.connect(f"C{i}")
        context = f"client C{i - 1} had left" if i > 1 else "the first client connected"
        serve_or_fail(server, c, b"client %d says hi" % i, context)
        fd = server.server_fd(c)
        c.close()
        # Let the server drop this connection before the next arrives, so that the next
        # accept() reuses the descriptor number (the stale-registration trap).
        waiter.wait([c], [fd])
        server.require_alive(f"client C{i} left")


def check_concurrency(server: Server, many: int = 20) -> None:
    a = server.connect("A")
    server.story.did("client A sends nothing")
    b = server.connect("B")
    reply = server.exchange(b, b"ping", REPLY_DEADLINE)
    if not reply.served:
        server.require_alive("client B sent 'ping'")
        where = server.blocked_on(server.fd_names())
        fail(f"client A connected and sent nothing; client B sent 'ping' and in "
             f"{REPLY_DEADLINE:g} s got no reply, nor did the server read it: the server was "
             f"{where}")
    clients = [server.connect(f"M{i}", quiet=True) for i in range(1, many + 1)]
    server.story.did(f"{many} more clients connected at once")
    replies = []
    for i, c in enumerate(clients, 1):
        replies.append(Reply(c, b"many-%d;" % i))
        c.send(replies[-1].sent, quiet=True)
    server.story.did(f"each of the {many} clients sent one message before any reply was read")
    server.await_replies(replies, MANY_DEADLINE)
    unserved = [r.client.name for r in replies if not r.served]
    if unserved:
        server.require_alive(f"{many} clients connected at once")
        fail(f"with {many} clients connected at once, {len(unserved)} of them ("
             f"{', '.join(unserved[:5])}{'…' if len(unserved) > 5 else ''}) got no reply in "
             f"{MANY_DEADLINE:g} s, nor did the server read their messages; the server was "
             f"{server.blocked_on(server.fd_names())}")
    server.story.saw(f"all {many} clients were served")
    if not server.exchange(a, b"A speaks at last", REPLY_DEADLINE).served:
        server.require_alive("client A finally sent")
        fail("client A, silent until now, got no reply once it spoke, nor did the server "
             "read its message")


def check_idle_cpu(server: Server) -> None:
    readings = []

    def window(label: str, key: str) -> None:
        measured = server.cpu(CPU_WINDOW)
        where = server.blocked_on()
        # Judged on how much of the window it wanted the CPU, which a loaded machine does
        # not change; the CPU it got is shown too.
        readings.append((label, measured.busy_percent, where))
        server.story.saw(f"{label}: {measured.percent:.0f}% CPU over {measured.seconds:.2f} s "
                         f"(running or ready to run {measured.busy_percent:.0f}% of it), {where}")
        server.story.measure(f"cpu_{key}_percent", round(measured.percent, 1))

    window("fresh, no client", "fresh")
    e = server.connect("E")
    serve_or_fail(server, e, b"wake up", "a first client", quiet=True)
    silent = [server.connect(f"S{i}", quiet=True) for i in range(1, 6)]
    # The window starts once the server has taken in what it will: the new connections are
    # accepted, or it sleeps without them (one client at a time).
    wait_accepted(server, silent)
    server.story.did("client E was served; 5 more clients connected and sent nothing")
    window("silent clients connected", "silent")
    clients = [e, *silent]
    fds = [server.server_fd(c) for c in clients]
    for c in clients:
        c.close(quiet=True)
    server.story.did("all 6 clients left")
    wait_server_closed(server, clients, fds)
    window("after clients left", "after")
    server.require_alive("the idle observations")
    busy = [(label, pct, where) for label, pct, where in readings if pct > IDLE_CPU_LIMIT]
    if busy:
        label, pct, where = busy[0]
        polls = [e for e in server.proc.trace() if e["ev"] == "select"
                 and isinstance(e.get("timeout"), (int, float)) and e["timeout"] <= 0.001]
        because = ""
        if polls:
            because = (f"; {quote(server, polls[0].get('at'))} calls select(timeout="
                       f"{polls[0]['timeout']}), which returns at once, so the loop never sleeps")
        fail(f"the server kept the CPU busy {pct:.0f}% of the time while idle ({label}; "
             f"limit {IDLE_CPU_LIMIT:g}%): a busy loop instead of sleeping in the kernel{because}")


def check_single_thread(server: Server) -> None:
    clients = [server.connect(f"T{i}") for i in range(1, 4)]
    replies = [Reply(c, b"how many threads?") for c in clients]
    for r in replies:
        r.client.send(r.sent, quiet=True)
    server.story.did("3 clients connected and each sent a message")
    worst = server.snapshot()

    def look() -> None:
        nonlocal worst
        snap = server.snapshot()
        if snap.threads + len(snap.children) > worst.threads + len(worst.children):
            worst = snap

    # Whether all three are served is 'concurrency''s business; waiting for it only makes
    # sure the server has done its work for each client while we look.
    server.await_replies(replies, REPLY_DEADLINE, on_look=look)
    look()
    server.require_alive("three clients connected")
    # Detached processes (a double fork) are no longer the server's children, but they are
    # still ours: the harness is their subreaper and starts nothing else.
    others = [p for p in server.proc.descendants() if p.pid != server.pid]
    children = max(len(worst.children), len(others))
    server.story.saw(f"the server had {_count(worst.threads, 'thread')} and "
                     f"{_count(children, 'other process', 'other processes')} while serving "
                     f"3 clients")
    started = [e for e in server.proc.trace() if e["ev"] in ("thread", "fork")]
    if worst.threads == 1 and not children and not started:
        return
    sites = [quote(server, e.get("at")) for e in started]
    because = f"; started at {', '.join(dict.fromkeys(sites))}" if sites else ""
    fail(f"the server ran {_count(worst.threads, 'thread')} and "
         f"{_count(children, 'child process', 'child processes')} while serving 3 "
         f"clients; this assignment asks for one thread, no child processes{because}")


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def check_uses_epoll(server: Server) -> None:
    """No message at all: the kernel shows whether the connections were accepted and are in
    an epoll interest list. Polled until that holds, the deadline, or the server sleeps
    (then nothing more will change)."""
    a = server.connect("A")
    b = server.connect("B")
    server.story.did("clients A and B send nothing")
    seen = {}

    def look() -> bool:
        snap = server.snapshot()
        fa, fb = server.server_fd(a, snap), server.server_fd(b, snap)
        seen.update(snap=snap, fa=fa, fb=fb)
        wanted = {server.listen_fd, fa, fb}
        return None not in wanted and any(wanted <= set(ep.epoll_targets)
                                          for ep in snap.epolls())

    if server.wait_until_or_asleep(look, ACCEPT_DEADLINE):
        for ep in seen["snap"].epolls():
            server.story.saw(f"epoll instance fd {ep.fd} watches fds {list(ep.epoll_targets)}")
        return
    server.require_alive("two clients connected")
    snap, fa, fb = seen["snap"], seen["fa"], seen["fb"]
    if not snap.epolls():
        kinds = sorted({e.get("selector") for e in server.proc.trace()
                        if e["ev"] in ("register", "select") and e.get("selector")})
        uses = f"; it uses {', '.join(kinds)}" if kinds else ""
        fail(f"the server holds no epoll instance (no anon_inode:[eventpoll] descriptor) while "
             f"two clients are connected{uses}; it waits {server.blocked_on()}")
    for ep in snap.epolls():
        server.story.saw(f"epoll instance fd {ep.fd} watches fds {list(ep.epoll_targets)}")
    unaccepted = [name for name, fd in (("A", fa), ("B", fb)) if fd is None]
    if unaccepted:
        fail(f"client {' and '.join(unaccepted)} connected but the server had not accepted "
             f"{'it' if len(unaccepted) == 1 else 'them'} after {ACCEPT_DEADLINE:g} s, so no "
             f"interest list could hold {'its connection' if len(unaccepted) == 1 else 'theirs'}"
             f"; it waits {server.blocked_on()}")
    wanted = {"the listening socket": server.listen_fd, "client A's connection": fa,
              "client B's connection": fb}
    best = min((ep for ep in snap.epolls()),
               key=lambda ep: sum(fd not in ep.epoll_targets for fd in wanted.values()))
    missing = [name for name, fd in wanted.items() if fd not in best.epoll_targets]
    fail(f"no epoll instance of the server watches {', '.join(missing)} "
         f"(watched: {sorted(snap.watched())}; listening fd {server.listen_fd}, "
         f"connections {fa} and {fb})")


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
    return (f"{quote(server, e.get('at'))} closed fd {e.get('fd')} while it was still "
            f"registered with the selector (registered at {quote(server, e.get('registered_at'))}"
            f"); call unregister() before close()")


def _no_selector(server: Server) -> str | None:
    """Why there is nothing to unregister from, when there is not: no epoll instance in the
    kernel, no selector registration traced, and not waiting in select/poll/epoll."""
    if server.snapshot().epolls() or procobs.waits_in_selector(server.pid):
        return None
    if any(e["ev"] in ("register", "select") for e in server.proc.trace()):
        return None
    return (f"not applicable: the server has no selector to unregister from (the kernel shows "
            f"no epoll instance, and it waits {server.blocked_on(server.fd_names())}, not in "
            f"select/poll/epoll); this check earns nothing without one")


def _unregister_rounds(server: Server, rounds: int) -> None:
    waiter = CloseWaiter(server)
    for i in range(1, rounds + 1):
        c = server.connect(f"U{i}")
        fd = None

        def registered() -> bool:
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
                fail(f"client U{i} connected but the server did not accept it in "
                     f"{ACCEPT_DEADLINE:g} s; it waits {server.blocked_on()}")
            reuse = " (a number a departed client had)" if i > 1 else ""
            fail(f"client U{i}'s connection (fd {fd}{reuse}) was accepted but is not in the "
                 f"epoll interest list: the selector still held a stale registration")
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
            return sorted(fd for fd in _peer_gone_fds(server) if fd in watched)

        # Reading the end of stream and unregistering takes the server a moment: polled
        # until the deadline, never judged from one look.
        if not server.wait_until(lambda: not stale(), CLOSE_DEADLINE):
            left = stale()
            if left:
                fail(f"client U{i} left, but {CLOSE_DEADLINE:g} s later the server still "
                     f"watches its socket with epoll (fd {left[0]}: the client has gone; it "
                     f"was neither unregistered nor closed)")


WAVE = 5    # clients at once in one wave of `cleanup`: within the smallest backlog seen in
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
        def taken_in() -> bool:
            socks = server.sockets()
            for r in pending:
                r.pull()
                server.note_read(r, socks)
            return all(r.served for r in pending)

        server.wait_until_or_asleep(taken_in, max(0.0, deadline - time.monotonic()))
        served = [r for r in pending if r.served]
        if not served:
            server.require_alive(f"{start + WAVE - len(pending)} clients came and went")
            fail(f"{pending[0].sentence(MANY_DEADLINE)} (clients came and went {WAVE} at a "
                 f"time); the server was {server.blocked_on(server.fd_names())}")
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
    server.story.saw(f"the server holds {first} descriptors, {first - before} more than before "
                     f"any client; {cycles - WAVE} more clients follow")
    for start in range(1 + WAVE, cycles + 1, WAVE):
        _wave(server, "K", start)
    server.story.did(f"{cycles} clients in all came and went, {WAVE} at a time")
    last = _back_to(server, first)
    server.settle(CLOSE_DEADLINE)
    server.require_alive(f"{cycles} clients came and went")
    if last <= first:
        server.story.saw(f"descriptors back to {last}: what the first clients added was opened "
                         f"once, not per client")
        return
    waiting = [s for s in server.sockets() if s.state == "CLOSE_WAIT"]
    what = (f": {len(waiting)} are sockets whose client has gone (CLOSE_WAIT), never closed"
            if waiting else "")
    fail(f"after {cycles} clients came and went the server holds {last} descriptors, "
         f"{last - before} more than before any client and {last - first} more than after the "
         f"first {WAVE}{what}")


def _back_to(server: Server, count: int) -> int:
    """Poll (deadline) until the server holds at most `count` descriptors; the last count."""
    counts = []

    def back() -> bool:
        counts.append(len(server.snapshot().descriptors))
        return counts[-1] <= count

    server.wait_until(back, CLOSE_DEADLINE)
    return counts[-1]


# --- robustness: beyond the tutorial ---------------------------------------------------------
# Survival, serving and lengths: what a reply says is `echo`'s business, how many messages a
# connection carries too.

def _still_serves(server: Server, after: str) -> str | None:
    f = server.client("F")
    if not f.connect():
        return f"after {after}, {server.died_within(1.0) or 'a new client could not connect'}"
    reply = server.exchange(f, b"still there?", REPLY_DEADLINE)
    if not reply.served:
        return f"after {after}, {server.died_within(1.0) or reply.sentence(REPLY_DEADLINE)}"
    f.close()
    return None


def _length_problem(reply: Reply, what: str) -> str | None:
    """A reply cut short (fewer bytes than sent, then nothing more) is lost data."""
    if reply.got and reply.end != "complete" and len(reply.got) < len(reply.sent):
        return (f"{what}: {len(reply.got)} of {len(reply.sent)} bytes came back, then "
                f"{'the server closed' if reply.end == 'closed' else 'nothing more'}")
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
        return server.died_within(1.0) or reply.sentence(REPLY_DEADLINE)
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
        return (f"a client sent 'half' and half-closed; after serving it the server did not "
                f"close the connection in {CLOSE_DEADLINE:g} s ({end})")
    server.story.saw(f"{reply.told()}, then the server closed")
    return _still_serves(server, "a client half-closed")


def robust_slow_reader(server: Server, cap: int = 16 * 1024 * 1024) -> str | None:
    s = server.connect("S")
    sock = s.sock
    sock.setblocking(False)
    data = pattern(256 * 1024, seed=3)
    sent = 0
    stalled_since = None
    ended = None
    while sent < cap:
        try:
            sent += sock.send(data[sent % len(data):] if sent % len(data) else data)
            stalled_since = None
        except BlockingIOError:
            # The buffers are full (the server stopped reading, as it should when its
            # replies pile up): the rest of the scenario happens in this state.
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > STALL:
                break
            time.sleep(0.01)
        except OSError as exc:
            # The server ended this connection: how many messages a connection carries is
            # `echo`'s business; that the server survives and serves others is judged below.
            ended = exc.strerror or str(exc)
            break
    sock.setblocking(True)
    server.story.did(f"client S sent {sent / 1e6:.1f} MB without reading any reply"
                     + (f" (then its connection ended: {ended})" if ended else ""))
    f = server.client("F")
    if not f.connect():
        return "while one client was sending without reading, a new client could not connect"
    reply_f = server.exchange(f, b"am I served?", REPLY_DEADLINE)
    if not reply_f.served:
        server.require_alive("a client sent without reading")
        return (f"while client S sent {sent / 1e6:.1f} MB without reading, client F got no "
                f"reply in {REPLY_DEADLINE:g} s, nor did the server read its message: the "
                f"server was {server.blocked_on(server.fd_names())}")
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
    return (f"client S then read its replies: {len(reply_s.got)} of {sent} bytes came back "
            f"({reply_s.end}: the server had read everything and had nothing left to send)")


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


# --- non-blocking sockets and the lesson of the blocking server -----------------------------

def _setblocking_sites(server: Server, fd: int) -> str:
    calls = [e for e in server.proc.trace() if e["ev"] in ("setblocking", "settimeout")
             and e.get("fd") == fd]
    if not calls:
        return "; setblocking(False) was never called on it"
    last = calls[-1]
    return f"; the last call on it was at {quote(server, last.get('at'))}"


def check_nonblocking(server: Server) -> None:
    """Kernel evidence that the sockets are non-blocking, and a server with nothing to do (no
    client, then a silent client) that survives the BlockingIOErrors this brings."""
    snap = server.snapshot()
    listener = snap.descriptors.get(server.listen_fd)
    if listener is None or listener.nonblocking is None:
        # The kit's fault, not the student's: an error, scored as the grader's.
        raise RuntimeError("the flags of the listening socket could not be read from /proc")
    server.story.saw(f"listening socket fd {server.listen_fd}: "
                     f"{'non-blocking' if listener.nonblocking else 'blocking'} (O_NONBLOCK "
                     f"{'set' if listener.nonblocking else 'not set'})")
    if not listener.nonblocking:
        fail(f"the listening socket (fd {server.listen_fd}) is blocking (no O_NONBLOCK in the "
             f"kernel's flags){_setblocking_sites(server, server.listen_fd)}")
    idle = server.cpu(CPU_WINDOW)
    server.story.saw(f"no client for {idle.seconds:.2f} s: the server used {idle.percent:.0f}% "
                     f"CPU, {server.blocked_on()}")
    server.story.measure("cpu_no_client_percent", round(idle.percent, 1))
    server.require_alive("it had no client to accept for a while (accept() raises "
                         "BlockingIOError then)")
    a = server.connect("A")
    server.story.did("client A sends nothing")
    fd_a = None

    def accepted() -> bool:
        nonlocal fd_a
        fd_a = server.server_fd(a)
        return fd_a is not None

    if not server.wait_until(accepted, ACCEPT_DEADLINE):
        server.require_alive("client A connected")
        fail(f"client A connected but the server did not accept it within {ACCEPT_DEADLINE:g} s")
    silent = server.cpu(CPU_WINDOW)
    server.story.saw(f"client A silent for {silent.seconds:.2f} s: the server used "
                     f"{silent.percent:.0f}% CPU")
    server.story.measure("cpu_silent_client_percent", round(silent.percent, 1))
    server.require_alive("client A connected and sent nothing (recv() raises BlockingIOError "
                         "then)")
    conn = server.snapshot().descriptors.get(fd_a)
    if conn is not None and conn.nonblocking is False:
        fail(f"client A's connection (fd {fd_a}) is blocking (no O_NONBLOCK in the kernel's "
             f"flags){_setblocking_sites(server, fd_a)}; accepted sockets do not inherit "
             f"non-blocking mode from the listening socket")
    server.story.saw(f"client A's connection (fd {fd_a}) is non-blocking")
    serve_or_fail(server, a, b"now I speak", "client A stayed silent for a while")


def check_waits_its_turn(server: Server, window: float = 1.0) -> None:
    """The lesson of the blocking server, shown rather than judged: a second client waits
    until the first leaves. It fails only when the second client is never served."""
    a = server.connect("A")
    serve_or_fail(server, a, b"I am first", "client A connected")
    b = server.connect("B")
    b.send(b"me too?")
    reply = Reply(b, b"me too?")
    # An observation window (what a one-at-a-time server does not do): B is not served.
    server.await_replies([reply], window)
    if reply.served:
        server.story.saw(f"{reply.told()} at once, while A was still connected: this server "
                         f"is concurrent (more than this assignment asks), or had already "
                         f"ended A's connection")
        return
    server.story.saw(f"client B was not served in {window:g} s while client A stayed "
                     f"connected: the server is {server.blocked_on(server.fd_names())}")
    a.close()
    left = time.monotonic()
    reply.end = None
    server.await_replies([reply], REPLY_DEADLINE)
    if not reply.served:
        death = server.died_within(1.0)
        fail("client B waited while A was connected, as expected, but once A left " +
             (f"it was never served: {death}" if death else
              f"it was not served in {REPLY_DEADLINE:g} s (no reply, message not read)"))
    server.story.saw(f"client A left; {reply.told()} {time.monotonic() - left:.2f} s later: "
                     f"one client at a time")
