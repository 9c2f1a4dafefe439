"""The kit's own echo server for the client assignment, in threads of the harness: it
answers after a delay, in pieces paced by the client's reads (seen in the kernel's TCP
table), only when the check allows, and can keep its accept queue full."""

from __future__ import annotations

import fcntl
import selectors
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass, field

from grader.contract import Message, msg
from grader.harness import sockdiag
from grader.harness.timing import (
    EVENT_GRACE,
    FILLER_CONNECT_TIMEOUT,
    KIT_TICK,
    MESSAGE_DEADLINE,
    PIECE_GAP,
    POLL,
    READ_DEADLINE,
    REPLY_DELAY,
    SEND_TIMEOUT,
)

HOST = "127.0.0.1"


# --- the kit's echo server ------------------------------------------------------------------


@dataclass
class Conversation:
    """One connection a client made to the kit's server, as the kit saw it."""

    peer: tuple
    accepted_at: float
    expected: bytes
    received: bytearray = field(default_factory=bytearray)
    message_at: float | None = None  # when the message had arrived intact
    sent: int = 0  # reply bytes sent so far
    reply_size: int = 0
    replied: bool = False  # the whole reply went out
    closed_early: bool = False  # the client left before the whole reply was sent
    unread: bool = False  # the client left with the reply unread (its kernel sent RST)
    read: int = 0  # reply bytes the kernel showed the client had read
    stalled: bool = False  # the client neither read a piece nor left, to the deadline
    kit_error: str | None = None  # the kit could not watch the client's socket
    received_all: threading.Event = field(default_factory=threading.Event)  # done receiving
    reply_over: threading.Event = field(default_factory=threading.Event)  # sent, or gave up
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def complete(self) -> bool:
        """The message arrived intact (a newline or more after it is tolerated)."""
        return self.message_at is not None

    def progress(self) -> Message:
        got, size = len(self.received), len(self.expected)
        if self.replied:
            return msg(
                "the kit's server had received {got} of the message's {size} bytes and sent "
                "the whole reply",
                got=got,
                size=size,
            )
        if self.sent:
            return msg(
                "the kit's server had received {got} of the message's {size} bytes and sent "
                "{sent} of the {reply} bytes of the reply",
                got=got,
                size=size,
                sent=self.sent,
                reply=self.reply_size,
            )
        return msg(
            "the kit's server had received {got} of the message's {size} bytes", got=got, size=size
        )


# --- the kernel's TCP table, seen from the kit (the client shares its network namespace) ---

LOOPBACK_HEX = f"{struct.unpack('=I', socket.inet_aton(HOST))[0]:08X}"


@dataclass(frozen=True)
class TcpRow:
    """One socket of /proc/net/tcp. `rx_queue`: bytes that arrived and its process has not
    read yet. `inode` 0: no process holds the socket any more (closed, orphaned)."""

    state: int
    rx_queue: int
    tx_queue: int
    inode: int


def tcp_row(local_port: int, remote_port: int) -> TcpRow | None:
    """The socket 127.0.0.1:local_port -> 127.0.0.1:remote_port, None when the kernel has
    none (a reset connection is gone at once). OSError when the table cannot be read."""
    want = (f"{LOOPBACK_HEX}:{local_port:04X}", f"{LOOPBACK_HEX}:{remote_port:04X}")
    found = None
    with open("/proc/net/tcp") as fh:
        next(fh, None)
        for line in fh:
            parts = line.split()
            if len(parts) < 10 or (parts[1], parts[2]) != want:
                continue
            tx, rx = (int(x, 16) for x in parts[4].split(":"))
            row = TcpRow(int(parts[3], 16), rx, tx, int(parts[9]))
            if found is None or row.inode:  # a held socket over a TIME_WAIT leftover
                found = row
    return found


def unacked(sock: socket.socket) -> int:
    """Bytes the kit wrote that the peer's kernel has not acknowledged yet (SIOCOUTQ)."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return struct.unpack("i", raw)[0]


class KitServer:
    """An echo server on 127.0.0.1 (port 0) that the check controls: it answers each message
    after REPLY_DELAY, in `pieces` pieces, each sent only once the client has read the one
    before (so how the client reads decides what it gets, not the machine's speed), only once
    the reply is allowed (`hold`), and can keep its accept queue full (connect_wait)."""

    def __init__(self, expected: bytes, pieces: int = 1, hold: bool = False, backlog: int = 16):
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
        # Held while a connection moves from the kernel's accept queue to `conversations`, so
        # that `settled` never sees it in neither place.
        self._accept_lock = threading.Lock()

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
        self.listener.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(self.listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                try:
                    sel.select(KIT_TICK)
                except OSError:
                    return
                if not self._accept_one():
                    if self.listener.fileno() < 0:
                        return

    def _accept_one(self) -> bool:
        with self._accept_lock:
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return False
            sockdiag.remember(sock)
            self._dispatch(sock, peer)
            return True

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
            while not self.reply_allowed.wait(KIT_TICK):
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
        sock.settimeout(KIT_TICK)
        while len(conv.received) < len(conv.expected) and not self._stop.is_set():
            if time.monotonic() >= deadline:
                return
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            conv.received += chunk
            if bytes(conv.received[: len(conv.expected)]) == conv.expected:
                conv.message_at = time.monotonic()

    def _reply(self, conv: Conversation, sock: socket.socket, reply: bytes) -> None:
        # Cuts at byte positions, as TCP may: a cut can fall inside a UTF-8 character.
        cuts = [len(reply) * i // self.pieces for i in range(self.pieces + 1)]
        conv.reply_size = len(reply)
        deadline = time.monotonic() + READ_DEADLINE
        for i in range(self.pieces):
            piece = reply[cuts[i] : cuts[i + 1]]
            # The next piece goes out only once the client has read every byte before it: a
            # client that reads once gets the first piece and no more, on an idle laptop as
            # in a starved container. (A gap in time alone let a slow client find the pieces
            # already joined in its receive queue.)
            if i and not (
                self._await_read(conv, sock, deadline) and not self._stop.wait(PIECE_GAP)
            ):
                return
            sock.settimeout(SEND_TIMEOUT)
            try:
                sock.sendall(piece)
            except OSError as exc:
                conv.closed_early = True
                conv.unread = conv.unread or isinstance(exc, ConnectionResetError)
                return
            conv.sent += len(piece)
        conv.replied = True

    def _await_read(self, conv: Conversation, sock: socket.socket, deadline: float) -> bool:
        """Poll the kernel until the client's socket holds nothing unread of what the kit
        sent (True), or the client has let go of its socket (False: it left), or the
        deadline or the end of the check (False)."""
        while True:
            try:
                # First the kit's own queue: once the client's kernel acknowledged everything,
                # it is all in the client's receive queue or read; only then does an empty
                # receive queue mean "read" (and not "not delivered yet").
                outq = unacked(sock)
                row = tcp_row(conv.peer[1], self.port)
            except OSError as exc:
                conv.kit_error = f"the kit could not read the client's socket's queues: {exc}"
                return False
            if row is None or row.inode == 0:
                # Closed by the client (or its exit). With the reply unread, its kernel
                # answered with RST and the socket is gone; an orphan still listed closed
                # with nothing unread, so what it had acknowledged it had read.
                if row is not None and outq == 0 and row.rx_queue == 0:
                    conv.read = conv.sent
                conv.closed_early = True
                conv.unread = (
                    conv.unread or self._was_reset(sock) or (conv.sent > conv.read and row is None)
                )
                return False
            if outq == 0 and row.rx_queue == 0:
                conv.read = conv.sent
                return True
            if time.monotonic() >= deadline:
                conv.stalled = True
                return False
            if self._stop.wait(POLL):
                return False

    @staticmethod
    def _was_reset(sock: socket.socket) -> bool:
        sock.setblocking(False)
        try:
            sock.recv(1, socket.MSG_PEEK)
        except ConnectionResetError:
            return True
        except OSError:
            return False
        return False

    def _echo_the_rest(self, conv: Conversation, sock: socket.socket) -> None:
        """A true echo server: whatever else comes goes back, until the client leaves."""
        sock.settimeout(KIT_TICK)
        while not self._stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
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
                sock.settimeout(KIT_TICK)
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
                raise RuntimeError(
                    f"the kit could not fill its own accept queue with {most} connections"
                )
            # The queue has room, so this handshake completes at once.
            filler = socket.create_connection((HOST, self.port), timeout=FILLER_CONNECT_TIMEOUT)
            self.fillers.append(filler)
            self._filler_ports.add(filler.getsockname()[1])
        return len(self.fillers)

    def open_queue(self) -> None:
        """Accept (and close) the kit's own queued connections, raise the backlog, serve."""
        self.listener.setblocking(False)
        while self._accept_one():
            pass
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

    def settled(self) -> bool:
        """Everything that reached the kit has been taken in: nothing waits in the accept
        queue and every connection is done receiving. Once the client has ended, this holds
        soon; until it does, what the kit saw is not yet the whole story."""
        with self._accept_lock:
            if self._queued() > 0:
                return False
            return all(c.received_all.is_set() for c in self.conversations)

    def _queued(self) -> int:
        try:
            info = self.listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        except OSError:
            return 0
        return struct.unpack_from("I", info, 24)[0]

    def progress(self) -> Message:
        conv = self.conversation()
        if conv is None:
            return msg("no connection had reached the kit's server")
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
            t.join(EVENT_GRACE)
