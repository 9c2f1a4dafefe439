"""The nonblocking reference's loop, closing each connection after its first reply."""

import os
import socket
import sys

HIGH_WATER = 1024 * 1024


class Client:
    def __init__(self, conn):
        self.conn = conn
        self.outbox = bytearray()
        self.peer_done = False
        self.replied = False

    def step(self):
        """Do what can be done now without waiting. Returns False when the client is done."""
        try:
            if self.outbox:
                try:
                    del self.outbox[:self.conn.send(self.outbox)]
                    self.replied = True
                except BlockingIOError:
                    pass
                if self.replied and not self.outbox:
                    return False             # 回复一次就关闭连接
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
