"""The client assignment's checks: the kit's own echo server, in threads of the harness, and
the student's client run against it as `python client.py HOST PORT MESSAGE`."""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from grader.harness import procobs
from grader.harness.clients import Story, preview
from grader.harness.launch import StudentProcess
from grader.harness.plugin import describe_death, fail

HOST = "127.0.0.1"
RUN_BOUND = 10.0          # a client must have finished its conversation within this
MESSAGE_DEADLINE = 5.0    # once connected, the whole message should arrive within this
REPLY_DELAY = 0.2         # the kit answers this long after the message, as a real network
                          # would: no client may count on the reply being there at once
PIECE_GAP = 0.05          # between the pieces of a reply sent back in several pieces
HOLD_AT_LEAST = 0.3       # nonblocking: the reply is held back at least this long
QUEUE_FULL_FOR = 0.3      # connect_wait: the queue stays full this long after the client's SYN
HANDSHAKE_DEADLINE = 8.0  # the client's kernel resends a dropped SYN 1 s, 3 s, 7 s after the first
POLL = 0.02               # how often the kit looks at the client's process
SEND_TIMEOUT = 5.0        # the kit's own sends to a client that does not read

ECHO_MESSAGES = [         # (message, pieces the reply is sent back in)
    ("ping", 2),
    ("non-blocking 客户端 says 你好, ½ ☃ and goodbye", 3),
    ("".join("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(i * 7) % 62]
             for i in range(3000)), 4),
    ("".join("0123456789 abcdef"[(i * 5) % 17] for i in range(20000)), 5),
]

# Syscalls a client waits in that procobs does not name (its table is about servers).

# What a crash means, as a table: (exception names, words of the student's line, advice).
# The first row whose exception matches and whose words (if any) occur in the line applies.
ADVICE = [
    (("BlockingIOError",), ("connect",),
     "connect() on a non-blocking socket always raises BlockingIOError: the handshake has "
     "only started. Catch it, then wait until the socket is writable (selectors EVENT_WRITE)"),
    (("BlockingIOError", "OSError", "BrokenPipeError", "ConnectionResetError"),
     ("send",),
     "send() before the connection is up raises BlockingIOError (or OSError): after connect(), "
     "wait until the socket is writable (selectors EVENT_WRITE) and SO_ERROR is 0, then send"),
    (("BlockingIOError",), ("recv",),
     "recv() on a non-blocking socket raises BlockingIOError while the reply has not arrived: "
     "wait until the socket is readable (selectors EVENT_READ), or catch it and try again"),
    (("UnicodeDecodeError",), (),
     "a piece of the reply can end in the middle of a character: collect the bytes and decode "
     "once the whole reply is there"),
    (("IndexError",), ("argv",),
     "the kit runs `python client.py HOST PORT MESSAGE`: the message is sys.argv[3]"),
    (("ConnectionRefusedError",), (),
     "connect to the host and port given as sys.argv[1] and sys.argv[2]"),
]


# --- the kit's echo server ------------------------------------------------------------------

@dataclass
class Conversation:
    """One connection a client made to the kit's server, as the kit saw it."""
    peer: tuple
    accepted_at: float
    expected: bytes
    received: bytearray = field(default_factory=bytearray)
    message_at: float | None = None   # when the message had arrived intact
    sent: int = 0                     # reply bytes sent so far
    reply_size: int = 0
    replied: bool = False             # the whole reply went out
    closed_early: bool = False        # the client left before the whole reply was sent
    unread: bool = False              # the client left with the reply unread (its kernel sent RST)
    received_all: threading.Event = field(default_factory=threading.Event)  # done receiving
    reply_over: threading.Event = field(default_factory=threading.Event)    # sent, or gave up
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def complete(self) -> bool:
        """The message arrived intact (a newline or more after it is tolerated)."""
        return self.message_at is not None

    def progress(self) -> str:
        got = len(self.received)
        text = f"the kit's server had received {got} of the message's {len(self.expected)} bytes"
        if self.replied:
            text += " and sent the whole reply"
        elif self.sent:
            text += f" and sent {self.sent} of the {self.reply_size} bytes of the reply"
        return text


class KitServer:
    """An echo server on 127.0.0.1 (port 0) that the check controls: it answers each message
    after REPLY_DELAY, in `pieces` pieces PIECE_GAP apart, only once the reply is allowed
    (`hold`), and can keep its accept queue full (connect_wait)."""

    def __init__(self, expected: bytes, pieces: int = 1, hold: bool = False,
                 backlog: int = 16):
        self.expected = expected
        self.pieces = max(1, pieces)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((HOST, 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]
        self.conversations: list[Conversation] = []
        self.reply_allowed = threading.Event()
        if not hold:
            self.reply_allowed.set()
        self.fillers: list[socket.socket] = []
        self._filler_ports: set[int] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = False

    # -- connections --------------------------------------------------------------------

    def start(self) -> None:
        if self._accepting:
            return
        self._accepting = True
        self._spawn(self._accept_loop)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                sock, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._dispatch(sock, peer)

    def _dispatch(self, sock: socket.socket, peer: tuple) -> None:
        if peer[1] in self._filler_ports:
            sock.close()
            return
        conv = Conversation(peer, time.monotonic(), self.expected)
        self.conversations.append(conv)
        self._spawn(self._serve, conv, sock)

    def _serve(self, conv: Conversation, sock: socket.socket) -> None:
        try:
            self._receive(conv, sock)
            conv.received_all.set()
            while not self.reply_allowed.wait(0.05):
                if self._stop.is_set():
                    return
            if self._stop.wait(REPLY_DELAY):
                return
            self._reply(conv, sock, bytes(conv.received))
            conv.reply_over.set()
            if conv.replied:
                self._echo_the_rest(conv, sock)
        finally:
            sock.close()
            conv.received_all.set()
            conv.reply_over.set()
            conv.ended.set()

    def _receive(self, conv: Conversation, sock: socket.socket) -> None:
        deadline = conv.accepted_at + MESSAGE_DEADLINE
        sock.settimeout(0.05)
        while len(conv.received) < len(conv.expected) and not self._stop.is_set():
            if time.monotonic() >= deadline:
                return
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            conv.received += chunk
            if bytes(conv.received[:len(conv.expected)]) == conv.expected:
                conv.message_at = time.monotonic()

    def _reply(self, conv: Conversation, sock: socket.socket, reply: bytes) -> None:
        # Cuts at byte positions, as TCP may: a cut can fall inside a UTF-8 character.
        cuts = [len(reply) * i // self.pieces for i in range(self.pieces + 1)]
        conv.reply_size = len(reply)
        for i in range(self.pieces):
            piece = reply[cuts[i]:cuts[i + 1]]
            if i:
                if self._stop.wait(PIECE_GAP):
                    return
                if self._peer_closed(sock):
                    conv.closed_early = True
                    return
            sock.settimeout(SEND_TIMEOUT)
            try:
                sock.sendall(piece)
            except OSError:
                conv.closed_early = True
                return
            conv.sent += len(piece)
        conv.replied = True

    @staticmethod
    def _peer_closed(sock: socket.socket) -> bool:
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _echo_the_rest(self, conv: Conversation, sock: socket.socket) -> None:
        """A true echo server: whatever else comes goes back, until the client leaves."""
        sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                # Linux answers a close() with unread data in the receive queue by RST: the
                # client left without reading (all of) the reply.
                conv.unread = True
                return
            except OSError:
                return
            if not chunk:
                return
            try:
                sock.settimeout(SEND_TIMEOUT)
                sock.sendall(chunk)
                sock.settimeout(0.05)
            except OSError:
                return

    # -- the full accept queue (connect_wait) ---------------------------------------------

    def queue_full(self) -> bool:
        """The kernel's own account of the listener (TCP_INFO on a listening socket gives the
        accept queue's length as tcpi_unacked and its limit as tcpi_sacked)."""
        info = self.listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        queued, limit = struct.unpack_from("II", info, 24)
        return queued > limit

    def fill_queue(self, most: int = 16) -> int:
        """Connect idle clients of the kit's own that are never accepted, until the kernel
        says the accept queue is full: it then drops every new SYN."""
        while not self.queue_full():
            if len(self.fillers) >= most:
                raise RuntimeError(f"the kit could not fill its own accept queue with {most} "
                                   f"connections")
            # The queue has room, so this handshake completes at once.
            filler = socket.create_connection((HOST, self.port), timeout=2.0)
            self.fillers.append(filler)
            self._filler_ports.add(filler.getsockname()[1])
        return len(self.fillers)

    def open_queue(self) -> None:
        """Accept (and close) the kit's own queued connections, raise the backlog, serve."""
        self.listener.setblocking(False)
        while True:
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            self._dispatch(sock, peer)
        for filler in self.fillers:
            filler.close()
        self.listener.listen(16)
        self.start()

    # -- the check's view -------------------------------------------------------------------

    def conversation(self) -> Conversation | None:
        """The conversation that carried the message (else the latest one)."""
        done = [c for c in self.conversations if c.complete]
        if done:
            return done[0]
        return self.conversations[-1] if self.conversations else None

    def progress(self) -> str:
        conv = self.conversation()
        if conv is None:
            return "no connection had reached the kit's server"
        return conv.progress()

    def close(self) -> None:
        self._stop.set()
        self.reply_allowed.set()
        for s in (self.listener, *self.fillers):
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(2.0)


# --- the student's client ---------------------------------------------------------------------

class Kit:
    """What a check of the client assignment works with: the story, the kit's servers, and
    runs of the student's client against them. Closes every server at the end."""

    def __init__(self, launch, story: Story, submission):
        self.launch = launch
        self.story = story
        self.submission = submission
        self.servers: list[KitServer] = []

    def __enter__(self) -> "Kit":
        return self

    def __exit__(self, *exc) -> None:
        for srv in self.servers:
            srv.close()

    def server(self, expected: bytes, pieces: int = 1, hold: bool = False,
               backlog: int = 16, accepting: bool = True) -> KitServer:
        srv = KitServer(expected, pieces=pieces, hold=hold, backlog=backlog)
        self.servers.append(srv)
        if accepting:
            srv.start()
        return srv

    def run(self, srv: KitServer, message: str) -> StudentProcess:
        if self.submission.problem:
            fail(self.submission.problem)
        proc = self.launch(args=[HOST, str(srv.port), message])
        self.story.did(f"ran `python {self.submission.entry} {HOST} {srv.port} "
                       f"{shown(message)}`")
        return proc


def shown(message: str, limit: int = 60) -> str:
    if len(message) <= limit:
        return repr(message)
    return f"{message[:limit]!r}… ({len(message.encode())} bytes)"


def wait_exit(proc: StudentProcess, timeout: float) -> bool:
    """Wait until the client has ended and its output is all read; False at the deadline."""
    deadline = time.monotonic() + timeout
    while proc.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    for tap in (proc.stdout, proc.stderr):
        if tap is not None:
            tap.join(2.0)
    return True


def death(proc: StudentProcess) -> str:
    """How the client ended, with its line and, for the course's classic mistakes, advice."""
    text = describe_death(proc)
    crash = next((e for e in reversed(proc.trace()) if e["ev"] == "crash"), None)
    if not crash:
        return text
    code = proc.line_of(crash.get("at"))
    if code:
        text += f" (`{code[:80]}`)"
    for kinds, words, advice in ADVICE:
        if crash.get("type") in kinds and (not words or any(w in code for w in words)):
            return f"{text}; {advice}"
    return text


def where(proc: StudentProcess, conn_fd: int | None = None) -> str:
    """Where the client waits, in words."""
    if not proc.alive():
        return "no longer running"
    names = {conn_fd: "its connection to the kit's server"} if conn_fd is not None else None
    return procobs.describe_wait(proc.pid, names)


def connection_to(proc: StudentProcess, srv: KitServer,
                  snap: procobs.Snapshot | None = None) -> procobs.Connection | None:
    """The client's TCP socket whose peer is the kit's server (the latest, if several)."""
    snap = snap or procobs.snapshot(proc.pid)
    mine = [c for c in snap.connections if c.remote and c.remote[1] == srv.port]
    return max(mine, key=lambda c: c.fd) if mine else None


def wait_for(predicate, timeout: float) -> bool:
    """Poll `predicate` until it holds or the deadline passes (for what should happen)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(POLL)
    return True


def blocking_calls(proc: StudentProcess, fd: int) -> list[dict]:
    return [e for e in proc.trace() if e["ev"] in ("setblocking", "settimeout")
            and e.get("fd") == fd]


# --- the checks -------------------------------------------------------------------------------

def check_runs(kit: Kit) -> None:
    message = "hello, kit"
    srv = kit.server(message.encode())
    proc = kit.run(srv, message)
    if not wait_exit(proc, RUN_BOUND):
        fail(f"the client was still running {RUN_BOUND:g} s after it started: it was "
             f"{where(proc)}; {srv.progress()}")
    code = proc.returncode()
    kit.story.saw(f"the client ended with exit code {code} after {proc.elapsed():.2f} s")
    kit.story.measure("run_seconds", round(proc.elapsed(), 3))
    if code != 0:
        fail(f"{death(proc)} ({srv.progress()})")
    if srv.conversation() is None:
        fail(f"the client exited with code 0 without connecting to the kit's server at "
             f"{HOST}:{srv.port} (given as HOST PORT on its command line)")


def check_echo(kit: Kit) -> None:
    """All messages at once, each with its own server and its own run of the client."""
    runs = []
    for message, pieces in ECHO_MESSAGES:
        srv = kit.server(message.encode(), pieces=pieces)
        runs.append((message, pieces, srv, kit.run(srv, message)))
    deadline = time.monotonic() + RUN_BOUND
    problems = []
    for message, pieces, srv, proc in runs:
        ended = wait_exit(proc, max(0.0, deadline - time.monotonic()))
        conv = srv.conversation()
        if conv is not None:
            # Judge once the kit has sent its reply or given up on it: a client that ends
            # before the reply is sent is seen leaving early, not taken at its word.
            conv.reply_over.wait(max(2.0, deadline - time.monotonic()))
            if ended:
                # How the client's connection ended tells whether it read the reply.
                conv.ended.wait(2.0)
        problem = _echo_problem(message, srv, proc, ended)
        size = len(message.encode())
        if problem:
            kit.story.saw(problem)
            problems.append(problem)
        else:
            kit.story.saw(f"the reply of {size} bytes, sent back in {pieces} pieces, was printed "
                          f"whole")
    if problems:
        more = (f" ({len(problems)} of the {len(runs)} messages failed)"
                if len(problems) > 1 else "")
        fail(problems[0] + more)


def _echo_problem(message: str, srv: KitServer, proc: StudentProcess, ended: bool) -> str:
    data = message.encode()
    what = f"for the message {shown(message)}"
    conv = srv.conversation()
    state = death(proc) if ended else f"it was still running, {where(proc)}"
    failed = "" if ended and proc.returncode() == 0 else f" ({state})"
    if conv is None:
        return f"{what}, the client never connected to the kit's server ({state})"
    if not conv.complete:
        return (f"{what}, the kit's server received {preview(bytes(conv.received))} "
                f"({len(conv.received)} bytes) instead of the message's {len(data)} "
                f"bytes{failed}")
    out = proc.stdout.text() if proc.stdout else ""
    if message not in out:
        printed = preview(out.encode(), 60) if out else "nothing"
        hint = ""
        if out.strip() and message.startswith(out.strip()):
            hint = ("; that is only the first part: one recv() returns what has arrived so "
                    "far, so read until all the bytes of the reply are there")
        return (f"{what}, the kit sent the {len(data)}-byte reply back in {srv.pieces} pieces "
                f"and the client printed {printed}{failed}{hint}")
    if conv.unread:
        return (f"{what}, the client printed the message but left without reading the kit's "
                f"reply: its connection closed with the reply still unread (the kernel answered "
                f"with RST), so what it printed did not come from the reply")
    if conv.closed_early:
        return (f"{what}, the client printed the message but closed its connection when only "
                f"{conv.sent} of the {conv.reply_size} bytes of the reply had been sent: what "
                f"it printed did not come from the reply")
    return ""


def check_nonblocking(kit: Kit) -> None:
    message = "are you non-blocking?"
    srv = kit.server(message.encode(), hold=True)
    proc = kit.run(srv, message)
    kit.story.did("the kit's server holds its reply back until it has looked at the client")
    if not wait_for(lambda: (srv.conversation() is not None and srv.conversation().complete)
                    or not proc.alive(), RUN_BOUND):
        fail(f"the kit's server did not receive the client's message within {RUN_BOUND:g} s "
             f"({srv.progress()}); the client was {where(proc)}")
    conv = srv.conversation()
    if conv is None or not conv.complete:
        wait_exit(proc, 1.0)
        fail(f"the client ended before its message reached the kit's server: {death(proc)}")
    held_since = time.monotonic()
    snap = procobs.snapshot(proc.pid)
    conn = next((c for c in snap.connections if c.local and c.local[1] == conv.peer[1]), None)
    if conn is None:
        # Closed already, the client is on its way out (or handed the socket to another
        # process, which this assignment has no use for).
        if wait_exit(proc, 1.0):
            fail(f"the client ended while the kit held its reply back, without waiting for "
                 f"the reply: {death(proc)}")
        fail(f"the client closed its connection to the kit's server (client port "
             f"{conv.peer[1]}) while the kit held its reply back, without waiting for the reply")
    desc = snap.descriptors.get(conn.fd)
    if desc is None or desc.flags is None:
        # Not the student's fault: the kit could not read the kernel's account.
        raise RuntimeError(f"the flags of fd {conn.fd} of process {proc.pid} could not be read "
                           f"from /proc")
    kit.story.saw(f"while the reply was held back, the client's socket connected to the kit "
                  f"(fd {conn.fd}) had flags {desc.flags:o} in /proc/PID/fdinfo: O_NONBLOCK "
                  f"{'set' if desc.nonblocking else 'not set'}; the client was "
                  f"{where(proc, conn.fd)}")
    calls = blocking_calls(proc, conn.fd)
    if not desc.nonblocking:
        fail(f"the client's socket (fd {conn.fd}, connected to the kit's server) is blocking: "
             f"its flags in /proc/PID/fdinfo ({desc.flags:o}) lack O_NONBLOCK"
             f"{_blocking_explained(proc, calls)}")
    last = calls[-1] if calls else None
    if (last and last["ev"] == "settimeout" and isinstance(last.get("value"), (int, float))
            and last["value"] > 0):
        fail(f"the client's socket (fd {conn.fd}) is a timeout socket, set at "
             f"{proc.quote(last.get('at'))}: Python makes it O_NONBLOCK underneath, but its "
             f"connect() and recv() still wait (up to {last['value']:g} s) and never raise "
             f"BlockingIOError; this assignment asks for setblocking(False)")
    # Long enough for a client that does not handle recv()'s BlockingIOError to die of it.
    time.sleep(max(0.0, held_since + HOLD_AT_LEAST - time.monotonic()))
    if not proc.alive():
        wait_exit(proc, 1.0)
        fail(f"the client ended while the kit held its reply back, without waiting for the "
             f"reply: {death(proc)}")
    kit.story.saw(f"the client was still waiting {time.monotonic() - held_since:.2f} s later")
    srv.reply_allowed.set()
    kit.story.did("the kit's server sent the reply")
    if wait_exit(proc, RUN_BOUND):
        kit.story.saw(f"the client ended with exit code {proc.returncode()}")
    _nonblocking_connect(kit, message)


def _nonblocking_connect(kit: Kit, message: str) -> None:
    """connect() itself: a client that connects blocking and only then calls
    setblocking(False) passes all of the above. A slow handshake shows it: while the
    connection is pending, its socket has no O_NONBLOCK and it waits inside connect().
    (A client that never gets that far is judged by 'runs' and 'connect_wait'.)"""
    kit.story.did("— the client again, against a kit server whose full accept queue makes the "
                  "handshake take about a second —")
    srv, proc, pending = _slow_handshake(kit, message, strict=False)
    if pending is None:
        kit.story.saw("the client did not get as far as a pending connection (judged by "
                      "'runs' and 'connect_wait')")
        return
    desc = procobs.snapshot(proc.pid).descriptors.get(pending.fd)
    waiting = where(proc, pending.fd)
    kit.story.saw(f"while its connection was pending (SYN_SENT), the client's socket fd "
                  f"{pending.fd} had O_NONBLOCK "
                  f"{'unknown' if desc is None or desc.nonblocking is None else 'set' if desc.nonblocking else 'not set'}"
                  f"; the client was {waiting}")
    srv.open_queue()
    if desc is not None and desc.nonblocking is False:
        fail(f"the client's connect() was blocking: while the handshake was under way its "
             f"socket (fd {pending.fd}) had no O_NONBLOCK and the client was {waiting}; call "
             f"setblocking(False) before connect() and handle the BlockingIOError it raises")


def _blocking_explained(proc: StudentProcess, calls: list[dict]) -> str:
    if not calls:
        return "; the client never called setblocking(False) on it"
    last = calls[-1]
    call = (f"setblocking({last.get('flag')})" if last["ev"] == "setblocking"
            else f"settimeout({last.get('value')})")
    return f"; the last call on it was {call} at {proc.quote(last.get('at'))}"


def _slow_handshake(kit: Kit, message: str, strict: bool = True):
    """Start the client against a kit server whose accept queue is full, and wait until its
    connection is pending (SYN_SENT). Returns (server, process, pending connection); when
    the client never gets that far, fails the check, or (not `strict`) returns pending None."""
    srv = kit.server(message.encode(), backlog=0, accepting=False)
    n = srv.fill_queue()
    kit.story.did(f"the kit's server listens with backlog 0 and {n} idle connection(s) of its "
                  f"own fill its accept queue: the kernel drops a new connection's SYN")
    proc = kit.run(srv, message)

    pending = None

    def connecting() -> bool:
        nonlocal pending
        pending = connection_to(proc, srv)
        return pending is not None or not proc.alive()

    wait_for(connecting, RUN_BOUND)
    if pending is None and not strict:
        return srv, proc, None
    if pending is None:
        if not proc.alive():
            # Too soon for the kit to see its SYN, if it sent one: a crash right after
            # connect(), typically at a send() on the connection that is not up yet.
            wait_exit(proc, 1.0)
            fail(f"the client ended without a connection to the kit's server, whose accept "
                 f"queue was full (a connection would take about a second to come up): "
                 f"{death(proc)}")
        fail(f"the client did not connect to the kit's server within {RUN_BOUND:g} s: it was "
             f"{where(proc)}")
    if pending.status != "SYN_SENT":
        raise RuntimeError(f"the kit's full accept queue did not hold the client's connection "
                           f"back (it was {pending.status} at once)")
    return srv, proc, pending


def check_connect_wait(kit: Kit) -> None:
    """The handshake is made slow by a full accept queue: the kernel drops the client's SYN,
    and its kernel resends it about 1 s later, when the kit has made room."""
    message = "sent once the connection is up"
    srv, proc, pending = _slow_handshake(kit, message)
    syn_seen = time.monotonic()
    snap = procobs.snapshot(proc.pid)
    desc = snap.descriptors.get(pending.fd)
    mode = ("" if desc is None or desc.nonblocking is None else
            " (non-blocking)" if desc.nonblocking else " (blocking)")
    kit.story.saw(f"the client's socket fd {pending.fd}{mode} is connecting (SYN_SENT); its SYN "
                  f"was dropped; the client was {where(proc, pending.fd)}")
    wait_for(lambda: not proc.alive(), QUEUE_FULL_FOR)
    srv.open_queue()
    kit.story.did(f"{time.monotonic() - syn_seen:.2f} s later the kit accepted and closed its "
                  f"own connections: the queue has room for the resent SYN")

    def settled() -> bool:
        conv = srv.conversation()
        if conv is not None and conv.complete:
            return True
        if conv is not None:
            # Connected: the kit stops waiting for the message MESSAGE_DEADLINE after that.
            return conv.received_all.is_set()
        # Not connected (yet): a client that has ended never will be.
        return not proc.alive()

    wait_for(settled, HANDSHAKE_DEADLINE + MESSAGE_DEADLINE)
    conv = srv.conversation()
    if conv is not None:
        handshake = conv.accepted_at - syn_seen
        kit.story.measure("handshake_seconds", round(handshake, 3))
        kit.story.saw(f"the connection came up {handshake:.2f} s after the kit saw the client's "
                      f"SYN")
    if conv is not None and conv.complete:
        kit.story.saw(f"the kit's server received the whole message "
                      f"{conv.message_at - conv.accepted_at:.2f} s after the connection came up")
        if wait_exit(proc, RUN_BOUND):
            kit.story.saw(f"the client ended with exit code {proc.returncode()}")
        return
    if conv is None:
        if not proc.alive():
            wait_exit(proc, 1.0)
            fail(f"the client ended without a connection to the kit's server, whose accept "
                 f"queue was full (a connection would take about a second to come up): "
                 f"{death(proc)}")
        fail(f"the client's connection was still not up {HANDSHAKE_DEADLINE:g} s after its "
             f"first SYN: it was {where(proc)}")
    lost = (f"the connection came up {conv.accepted_at - syn_seen:.1f} s after the client's "
            f"first SYN, but {conv.progress()}: the client sent before the connection was up "
            f"and that send failed; wait until the socket is writable (selectors EVENT_WRITE) "
            f"after connect(), then send")
    if proc.alive():
        fail(f"{lost}; the client was then {where(proc)}")
    wait_exit(proc, 1.0)
    fail(f"{lost}; then {death(proc)}")
