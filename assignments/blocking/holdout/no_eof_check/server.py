import socket

# echo server
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('0.0.0.0', 8888))
server.listen(10)

while True:
    conn, addr = server.accept()
    print('connected by', addr)
    while True:
        data = conn.recv(1024)
        conn.send(data)
