# select并发服务器,超时1秒,这样Ctrl+C可以退出
import select
import socket

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', 7788))
server.listen(100)
clients = []

try:
    while True:
        readable, _, _ = select.select([server] + clients, [], [], 1.0)
        if not readable:
            continue  # 1秒内没有事件,再来一次
        for s in readable:
            if s is server:
                conn, addr = server.accept()
                print('connected:', addr)
                clients.append(conn)
            else:
                data = s.recv(2048)
                if not data:
                    clients.remove(s)
                    s.close()
                    continue
                print('recv:', data.decode())
                s.sendall(data)
except KeyboardInterrupt:
    server.close()
