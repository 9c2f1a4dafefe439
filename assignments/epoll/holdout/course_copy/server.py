# 使用EpollSelector,实现一个并发的服务器(照着课件写的)
import socket
import selectors

epoll_selector = selectors.EpollSelector()

server = socket.socket()
server.bind(('', 8888))
server.listen(1000)


def read(conn):
    recv_data = conn.recv(1024)
    if recv_data:
        print(recv_data.decode())
        conn.send(recv_data)
    else:
        epoll_selector.unregister(conn)  # 先取消监控
        conn.close()                     # 再关闭连接


def accept(server):
    conn, addr = server.accept()
    epoll_selector.register(conn, selectors.EVENT_READ, read)


epoll_selector.register(server, selectors.EVENT_READ, accept)

while True:
    events = epoll_selector.select()
    for key, mask in events:
        callback = key.data
        sock = key.fileobj
        callback(sock)
