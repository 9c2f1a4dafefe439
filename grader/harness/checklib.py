"""Checks shared by the assignments: each takes a started server and its story, and either
returns (pass) or fails with one sentence in terms of what the grader did and saw."""

from __future__ import annotations

import time

import pytest

from grader.harness.clients import Client, preview
from grader.harness.plugin import Server, fail

REPLY_DEADLINE = 3.0     # a reply that should come: far above loopback latency
CLOSE_DEADLINE = 3.0     # a descriptor that should be closed after its peer left
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
    ok, sentence = client.echo(data, REPLY_DEADLINE, quiet=quiet)
    if not ok:
        death = server.died_within(1.0)
        if death:
            server.story.saw(f"the server is gone: {death}")
            fail(f"the server died after {context}: {death}")
        fail(f"{sentence} ({context})")


def wait_server_closed(server: Server, clients: list[Client], fds: list[int | None]) -> list[str]:
    """After clients left, wait (with a deadline) until the server dropped their sockets.
    Returns the names of those whose server-side socket is still open."""
    pairs = [(c, fd) for c, fd in zip(clients, fds) if fd is not None]

    def still_open():
        snap = server.snapshot()
        gone = {c.fd for c in snap.connections if c.status in PEER_GONE}
        return [c.name for c, fd in pairs if fd in gone]

    server.wait_until(lambda: not still_open(), CLOSE_DEADLINE)
    return still_open()


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
        echo_or_fail(server, c, b"client %d says hi" % i, context)
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
    ok, _ = b.echo(b"ping", REPLY_DEADLINE)
    if not ok:
        server.require_alive("client B sent 'ping'")
        where = server.blocked_on(server.fd_names())
        fail(f"client A connected and sent nothing; client B sent 'ping' and got no reply in "
             f"{REPLY_DEADLINE:g} s: the server was {where}")
    clients = [server.connect(f"M{i}", quiet=True) for i in range(1, many + 1)]
    server.story.did(f"{many} more clients connected at once")
    for i, c in enumerate(clients, 1):
        c.send(b"many-%d;" % i, quiet=True)
    server.story.did(f"each of the {many} clients sent one message before any reply was read")
    for i, c in enumerate(clients, 1):
        want = b"many-%d;" % i
        got, why = c.recv_exact(len(want), REPLY_DEADLINE)
        if got != want:
            server.require_alive(f"{many} clients connected at once")
            fail(f"with {many} clients connected at once, client M{i} got {preview(got)} "
                 f"instead of {preview(want)} ({why}); the server was "
                 f"{server.blocked_on(server.fd_names())}")
    server.story.saw(f"all {many} clients got their reply")
    ok, _ = a.echo(b"A speaks at last", REPLY_DEADLINE)
    if not ok:
        server.require_alive("client A finally sent")
        fail("client A, silent until now, got no reply once it spoke")


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
    echo_or_fail(server, e, b"wake up", "a first client", quiet=True)
    silent = [server.connect(f"S{i}", quiet=True) for i in range(1, 6)]
    server.story.did("client E was echoed; 5 more clients connected and sent nothing")
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
    for c in clients:
        c.send(b"how many threads?", quiet=True)
    server.story.did("3 clients connected and each sent a message")
    deadline = time.monotonic() + REPLY_DEADLINE
    worst = server.snapshot()
    for c in clients:
        # Whether all three are answered is 'concurrency''s business; here the replies only
        # make sure the server has done its work for each client before we look.
        got, _ = c.recv_exact(17, max(0.0, deadline - time.monotonic()))
        snap = server.snapshot()
        if snap.threads + len(snap.children) > worst.threads + len(worst.children):
            worst = snap
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
    a = server.connect("A")
    echo_or_fail(server, a, b"epoll?", "one client connected")
    b = server.connect("B")
    snap = server.snapshot()
    epolls = snap.epolls()
    if not epolls:
        kinds = sorted({e.get("selector") for e in server.proc.trace()
                        if e["ev"] in ("register", "select") and e.get("selector")})
        uses = f"; it uses {', '.join(kinds)}" if kinds else ""
        fail(f"the server holds no epoll instance (no anon_inode:[eventpoll] descriptor) while "
             f"two clients are connected{uses}; it waits {server.blocked_on()}")
    echo_or_fail(server, b, b"epoll!", "two clients connected")
    snap = server.snapshot()
    fa, fb = server.server_fd(a, snap), server.server_fd(b, snap)
    wanted = {"the listening socket": server.listen_fd, "client A's connection": fa,
              "client B's connection": fb}
    missing = list(wanted)
    for ep in snap.epolls():
        server.story.saw(f"epoll instance fd {ep.fd} watches fds {list(ep.epoll_targets)}")
        missing = [name for name, fd in wanted.items() if fd not in ep.epoll_targets]
        if not missing:
            return
    fail(f"no epoll instance of the server watches {', '.join(missing)} "
         f"(watched: {sorted(snap.watched())}; listening fd {server.listen_fd}, "
         f"connections {fa} and {fb})")


def check_unregister(server: Server, rounds: int = 3) -> None:
    """One client at a time, each leaving before the next comes, so that descriptor numbers
    are reused; after each: the kernel's interest lists, then the tracer's account."""
    try:
        _unregister_rounds(server, rounds)
    except pytest.fail.Exception as exc:
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


def _unregister_rounds(server: Server, rounds: int) -> None:
    waiter = CloseWaiter(server)
    for i in range(1, rounds + 1):
        c = server.connect(f"U{i}")
        echo_or_fail(server, c, b"register me", f"client U{i} connected")
        snap = server.snapshot()
        fd = server.server_fd(c, snap)
        if snap.epolls() and fd is not None and fd not in snap.watched():
            reuse = " (a number a departed client had)" if i > 1 else ""
            fail(f"client U{i}'s connection (fd {fd}{reuse}) was served but is not in the "
                 f"epoll interest list: the selector still held a stale registration")
        c.close()
        waiter.wait([c], [fd])
        server.require_alive(f"client U{i} left")
        snap = server.snapshot()
        stale = [conn.fd for conn in snap.connections
                 if conn.status in PEER_GONE and conn.fd in snap.watched()]
        if stale:
            fail(f"client U{i} left, but the server still watches its socket with epoll "
                 f"(fd {stale[0]}: the client has gone; it was neither unregistered nor closed)")


def check_cleanup(server: Server, cycles: int = 30) -> None:
    # One client first, so that what a server opens once, lazily, is not counted as a leak.
    w = server.connect("W", quiet=True)
    echo_or_fail(server, w, b"warm-up", "a first client", quiet=True)
    fd = server.server_fd(w)
    w.close(quiet=True)
    wait_server_closed(server, [w], [fd])
    baseline = len(server.snapshot().descriptors)
    server.story.saw(f"the server holds {baseline} descriptors after start")
    for i in range(cycles):
        c = server.connect(f"K{i}", quiet=True)
        echo_or_fail(server, c, b"cycle %d" % i, f"{i} clients came and went", quiet=True)
        c.close(quiet=True)
    server.story.did(f"{cycles} clients connected, were echoed and left, one after another")
    counts = []

    def back_to_baseline() -> bool:
        counts.append(len(server.snapshot().descriptors))
        return counts[-1] <= baseline

    if server.wait_until(back_to_baseline, CLOSE_DEADLINE):
        server.story.saw(f"descriptors back to {counts[-1]}")
        return
    server.require_alive(f"{cycles} clients came and went")
    snap = server.snapshot()
    waiting = [c for c in snap.connections if c.status == "CLOSE_WAIT"]
    extra = counts[-1] - baseline
    what = (f": {len(waiting)} are sockets whose client has gone (CLOSE_WAIT), never closed"
            if waiting else "")
    fail(f"after {cycles} clients came and went the server holds {counts[-1]} descriptors, "
         f"{extra} more than after the first client left{what}")


# --- robustness: beyond the tutorial ---------------------------------------------------------

def _still_serves(server: Server, after: str) -> str | None:
    f = server.client("F")
    ok = f.connect()
    sentence = "a new client could not connect"
    if ok:
        ok, sentence = f.echo(b"still there?", REPLY_DEADLINE)
        f.close()
    if not ok:
        death = server.died_within(1.0)
        return f"after {after}, {death or sentence}"
    return None


def robust_peer_reset(server: Server) -> str | None:
    r = server.connect("R")
    echo_or_fail(server, r, b"about to vanish", "a client connected")
    r.reset()
    return _still_serves(server, "a client reset its connection (RST)")


def robust_non_utf8(server: Server) -> str | None:
    n = server.connect("N")
    data = b"\xff\xfe caf\xe9 \x80\x00 bytes"
    ok, sentence = n.echo(data, REPLY_DEADLINE)
    if not ok:
        return server.died_within(1.0) or sentence
    return _still_serves(server, "a client sent non-UTF-8 bytes")


def robust_half_close(server: Server) -> str | None:
    h = server.connect("H")
    h.send(b"half")
    h.shutdown_write()
    got, why = h.recv_exact(4, REPLY_DEADLINE)
    if got != b"half":
        server.require_alive("a client half-closed")
        return f"a client sent 'half' then half-closed; it got {preview(got)} back ({why})"
    end = h.wait_closed(REPLY_DEADLINE)
    if end != "closed":
        return (f"a client sent 'half' and half-closed; after the echo the server did not "
                f"close the connection in {REPLY_DEADLINE:g} s ({end})")
    server.story.saw("client H got 'half' back, then the server closed")
    return _still_serves(server, "a client half-closed")


def robust_slow_reader(server: Server, cap: int = 16 * 1024 * 1024) -> str | None:
    s = server.connect("S")
    sock = s.sock
    sock.setblocking(False)
    data = pattern(256 * 1024, seed=3)
    sent = 0
    stalled_since = None
    while sent < cap:
        try:
            sent += sock.send(data[sent % len(data):] if sent % len(data) else data)
            stalled_since = None
        except BlockingIOError:
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > 0.5:
                break
            time.sleep(0.01)
        except OSError as exc:
            return f"a client sending without reading saw its connection fail: {exc}"
    server.story.did(f"client S sent {sent / 1e6:.1f} MB without reading any reply")
    f = server.client("F")
    if not f.connect():
        return "while one client was sending without reading, a new client could not connect"
    ok, _ = f.echo(b"am I served?", REPLY_DEADLINE)
    if not ok:
        server.require_alive("a client sent without reading")
        return (f"while client S sent {sent / 1e6:.1f} MB without reading, client F got no "
                f"reply in {REPLY_DEADLINE:g} s: the server was {server.blocked_on(server.fd_names())}")
    f.close()
    sock.setblocking(True)
    expected = b"".join(data for _ in range(sent // len(data) + 1))[:sent]
    # A generous overall deadline; 2 s without a byte means the rest is not coming.
    got, why = s.recv_exact(sent, 30.0, idle=2.0)
    if got != expected:
        return (f"client S then read its replies: {len(got)} of {sent} bytes came back "
                f"({why})" + ("" if expected.startswith(got) else ", and they differ"))
    server.story.saw(f"client S got all {sent / 1e6:.1f} MB back once it read")
    return None


ROBUSTNESS = [
    ("half-close", robust_half_close),
    ("non-UTF-8 bytes", robust_non_utf8),
    ("peer reset", robust_peer_reset),
    ("slow reader", robust_slow_reader),
]


def check_robustness(start_server) -> None:
    """Each scenario on a fresh server, so that one failure does not hide another."""
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

    if not server.wait_until(accepted, REPLY_DEADLINE):
        server.require_alive("client A connected")
        fail(f"client A connected but the server did not accept it within {REPLY_DEADLINE:g} s")
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
    echo_or_fail(server, a, b"now I speak", "client A stayed silent for a while")


def check_waits_its_turn(server: Server, window: float = 1.0) -> None:
    """The lesson of the blocking server, shown rather than judged: a second client waits
    until the first leaves. It fails only when the second client is never served."""
    a = server.connect("A")
    echo_or_fail(server, a, b"I am first", "client A connected")
    b = server.connect("B")
    b.send(b"me too?")
    got, _ = b.recv_exact(7, window)
    if got == b"me too?":
        server.story.saw("client B was served at once, while A was still connected: this "
                         "server is concurrent (more than this assignment asks)")
        return
    server.story.saw(f"client B got no reply in {window:g} s while client A stayed connected: "
                     f"the server is {server.blocked_on(server.fd_names())}")
    a.close()
    left = time.monotonic()
    rest, why = b.recv_exact(7 - len(got), REPLY_DEADLINE)
    if got + rest != b"me too?":
        death = server.died_within(1.0)
        fail("client B waited while A was connected, as expected, but once A left " +
             (f"it was never served: {death}" if death else
              f"it got no reply in {REPLY_DEADLINE:g} s ({why})"))
    server.story.saw(f"client A left; client B got its reply {time.monotonic() - left:.2f} s "
                     f"later: one client at a time")
