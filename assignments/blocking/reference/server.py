"""Reference solution of the blocking assignment (普通套接字服务端): a blocking echo server.

It serves one client at a time: accept() and recv() block, so a second client waits until
the first leaves. That is the lesson of this step, not a fault.

Usage: python blocking_server.py [PORT]      (default: $PORT, else 8080)
"""

import os
import socket
import sys


def serve(conn):
    """Echo everything until the client leaves (or resets the connection)."""
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
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "8080"))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", port))
    server.listen(5)
    while True:
        conn, _ = server.accept()
        serve(conn)


if __name__ == "__main__":
    main()
