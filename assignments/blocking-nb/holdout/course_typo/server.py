import socket

server = socket.socket()
server.setblocking(False)  # 注意!这必须要在其他操作之前!
server.bind(('', 8080))
server.listen(5)

while True:
    # 原来的accept
    while True:
        try:
            conn, addr = server.accept()
            break
        except:BlockingIOError: pass
    conn.setblocking(False)

    while True:
        # 原来的recv
        while True:
            try:
                recv_data = conn.recv(1024)
                break
            except BlockingIOError:
                pass
        if recv_data:
            conn.send(recv_data)
        else:
            conn.close()
            break
