"""Reference solution of the blocking-nb assignment (使用非阻塞套接字实现阻塞的服务端).

The blocking server again, built from non-blocking sockets: every accept(), recv() and
send() that cannot complete raises BlockingIOError, and the server simply tries again. It
still serves one client at a time, and it burns a CPU core doing so: the motivation for the
next steps of the course.

Usage: python blocking_nb_server.py [PORT]      (default: $PORT, else 8080)
"""

import os
import socket
import sys


def accept(server):
    while True:
        try:
            return server.accept()
        except BlockingIOError:
            pass


def recv(conn):
    while True:
        try:
            return conn.recv(65536)
        except BlockingIOError:
            pass


def send_all(conn, data):
    view = memoryview(data)
    while view:
        try:
            view = view[conn.send(view):]
        except BlockingIOError:
            pass


def serve(conn):
    with conn:
        while True:
            try:
                data = recv(conn)
                if not data:
                    return
                send_all(conn, data)
            except (ConnectionResetError, BrokenPipeError):
                return


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "8080"))
    server = socket.socket()
    server.setblocking(False)        # before anything else, as the course says
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", port))
    server.listen(5)
    while True:
        conn, _ = accept(server)
        conn.setblocking(False)      # accepted sockets do not inherit it
        serve(conn)


if __name__ == "__main__":
    main()
