# 普通套接字服务端 that prints what it receives and never replies
import socket

server = socket.socket()
server.bind(('', 8080))
server.listen(5)
while True:
    conn, addr = server.accept()
    while True:
        recv_data = conn.recv(1024)
        if recv_data:
            print(recv_data.decode(errors='replace'))  # 只打印,不回复
        else:
            conn.close()
            break
