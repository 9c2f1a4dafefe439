# 普通套接字回显服务端:一次服务一个客户端
import os
import socket
import sys

if len(sys.argv) > 1:
    port = int(sys.argv[1])
else:
    port = int(os.environ.get('PORT', 8080))

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', port))
server.listen(5)
print('listening on', port)

while True:
    conn, addr = server.accept()        # 阻塞,等客户端
    print('client', addr)
    while True:
        data = conn.recv(4096)          # 阻塞,等数据
        if not data:
            break
        conn.sendall(data)
    conn.close()
    print('client left', addr)
