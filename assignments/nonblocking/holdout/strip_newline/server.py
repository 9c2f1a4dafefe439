import os
import socket

PORT = int(os.environ.get('PORT', 9000))

server = socket.socket()
server.setblocking(False)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', PORT))
server.listen(1000)

all_conn = []

while True:
    try:
        conn, addr = server.accept()
        conn.setblocking(False)
        all_conn.append(conn)
    except BlockingIOError:
        pass

    for conn in all_conn[:]:
        try:
            recv_data = conn.recv(1024)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            recv_data = b''
        if recv_data:
            msg = recv_data.decode().strip()   # 去掉末尾的换行
            print('收到:', msg)
            conn.send(msg.encode())
        else:
            conn.close()
            all_conn.remove(conn)
