"""Reference solution of the client assignment: a non-blocking echo client (非阻塞客户端).

The course's two warnings, handled: connect() on a non-blocking socket always raises
BlockingIOError (the handshake has only begun), and send() before the connection is up fails.
So the client waits until the socket is writable, asks the kernel whether the connection
succeeded (SO_ERROR), sends everything, and reads until the whole reply is there: the server
may send it back in several pieces, and one recv() returns only what has arrived so far.

Usage: python nonblocking_client.py HOST PORT MESSAGE
Prints the reply and exits 0; on failure, prints one sentence to stderr and exits 1.
"""

import os
import selectors
import socket
import sys
import time

TIMEOUT = 30.0      # for the whole conversation: a client that waits forever helps nobody
CHUNK = 65536


class ClientError(Exception):
    """What went wrong, in one sentence for the user."""


def wait_for(selector, sock, event, deadline, what):
    """Sleep in the kernel until `sock` is ready for `event`, or fail at the deadline."""
    selector.modify(sock, event)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ClientError(f"timed out after {TIMEOUT:g} s waiting to {what}")
        if selector.select(left):
            return


def connect(selector, sock, address, deadline):
    try:
        sock.connect(address)
    except BlockingIOError:
        pass        # EINPROGRESS: the handshake has started; writable means it has finished
    wait_for(selector, sock, selectors.EVENT_WRITE, deadline, "connect")
    # Writable means "the handshake is over", not "it succeeded": the kernel keeps the
    # outcome in SO_ERROR.
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise ClientError(f"could not connect to {address[0]}:{address[1]}: "
                          f"{os.strerror(err)}")


def send_all(selector, sock, data, deadline):
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            wait_for(selector, sock, selectors.EVENT_WRITE, deadline, "send")
            continue
        view = view[sent:]


def receive(selector, sock, size, deadline):
    """Read until `size` bytes arrived or the server closed the connection."""
    reply = bytearray()
    while len(reply) < size:
        try:
            chunk = sock.recv(min(CHUNK, size - len(reply)))
        except BlockingIOError:
            wait_for(selector, sock, selectors.EVENT_READ, deadline, "receive the reply")
            continue
        if not chunk:
            break
        reply += chunk
    return bytes(reply)


def talk(host, port, message):
    deadline = time.monotonic() + TIMEOUT
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ClientError(f"cannot resolve {host!r}: {exc}") from exc
    with socket.socket(family, kind, proto) as sock, selectors.DefaultSelector() as selector:
        sock.setblocking(False)     # before connect: it is connect() that must not block
        selector.register(sock, selectors.EVENT_WRITE)
        try:
            connect(selector, sock, address, deadline)
            send_all(selector, sock, message, deadline)
            reply = receive(selector, sock, len(message), deadline)
        except OSError as exc:
            raise ClientError(f"connection to {host}:{port} failed: "
                              f"{exc.strerror or exc}") from exc
        selector.unregister(sock)
    if len(reply) < len(message):
        raise ClientError(f"the server closed the connection after {len(reply)} of "
                          f"{len(message)} bytes of the reply")
    return reply


def main(argv):
    if len(argv) != 4:
        print("usage: python client.py HOST PORT MESSAGE", file=sys.stderr)
        return 2
    host, port_text, text = argv[1:]
    try:
        port = int(port_text)
    except ValueError:
        print(f"PORT must be a number, not {port_text!r}", file=sys.stderr)
        return 2
    # surrogateescape: argv bytes that are not UTF-8 are sent as they were given.
    message = text.encode("utf-8", errors="surrogateescape")
    if not message:
        print("MESSAGE must not be empty", file=sys.stderr)
        return 2
    try:
        reply = talk(host, port, message)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(reply.decode("utf-8", errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
