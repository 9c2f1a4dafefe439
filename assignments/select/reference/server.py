"""Reference solution of the select assignment: an echo server on selectors.SelectSelector.

The course's event-loop pattern (register a callback per socket, select(), call it back), on
select(2) instead of epoll, made robust: every socket is non-blocking, replies are queued and
written when select() reports the socket writable, a client that does not read its replies
stops being read (backpressure), a peer reset or a half-close is an ordinary end of
conversation, and every connection leaves the selector before it is closed (select() on a
closed descriptor fails with EBADF).

Usage: python server.py [PORT]      (default: $PORT, else 8888)
"""

import os
import selectors
import socket
import sys

HIGH_WATER = 1024 * 1024     # stop reading a client whose unsent replies exceed this
CHUNK = 64 * 1024

# select(2) only takes descriptors below FD_SETSIZE (1024); the sandbox's 1024 open files
# keep every descriptor under it.
selector = selectors.SelectSelector()


class Connection:
    """One client: the bytes still to send back, and whether it has finished sending."""

    def __init__(self, sock):
        self.sock = sock
        self.outbox = bytearray()
        self.peer_done = False

    def wanted_events(self):
        events = 0
        if not self.peer_done and len(self.outbox) < HIGH_WATER:
            events |= selectors.EVENT_READ
        if self.outbox:                  # writable is almost always true: ask only when needed
            events |= selectors.EVENT_WRITE
        return events

    def on_event(self, mask):
        try:
            if mask & selectors.EVENT_READ:
                self.read()
            if mask & selectors.EVENT_WRITE or self.outbox:
                self.write()
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            self.peer_done, self.outbox = True, bytearray()
        self.update()

    def read(self):
        try:
            data = self.sock.recv(CHUNK)
        except BlockingIOError:
            return
        if data:
            self.outbox += data
        else:
            self.peer_done = True

    def write(self):
        try:
            sent = self.sock.send(self.outbox)
        except BlockingIOError:
            return
        del self.outbox[:sent]

    def update(self):
        """Re-arm the selector for what this connection now waits for, or end it."""
        events = self.wanted_events()
        if events:
            selector.modify(self.sock, events, self)
        else:                                # nothing to read or send: the peer is done
            selector.unregister(self.sock)   # first: select() on a closed fd raises EBADF
            self.sock.close()


class Listener:
    def __init__(self, sock):
        self.sock = sock

    def on_event(self, mask):
        for _ in range(64):          # accept what is waiting, then let others have a turn
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            except OSError:          # e.g. EMFILE: try again on the next event
                return
            conn.setblocking(False)
            client = Connection(conn)
            selector.register(conn, client.wanted_events(), client)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "8888"))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.setblocking(False)
    server.bind(("", port))
    server.listen(1000)
    selector.register(server, selectors.EVENT_READ, Listener(server))
    print("listening on port", server.getsockname()[1], flush=True)
    while True:
        for key, mask in selector.select():
            key.data.on_event(mask)


if __name__ == "__main__":
    main()
