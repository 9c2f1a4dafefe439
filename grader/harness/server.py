"""A started student server and the means to look at it: replies, waits, how it died."""

from __future__ import annotations

import itertools
import select
import time
from dataclasses import dataclass, field

from grader.contract import Message, as_message, msg
from grader.harness import procobs
from grader.harness.clients import Client, Story

# The verdict and how a program ended are endings.py's; checks import them from here too.
from grader.harness.endings import describe_death, fail, with_line  # noqa: F401
from grader.harness.family import descendant_pids
from grader.harness.launch import StudentProcess
from grader.harness.timing import POLL, pauses

# After the server read a message, how much CPU time of its own it may spend before a
# reply that has not come is taken as not coming. A loop that replies does so within
# microseconds of CPU; counting its CPU time, not wall-clock time, means a starved sandbox
# makes us wait longer rather than judge early.
SETTLE_CPU = 0.1
# When a client cannot connect, how long a dying server gets to finish dying, so that the
# reason given is how it died (seen within milliseconds) rather than "could not connect".
DEATH_GRACE = 1.0


@dataclass
class Reply:
    """What came of one message a kit client sent: the bytes that came back (whatever they
    are: their content is `echo`'s business alone), how waiting ended, and whether the server
    read the whole message (its socket's receive queue drained)."""

    client: Client
    sent: bytes
    got: bytearray = field(default_factory=bytearray)
    end: str | None = None  # complete | closed | reset | quiet | timeout
    read: bool = False
    accepted: bool = False

    @property
    def served(self) -> bool:
        """Any reply arrived, or the server read the message."""
        return bool(self.got) or self.read

    def pull(self) -> bool:
        """Take what arrived; True once no more is awaited."""
        if self.end is None:
            end = self.client.pull(self.got, len(self.sent))
            if len(self.got) >= len(self.sent):
                self.end = "complete"
            elif end:
                self.end = end
                # An orderly close (FIN, not RST) after the kernel acknowledged the whole
                # message means the server read it: closing over unread bytes sends RST.
                if end == "closed" and self.client.unacked() == 0:
                    self.read = True
        return self.end is not None

    def sentence(self, timeout: float) -> Message:
        """Why this message was not served, for a report."""
        name, size = self.client.name, len(self.sent)
        if self.end == "closed":
            return msg(
                "client {name} sent {size} bytes; the server closed the connection without "
                "reading them or replying",
                name=name,
                size=size,
            )
        if self.end == "reset":
            return msg(
                "client {name} sent {size} bytes; the server reset the connection without "
                "reading them or replying",
                name=name,
                size=size,
            )
        if self.accepted:
            return msg(
                "client {name} sent {size} bytes; in {timeout:g} s no reply came and the "
                "server did not read them",
                name=name,
                size=size,
                timeout=timeout,
            )
        return msg(
            "client {name} sent {size} bytes; in {timeout:g} s no reply came and the server "
            "did not read them (the server never accepted the connection)",
            name=name,
            size=size,
            timeout=timeout,
        )

    def told(self) -> Message:
        """What the client saw, in words."""
        name = self.client.name
        if self.got:
            return msg("client {name} got a reply ({size} bytes)", name=name, size=len(self.got))
        if self.read:
            return msg("client {name}'s message was read by the server (no reply came)", name=name)
        return msg("client {name} was not served", name=name)


class Server:
    """A started student server that listens, with the means to look at it."""

    def __init__(self, proc: StudentProcess, story: Story):
        self.proc = proc
        self.story = story
        self.clients: list[Client] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.listen_fd = -1
        self.requested_port = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, name: str) -> Client:
        c = Client(self.story, name, (self.host, self.port))
        self.clients.append(c)
        return c

    def connect(self, name: str, quiet: bool = False) -> Client:
        c = self.client(name)
        if not c.connect(quiet=quiet):
            death = self.died_within(DEATH_GRACE)
            if death:
                fail(msg("client {name} could not connect: {death}", name=name, death=death))
            fail(
                msg(
                    "client {name} could not connect to the server on port {port}",
                    name=name,
                    port=self.port,
                )
            )
        return c

    def died_within(self, seconds: float) -> Message | None:
        """When something went wrong, give the server a moment to finish dying: how it died,
        or None if it is still alive after `seconds`."""
        self.wait_until(lambda: not self.alive(), seconds)
        return None if self.alive() else describe_death(self.proc)

    def snapshot(self) -> procobs.Snapshot:
        return procobs.snapshot(self.pid)

    def alive(self) -> bool:
        return self.proc.alive()

    def require_alive(self, context: Message) -> None:
        """Fail with the crash explanation when the server has died. `context` says what
        had happened ("client A left"); the sentence reads "the server died after ..."."""
        __tracebackhide__ = True
        if not self.proc.alive():
            reason = describe_death(self.proc)
            self.story.saw(msg("the server is gone: {reason}", reason=reason))
            fail(
                msg(
                    "the server died after {context}: {reason}",
                    context=as_message(context),
                    reason=reason,
                )
            )

    def cpu(self, window: float, settled=None) -> procobs.CpuWindow:
        """CPU over `window` seconds, or less once `settled(measured so far)` holds."""
        measured = procobs.measure_cpu(self.pid, window, settled)
        if measured is None:
            self.require_alive(msg("an observation of its CPU time"))
            raise RuntimeError("the server's CPU time could not be read from /proc")
        return measured

    def wait_until(self, predicate, timeout: float, interval: float | None = None) -> bool:
        """Poll `predicate` until it holds or the deadline passes (for what should happen):
        the looks `interval` apart where the caller's looks must be (consecutive looks that
        must span a moment), else soon at first and then POLL apart (timing.pauses)."""
        deadline = time.monotonic() + timeout
        for pause in pauses() if interval is None else itertools.repeat(interval):
            if predicate():
                return True
            if time.monotonic() >= deadline or not self.proc.alive():
                return bool(predicate())
            time.sleep(pause)
        raise AssertionError("unreachable: pauses() never ends")

    def server_fd(self, client: Client, snap: procobs.Snapshot | None = None) -> int | None:
        """The server's descriptor for this client's connection, once it accepted it."""
        port = client.local_port
        if port is None:
            return None
        if snap is not None:
            conn = snap.by_remote_port(port)
            return conn.fd if conn else None
        sock = self.socket_of(client)
        return sock.fd if sock else None

    def sockets(self) -> list[procobs.TcpSocket]:
        return procobs.tcp_sockets(self.pid)

    def socket_of(
        self, client: Client, socks: list[procobs.TcpSocket] | None = None
    ) -> procobs.TcpSocket | None:
        """The server's end of this client's connection, from its fd table and the kernel's
        TCP table: present once accepted, with what the server has not read yet."""
        port = client.local_port
        if port is None:
            return None
        for sock in self.sockets() if socks is None else socks:
            if sock.state != "LISTEN" and sock.remote and sock.remote[1] == port:
                return sock
        return None

    def activity(self) -> procobs.Activity | None:
        """Whether the server (and anything it started) is asleep, and its CPU time so far."""
        # Its own tree only: other runs of the same check are our children too.
        return procobs.activity([self.pid, *descendant_pids(self.pid)])

    def known_fds(self, names: dict[int, Message] | None = None) -> dict[int, Message]:
        """What the server's descriptors are, in words: its listening socket and the
        connections of the clients in `names` (fd -> 'client A')."""
        known = {self.listen_fd: msg("the listening socket")}
        known.update(
            {fd: msg("{name}'s connection", name=as_message(n)) for fd, n in (names or {}).items()}
        )
        return known

    def blocked_on(self, names: dict[int, Message] | None = None) -> Message:
        """Where the server's main thread waits, in words: 'blocked in recvfrom() on
        client A's connection (fd 5)'. `names` maps fds to client names."""
        return procobs.describe_wait(self.pid, self.known_fds(names))

    def fd_names(self) -> dict[int, Message]:
        snap = self.snapshot()
        out = {}
        for c in self.clients:
            fd = self.server_fd(c, snap)
            if fd is not None:
                out[fd] = msg("client {name}", name=c.name)
        return out

    def note_read(
        self, reply: Reply, socks: list[procobs.TcpSocket]
    ) -> tuple[procobs.TcpSocket | None, bool]:
        """Mark the reply accepted and read as the kernel shows them at this look (the
        server's end of the connection present; its receive queue drained, all our bytes
        acknowledged). Returns the server's end (or None) and whether this look showed it
        read."""
        sock = self.socket_of(reply.client, socks)
        reply.accepted = reply.accepted or sock is not None
        done = sock is not None and sock.rx_queue == 0 and reply.client.unacked() == 0
        reply.read = reply.read or done
        return sock, done

    def await_replies(self, replies: list[Reply], timeout: float, on_look=None) -> list[Reply]:
        """Wait (with a deadline) until each message is answered: its reply complete (as
        many bytes as were sent), the connection ended, or the server read it and then
        provably had nothing more to say: it sent nothing still queued, and it is asleep
        with no CPU used between two looks, or it spent SETTLE_CPU of its own CPU time.
        Then nothing is left unread or still coming, so a client may close in order (FIN,
        not the RST that closing over unread bytes sends). `on_look` runs at every look."""
        deadline = time.monotonic() + timeout
        since, last = None, None
        got = -1
        while True:
            waiting = [r for r in replies if not r.pull()]
            if not waiting:
                return replies
            before, got = got, sum(len(r.got) for r in replies)
            if got != before and before >= 0 and time.monotonic() < deadline:
                # Replies are coming: nothing to ask the kernel until they stop.
                since = last = None
                if on_look:
                    on_look()
                _until_readable([r.client.sock for r in waiting], POLL)
                continue
            socks = self.sockets()
            if on_look:
                on_look()
            drained = True
            for r in waiting:
                sock, done = self.note_read(r, socks)
                drained = drained and done and sock is not None and sock.tx_queue == 0
            now = self.activity() if drained else None
            if now is None:
                since = last = None
            else:
                since = now.on_cpu if since is None else since
                asleep = (
                    last is not None and last.asleep and now.asleep and now.on_cpu == last.on_cpu
                )
                if asleep or now.on_cpu - since >= SETTLE_CPU:
                    for r in waiting:
                        if not r.pull():
                            r.end = "quiet"
                    return replies
                last = now
            if time.monotonic() >= deadline or not self.alive():
                for r in waiting:
                    if not r.pull():
                        r.end = "timeout"
                return replies
            # Until the next look, or sooner when a reply arrives: a served message is seen
            # as it comes back, not at the next tick.
            _until_readable([r.client.sock for r in waiting], POLL)

    def exchange(self, client: Client, data: bytes, timeout: float, quiet: bool = False) -> Reply:
        """Send one message and await what comes of it (see await_replies)."""
        reply = Reply(client, data)
        if not client.send(data, quiet=quiet):
            reply.end = "reset"
            return reply
        self.await_replies([reply], timeout)
        if not quiet and reply.served:
            self.story.saw(reply.told())
        return reply

    def asleep(self) -> bool:
        """Whether the server sleeps: every thread asleep at two looks, no CPU used between."""
        first = self.activity()
        time.sleep(POLL)
        second = self.activity()
        return bool(
            first and second and first.asleep and second.asleep and first.on_cpu == second.on_cpu
        )

    def settle(self, timeout: float) -> None:
        """Give the server the time to act on what it has seen: until it is asleep, or has
        spent SETTLE_CPU of its own CPU time (a busy loop never sleeps, but has gone round
        its loop many times by then), or is gone, or the deadline passes."""
        deadline = time.monotonic() + timeout
        start = self.activity()
        while start is not None and time.monotonic() < deadline:
            now = self.activity()
            if now is None or now.on_cpu - start.on_cpu >= SETTLE_CPU or self.asleep():
                return

    def wait_until_or_asleep(self, predicate, timeout: float) -> bool:
        """Poll `predicate` until it holds, the deadline passes, or the server is asleep (so
        nothing it could still do is pending). Returns the predicate's last value."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline or not self.alive() or self.asleep():
                return bool(predicate())

    def teardown(self) -> None:
        # RST, not FIN: no server-side TIME_WAIT is left behind to block the next bind.
        for c in self.clients:
            c.reset(quiet=True)
        self.proc.kill()


def _until_readable(socks: list, timeout: float) -> None:
    live = [s for s in socks if s is not None and s.fileno() >= 0]
    if not live:
        time.sleep(timeout)
        return
    try:
        select.select(live, [], [], timeout)
    except (OSError, ValueError):
        time.sleep(timeout)
