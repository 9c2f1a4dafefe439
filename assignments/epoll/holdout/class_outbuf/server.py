"""EchoServer 类:EpollSelector + 每个连接一个输出缓冲区,可写时(EVENT_WRITE)再发送。"""
import socket
import selectors
import sys


class EchoServer:
    def __init__(self, port):
        self.sel = selectors.EpollSelector()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('', port))
        self.sock.listen(100)
        self.sock.setblocking(False)
        self.sel.register(self.sock, selectors.EVENT_READ, self.on_accept)
        self.buffers = {}   # conn -> 待发送的数据
        self.closing = set()

    def on_accept(self, sock, mask):
        try:
            conn, addr = sock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.buffers[conn] = b''
        self.sel.register(conn, selectors.EVENT_READ, self.on_conn)

    def close(self, conn):
        self.sel.unregister(conn)   # 先注销
        conn.close()                # 再关闭
        self.buffers.pop(conn, None)
        self.closing.discard(conn)

    def on_conn(self, conn, mask):
        try:
            if mask & selectors.EVENT_READ:
                data = conn.recv(4096)
                if data:
                    self.buffers[conn] += data
                else:
                    self.closing.add(conn)   # 对方不再发送,发完剩下的再关
            if mask & selectors.EVENT_WRITE and self.buffers[conn]:
                n = conn.send(self.buffers[conn])
                self.buffers[conn] = self.buffers[conn][n:]
        except BlockingIOError:
            pass
        except (ConnectionError, OSError):
            self.close(conn)
            return
        buf = self.buffers[conn]
        if conn in self.closing and not buf:
            self.close(conn)
            return
        events = 0
        if conn not in self.closing and len(buf) < 1 << 20:   # 缓冲区太大就先别读了
            events |= selectors.EVENT_READ
        if buf:
            events |= selectors.EVENT_WRITE
        self.sel.modify(conn, events, self.on_conn)

    def serve_forever(self):
        while True:
            for key, mask in self.sel.select():
                key.data(key.fileobj, mask)


if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8888
    EchoServer(port).serve_forever()
