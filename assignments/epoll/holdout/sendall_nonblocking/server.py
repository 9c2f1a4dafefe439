import os
import socket
import selectors

# Concurrent echo server (epoll). Connections are non-blocking, replies go out with sendall.
PORT = int(os.environ.get('PORT', '8888'))
sel = selectors.EpollSelector()


def on_read(conn):
    try:
        data = conn.recv(65536)
    except ConnectionResetError:
        data = b''
    if not data:
        sel.unregister(conn)
        conn.close()
        return
    conn.sendall(data)


def on_accept(srv):
    conn, _ = srv.accept()
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, on_read)


srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', PORT))
srv.listen(512)
sel.register(srv, selectors.EVENT_READ, on_accept)

while True:
    for key, _ in sel.select():
        key.data(key.fileobj)
