import socket

# 非阻塞并发服务器
server = socket.socket()
server.setblocking(False)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 8080))
server.listen(100)

conns = []

while True:
    try:
        conn, addr = server.accept()
        print('connected:', addr)
        conn.setblocking(False)
        conns.append(conn)
    except BlockingIOError:
        pass

    for conn in conns:
        try:
            data = conn.recv(1024)
            if data:
                print(data.decode())
                conn.send(data)
        except BlockingIOError:
            pass   # 没有数据,看下一个
