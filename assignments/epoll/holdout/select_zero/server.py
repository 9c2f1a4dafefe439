"""Echo server class (EpollSelector, output buffer flushed on EVENT_WRITE). select(timeout=0) so the loop never blocks."""
import socket
import selectors
import sys


class Server:
    def __init__(self, port):
        self.sel = selectors.EpollSelector()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('', port))
        self.sock.listen(100)
        self.sock.setblocking(False)
        self.sel.register(self.sock, selectors.EVENT_READ, self.on_accept)
        self.pending = {}   # conn -> 待发送的数据
        self.eof = set()

    def on_accept(self, sock, mask):
        try:
            conn, addr = sock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.pending[conn] = b''
        self.sel.register(conn, selectors.EVENT_READ, self.on_client)

    def close(self, conn):
        self.sel.unregister(conn)   # 先注销
        conn.close()                # 再关闭
        self.pending.pop(conn, None)
        self.eof.discard(conn)

    def on_client(self, conn, mask):
        try:
            if mask & selectors.EVENT_READ:
                data = conn.recv(4096)
                if data:
                    self.pending[conn] += data
                else:
                    self.eof.add(conn)   # 对方不再发送,发完剩下的再关
            if mask & selectors.EVENT_WRITE and self.pending[conn]:
                n = conn.send(self.pending[conn])
                self.pending[conn] = self.pending[conn][n:]
        except BlockingIOError:
            pass
        except (ConnectionError, OSError):
            self.close(conn)
            return
        buf = self.pending[conn]
        if conn in self.eof and not buf:
            self.close(conn)
            return
        events = 0
        if conn not in self.eof and len(buf) < 1 << 20:   # 缓冲区太大就先别读了
            events |= selectors.EVENT_READ
        if buf:
            events |= selectors.EVENT_WRITE
        self.sel.modify(conn, events, self.on_client)

    def serve_forever(self):
        while True:
            for key, mask in self.sel.select(timeout=0):   # 不等待,马上返回
                key.data(key.fileobj, mask)


if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7788
    Server(port).serve_forever()
