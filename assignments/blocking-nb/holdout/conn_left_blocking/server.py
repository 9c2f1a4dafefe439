import os
import socket

PORT = int(os.environ.get('PORT', 7788))

server = socket.socket()
server.setblocking(False)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', PORT))
server.listen(5)

while True:
    while True:
        try:
            conn, addr = server.accept()
            break
        except BlockingIOError:
            pass
    print('new client', addr)

    while True:
        try:
            data = conn.recv(1024)
        except BlockingIOError:
            continue
        if not data:
            break
        while data:
            try:
                sent = conn.send(data)
                data = data[sent:]
            except BlockingIOError:
                pass
    conn.close()
