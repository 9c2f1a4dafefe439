# IO多路复用 echo server
import socket
import selectors

sel = selectors.EpollSelector()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 8888))
server.listen(1000)


def read(conn):
    data = conn.recv(1024)
    if data:
        print('收到:', data.decode())
        conn.send(data)
    else:
        print('客户端断开')
        conn.close()   # 关闭连接


def accept(server):
    conn, addr = server.accept()
    print('新连接', addr)
    sel.register(conn, selectors.EVENT_READ, read)


sel.register(server, selectors.EVENT_READ, accept)

while True:
    for key, mask in sel.select():
        key.data(key.fileobj)
