import socket

server = socket.socket()
server.bind(('', 8080))
server.listen(5)

while True:
    conn, addr = server.accept()
    recv_data = conn.recv(1024)
    print(addr, recv_data)
    conn.send(recv_data)
    conn.close()
