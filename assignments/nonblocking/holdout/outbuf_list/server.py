# Single-threaded concurrent echo server with non-blocking sockets.
# Unsent bytes are kept per connection and retried on the next pass of the loop.
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 7788

server = socket.socket()
server.setblocking(False)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', port))
server.listen(1000)

clients = {}   # conn -> bytearray of data still to send back
eof = set()    # clients that have finished sending


def drop(conn):
    conn.close()
    clients.pop(conn, None)
    eof.discard(conn)


while True:
    try:
        conn, addr = server.accept()
        conn.setblocking(False)
        clients[conn] = bytearray()
    except BlockingIOError:
        pass

    for conn in list(clients):          # iterate over a copy: drop() changes the dict
        pending = clients[conn]
        try:
            if conn not in eof and len(pending) < 512 * 1024:
                data = conn.recv(4096)
                if data:
                    pending += data
                else:
                    eof.add(conn)
        except BlockingIOError:
            pass
        except OSError:
            drop(conn)
            continue
        try:
            if pending:
                n = conn.send(pending)
                del pending[:n]
        except BlockingIOError:
            pass
        except OSError:
            drop(conn)
            continue
        if conn in eof and not pending:
            drop(conn)
