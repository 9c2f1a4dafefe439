"""What the server checks share: the grader's messages, serving or echoing one message, and
waiting for the server to take in or drop its clients."""

from __future__ import annotations

from grader.contract import Message, as_message, msg, verbatim
from grader.harness.checks import evidence
from grader.harness.clients import Client
from grader.harness.plugin import Reply, Server, fail
from grader.harness.timing import ACCEPT_DEADLINE, CLOSE_DEADLINE, DEATH_GRACE, REPLY_DEADLINE

PEER_GONE = ("CLOSE_WAIT", "LAST_ACK", "CLOSING", "CLOSE")  # the client has closed its end
ECHO_MESSAGES = [
    b"ping",
    b"hello, world\n",
    bytes(range(32, 127)) * 11,
    (b"0123456789abcdef" * 1024),
    bytes(range(33, 127)) * 697 + b"!" * 2,
]


def pattern(size: int, seed: int = 0) -> bytes:
    """Printable bytes in which every position is recognisable (truncation shows)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    # Periodic with the alphabet's length: one period, repeated (a byte at a time was a
    # quarter of a million steps for the slow reader's data).
    period = bytes(alphabet[(i * 7 + seed) % len(alphabet)] for i in range(len(alphabet)))
    return (period * (size // len(period) + 1))[:size]


def quote(server: Server, site: str | None) -> Message:
    """'server.py:16 (`conn.close()`)' from a trace site, reading the student's own line."""
    return as_message(server.proc.quote(site))


def reason_of(exc: BaseException) -> Message:
    """The verdict a fail() inside a check carried, as the Message it was."""
    reason = getattr(exc, "sg_reason", None)
    return reason if isinstance(reason, Message) else verbatim(str(exc))


def echo_or_fail(
    server: Server, client: Client, data: bytes, context: Message, quiet: bool = False
) -> None:
    """For `echo` alone: the very bytes must come back."""
    ok, sentence = client.echo(data, REPLY_DEADLINE, quiet=quiet)
    if not ok:
        if server.died_within(DEATH_GRACE):
            # Dead: require_alive fails with how it died, in the words it uses everywhere.
            server.require_alive(context)
        fail(msg("{what} ({context})", what=sentence, context=context))


def serve_or_fail(
    server: Server, client: Client, data: bytes, context: Message, quiet: bool = False
) -> Reply:
    """For every check but `echo`: the message must be served, which means that any reply
    came, or that the server read it. What the reply says is `echo`'s business. On return
    nothing is left unread or still coming, so the client may close in order."""
    reply = server.exchange(client, data, REPLY_DEADLINE, quiet=quiet)
    if not reply.served:
        if server.died_within(DEATH_GRACE):
            # Dead: require_alive fails with how it died, in the words it uses everywhere.
            server.require_alive(context)
        server.story.saw(reply.sentence(REPLY_DEADLINE))
        fail(
            msg(
                "{what} ({context}); the server was {waiting}",
                what=reply.sentence(REPLY_DEADLINE),
                context=context,
                waiting=evidence.waiting(server, server.fd_names()),
            )
        )
    return reply


def peer_gone_fds(server: Server) -> set[int]:
    return {s.fd for s in server.sockets() if s.state in PEER_GONE}


def wait_server_closed(server: Server, clients: list[Client], fds: list[int | None]) -> list[str]:
    """After clients left, wait (with a deadline) until the server dropped their sockets.
    Returns the names of those whose server-side socket is still open."""
    pairs = [(c, fd) for c, fd in zip(clients, fds, strict=True) if fd is not None]

    def still_open():
        gone = peer_gone_fds(server)
        return [c.name for c, fd in pairs if fd in gone]

    server.wait_until(lambda: not still_open(), CLOSE_DEADLINE)
    return still_open()


def wait_accepted(server: Server, clients: list[Client], timeout: float = ACCEPT_DEADLINE) -> bool:
    """Until the server's fd table shows every client's connection, or the server sleeps
    without having accepted them all (a one-client-at-a-time server)."""
    return server.wait_until_or_asleep(
        lambda: all(server.socket_of(c) is not None for c in clients), timeout
    )


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
            self.server.story.saw(
                msg(
                    "the server kept the socket of {name} open after it left "
                    "(a leak, judged by 'cleanup')",
                    name=left_open[0],
                )
            )
