# 普通套接字服务端 that closes each connection after its first reply
import socket

server = socket.socket()
server.bind(('', 8080))
server.listen(5)
while True:
    conn, addr = server.accept()
    recv_data = conn.recv(1024)
    if recv_data:
        conn.send(recv_data)
    conn.close()  # 回复一次就关闭连接
