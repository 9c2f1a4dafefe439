# 使用非阻塞套接字实现阻塞的服务端
import socket

server = socket.socket()
server.setblocking(False)   # 必须在其他操作之前
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 8080))
server.listen(5)

while True:
    # 原来的accept
    while True:
        try:
            conn, addr = server.accept()
            break
        except BlockingIOError:
            pass
    conn.setblocking(False)

    while True:
        # 原来的recv
        while True:
            try:
                recv_data = conn.recv(1024)
                break
            except BlockingIOError:
                pass
        if not recv_data:
            conn.close()
            break
        # send 可能只发出一部分,剩下的继续发
        while recv_data:
            try:
                n = conn.send(recv_data)
                recv_data = recv_data[n:]
            except BlockingIOError:
                pass
