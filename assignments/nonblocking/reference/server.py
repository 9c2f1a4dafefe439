"""Reference solution of the nonblocking assignment (使用非阻塞套接字实现并发).

One thread serves every client with non-blocking sockets: each turn of the loop tries to
accept, then tries each connection in turn, and treats BlockingIOError as "not yet". Replies
are queued per connection and sent as the socket takes them; a client that does not read its
replies stops being read (backpressure). Departed clients are closed and dropped. The loop
never sleeps: that CPU cost is what epoll removes in the next step.

Usage: python nonblocking_server.py [PORT]      (default: $PORT, else 7788)
"""

import os
import socket
import sys

HIGH_WATER = 1024 * 1024


class Client:
    def __init__(self, conn):
        self.conn = conn
        self.outbox = bytearray()
        self.peer_done = False

    def step(self):
        """Do what can be done now without waiting. Returns False when the client is done."""
        try:
            if self.outbox:
                try:
                    del self.outbox[:self.conn.send(self.outbox)]
                except BlockingIOError:
                    pass
            if not self.peer_done and len(self.outbox) < HIGH_WATER:
                try:
                    data = self.conn.recv(65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    self.peer_done = True
                elif data:
                    self.outbox += data
        except (ConnectionResetError, BrokenPipeError):
            return False
        return not (self.peer_done and not self.outbox)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "7788"))
    server = socket.socket()
    server.setblocking(False)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", port))
    server.listen(1000)
    clients = []
    while True:
        try:
            conn, _ = server.accept()
            conn.setblocking(False)
            clients.append(Client(conn))
        except BlockingIOError:
            pass
        except OSError:              # e.g. EMFILE: try again on the next turn
            pass
        for client in list(clients):   # a copy: clients leave while we walk the list
            if not client.step():
                client.conn.close()
                clients.remove(client)


if __name__ == "__main__":
    main()
