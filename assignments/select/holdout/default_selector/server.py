"""Echo server with selectors.DefaultSelector, buffered writes on EVENT_WRITE."""
import selectors
import socket
import sys


class EchoServer:
    def __init__(self, port):
        self.sel = selectors.DefaultSelector()   # 自动选择最好的选择器
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("", port))
        self.lsock.listen(100)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.out = {}
        self.eof = set()

    def accept(self):
        try:
            conn, _ = self.lsock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.out[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, "client")

    def close(self, conn):
        self.sel.unregister(conn)
        conn.close()
        self.out.pop(conn, None)
        self.eof.discard(conn)

    def service(self, conn, mask):
        try:
            if mask & selectors.EVENT_READ:
                data = conn.recv(4096)
                if data:
                    self.out[conn] += data
                else:
                    self.eof.add(conn)
            if self.out[conn]:
                n = conn.send(self.out[conn])
                self.out[conn] = self.out[conn][n:]
        except BlockingIOError:
            pass
        except OSError:
            self.close(conn)
            return
        if conn in self.eof and not self.out[conn]:
            self.close(conn)
            return
        events = 0
        if conn not in self.eof and len(self.out[conn]) < 1 << 20:
            events |= selectors.EVENT_READ
        if self.out[conn]:
            events |= selectors.EVENT_WRITE
        self.sel.modify(conn, events, "client")

    def run(self):
        while True:
            for key, mask in self.sel.select():
                if key.data is None:
                    self.accept()
                else:
                    self.service(key.fileobj, mask)


if __name__ == "__main__":
    EchoServer(int(sys.argv[1]) if len(sys.argv) > 1 else 8888).run()
