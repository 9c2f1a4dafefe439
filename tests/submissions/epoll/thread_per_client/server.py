"""A thread per client: a blocking accept loop, each connection served by its own thread
with blocking sockets. Concurrent, but neither an event loop nor non-blocking."""

import os
import socket
import sys
import threading


def serve(conn):
    with conn:
        while True:
            try:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                return


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "8888"))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", port))
    server.listen(1000)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()   # 每个客户端一个线程


if __name__ == "__main__":
    main()
