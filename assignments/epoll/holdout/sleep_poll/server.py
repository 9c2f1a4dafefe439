# epoll 并发服务器
# select(timeout=0) 不阻塞,没有事件就睡 10ms,避免占满 CPU
import socket
import selectors
import time

selector = selectors.EpollSelector()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 8080))
server.listen(1000)


def read(conn):
    try:
        data = conn.recv(4096)
    except ConnectionResetError:
        data = b''
    if data:
        print(data.decode())
        conn.send(data)
    else:
        selector.unregister(conn)
        conn.close()


def accept(server):
    conn, addr = server.accept()
    selector.register(conn, selectors.EVENT_READ, read)


selector.register(server, selectors.EVENT_READ, accept)

while True:
    events = selector.select(timeout=0)
    if not events:
        time.sleep(0.01)
        continue
    for key, mask in events:
        key.data(key.fileobj)
