"""The grader's own clients on loopback, each narrating what it did into the check's story."""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time
from dataclasses import dataclass, field

from grader.contract import Message, StoryLine, as_message, msg
from grader.harness import sockdiag
from grader.harness.timing import CLIENT_IO_TIMEOUT


def preview(data: bytes, limit: int = 40) -> str:
    """A short, printable rendering of bytes for a report sentence."""
    if len(data) <= limit:
        return repr(data)[1:]
    return f"{repr(data[:limit])[1:]}… ({len(data)} bytes)"


@dataclass
class Story:
    """What a check did and saw, in order, with times relative to the check's start."""

    start: float = field(default_factory=time.monotonic)
    lines: list[dict] = field(default_factory=list)
    measurements: dict = field(default_factory=dict)

    def _add(self, kind: str, text: Message) -> None:
        self.lines.append(
            StoryLine(kind, as_message(text), round(time.monotonic() - self.start, 3)).to_json()
        )

    def did(self, text: Message) -> None:
        self._add("did", text)

    def saw(self, text: Message) -> None:
        self._add("saw", text)

    def measure(self, name: str, value) -> None:
        self.measurements[name] = value

    def to_json(self) -> dict:
        return {"lines": list(self.lines), "measurements": dict(self.measurements)}


class Client:
    """A blocking loopback client with a deadline on every wait."""

    def __init__(self, story: Story, name: str, address: tuple):
        self.story = story
        self.name = name
        self.address = address
        self.sock: socket.socket | None = None

    @property
    def local_port(self) -> int | None:
        try:
            return self.sock.getsockname()[1] if self.sock else None
        except OSError:
            return None

    def connect(self, timeout: float = CLIENT_IO_TIMEOUT, quiet: bool = False) -> bool:
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.address)
        except OSError as exc:
            self.story.saw(
                msg(
                    "client {name} could not connect: {error}",
                    name=self.name,
                    error=str(exc.strerror or exc),
                )
            )
            return False
        sockdiag.remember(self.sock)
        if not quiet:
            self.story.did(msg("client {name} connected", name=self.name))
        return True

    def send(self, data: bytes, quiet: bool = False, timeout: float = CLIENT_IO_TIMEOUT) -> bool:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.story.saw(
                msg(
                    "client {name} could not send: {error}",
                    name=self.name,
                    error=str(exc.strerror or exc),
                )
            )
            return False
        if not quiet:
            self.story.did(msg("client {name} sent {data}", name=self.name, data=preview(data)))
        return True

    def recv_exact(self, size: int, timeout: float, idle: float | None = None) -> tuple[bytes, str]:
        """Read until `size` bytes arrived, the peer closed, the deadline passed, or (with
        `idle`) nothing came for that long. Returns the bytes and why reading stopped:
        'complete', 'closed', 'reset', 'timeout'."""
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        got = bytearray()
        while len(got) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(got), "timeout"
            self.sock.settimeout(min(left, idle) if idle else left)
            try:
                chunk = self.sock.recv(min(65536, size - len(got)))
            except TimeoutError:
                return bytes(got), "timeout"
            except ConnectionResetError:
                return bytes(got), "reset"
            except OSError:
                return bytes(got), "reset"
            if not chunk:
                return bytes(got), "closed"
            got += chunk
        return bytes(got), "complete"

    def pull(self, into: bytearray, most: int) -> str | None:
        """Take what has already arrived, without waiting, up to `most` bytes in all.
        Returns None while the connection is open, else 'closed' or 'reset'."""
        assert self.sock is not None
        self.sock.setblocking(False)
        try:
            while len(into) < most:
                try:
                    chunk = self.sock.recv(min(65536, most - len(into)))
                except BlockingIOError:
                    return None
                except OSError:
                    return "reset"
                if not chunk:
                    return "closed"
                into += chunk
            return None
        finally:
            self.sock.setblocking(True)

    def unacked(self) -> int | None:
        """Bytes sent that the server's kernel has not acknowledged yet (SIOCOUTQ): 0 means
        all of it is in the server's receive queue."""
        if self.sock is None:
            return None
        try:
            raw = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
        except OSError:
            return None
        return struct.unpack("i", raw)[0]

    def echo(self, data: bytes, timeout: float, quiet: bool = False) -> tuple[bool, Message]:
        """Send `data`, read the same number of bytes back. Returns (ok, sentence)."""
        if not self.send(data, quiet=quiet):
            return False, msg(
                "client {name} could not send {data}", name=self.name, data=preview(data)
            )
        got, why = self.recv_exact(len(data), timeout)
        if got == data:
            if not quiet:
                self.story.saw(
                    msg("client {name} got its {size} bytes back", name=self.name, size=len(data))
                )
            return True, Message("")
        sentence = self._echo_failure(data, got, why, timeout)
        self.story.saw(sentence)
        return False, sentence

    def _echo_failure(self, data: bytes, got: bytes, why: str, timeout: float) -> Message:
        """What went wrong with an echo, by how reading the reply ended."""
        name, sent = self.name, len(data)
        if why == "complete":
            first = next(i for i, (a, b) in enumerate(zip(got, data, strict=False)) if a != b)
            return msg(
                "client {name} sent {data} and got {got}: the reply differs from byte {first} on",
                name=name,
                data=preview(data),
                got=preview(got),
                first=first,
            )
        if why == "timeout" and got:
            return msg(
                "client {name} sent {sent} bytes and got {n} back within {timeout:g} s ({got})",
                name=name,
                sent=sent,
                n=len(got),
                timeout=timeout,
                got=preview(got),
            )
        if why == "timeout":
            return msg(
                "client {name} sent {sent} bytes and got {n} back within {timeout:g} s",
                name=name,
                sent=sent,
                n=len(got),
                timeout=timeout,
            )
        if why == "closed":
            return msg(
                "client {name} sent {sent} bytes; the server closed the connection after "
                "sending back {n}",
                name=name,
                sent=sent,
                n=len(got),
            )
        return msg(
            "client {name} sent {sent} bytes; the connection was reset after {n} came back",
            name=name,
            sent=sent,
            n=len(got),
        )

    def close(self, quiet: bool = False) -> None:
        """Orderly close: FIN, as a client that is done would."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            if not quiet:
                self.story.did(msg("client {name} closed its connection", name=self.name))

    def reset(self, quiet: bool = False) -> None:
        """Abortive close: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        if self.sock is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.sock.close()
            self.sock = None
            if not quiet:
                self.story.did(msg("client {name} reset its connection (RST)", name=self.name))

    def shutdown_write(self) -> None:
        assert self.sock is not None
        self.sock.shutdown(socket.SHUT_WR)
        self.story.did(msg("client {name} half-closed (shutdown SHUT_WR)", name=self.name))

    def wait_closed(self, timeout: float) -> str:
        """After the server should have closed: 'closed', 'reset', 'timeout' or 'data'."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1)
        except TimeoutError:
            return "timeout"
        except OSError:
            return "reset"  # ECONNRESET, EPIPE or any other error: the connection is gone
        return "closed" if not chunk else "data"
