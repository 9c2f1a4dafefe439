# epoll 回显服务器,带输出缓冲区
import socket
import selectors

sel = selectors.EpollSelector()
out = {}
half_closed = set()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 9000))
server.listen(1000)
server.setblocking(False)


def close_conn(conn):
    conn.close()
    sel.unregister(conn)   # 关闭连接,取消监控
    out.pop(conn, None)
    half_closed.discard(conn)


def handle(conn, mask):
    try:
        if mask & selectors.EVENT_READ:
            data = conn.recv(1024)
            if data:
                out[conn] += data
            else:
                half_closed.add(conn)   # 对方发完了,回完剩下的再关
        if out[conn]:
            sent = conn.send(out[conn])
            out[conn] = out[conn][sent:]
    except BlockingIOError:
        pass
    except OSError:
        close_conn(conn)
        return
    if conn in half_closed and not out[conn]:
        close_conn(conn)
        return
    if conn in half_closed or len(out[conn]) > 65536:
        want = selectors.EVENT_WRITE
    elif out[conn]:
        want = selectors.EVENT_READ | selectors.EVENT_WRITE
    else:
        want = selectors.EVENT_READ
    sel.modify(conn, want, handle)


def accept(server, mask):
    try:
        conn, addr = server.accept()
    except BlockingIOError:
        return
    conn.setblocking(False)
    out[conn] = b''
    sel.register(conn, selectors.EVENT_READ, handle)


sel.register(server, selectors.EVENT_READ, accept)

while True:
    for key, mask in sel.select():
        key.data(key.fileobj, mask)
