# 普通套接字服务端: serves one client at a time
import socket

server = socket.socket()
server.bind(('', 8080))
server.listen(5)
while True:
    conn, addr = server.accept()
    while True:
        recv_data = conn.recv(1024)
        if recv_data:
            conn.send(recv_data)
        else:
            conn.close()
            break
