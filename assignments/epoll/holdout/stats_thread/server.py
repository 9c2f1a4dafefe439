# epoll echo server + a monitor thread that prints how many clients are connected
import socket
import selectors
import threading
import time

sel = selectors.EpollSelector()
clients = set()


def monitor():
    while True:
        time.sleep(5)
        print(f'[monitor] {len(clients)} clients online', flush=True)


def read(conn):
    data = conn.recv(1024)
    if data:
        conn.send(data)
    else:
        sel.unregister(conn)
        clients.discard(conn)
        conn.close()


def accept(server):
    conn, addr = server.accept()
    clients.add(conn)
    sel.register(conn, selectors.EVENT_READ, read)


def main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('', 9000))
    server.listen(1000)
    sel.register(server, selectors.EVENT_READ, accept)
    threading.Thread(target=monitor, daemon=True).start()
    while True:
        for key, mask in sel.select():
            key.data(key.fileobj)


if __name__ == '__main__':
    main()
