# 使用选择器实现并发的服务器:DefaultSelector 会自动选最好的,在 Linux 上它就是 epoll
import selectors
import socket

sel = selectors.DefaultSelector()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 8888))
server.listen(1000)
server.setblocking(False)


def read(conn):
    try:
        data = conn.recv(1024)
    except ConnectionResetError:
        data = b''
    if data:
        conn.sendall(data)
    else:
        sel.unregister(conn)  # 先注销
        conn.close()  # 再关闭


def accept(server):
    conn, addr = server.accept()
    sel.register(conn, selectors.EVENT_READ, read)


sel.register(server, selectors.EVENT_READ, accept)

while True:
    for key, mask in sel.select():
        key.data(key.fileobj)
