"""Non-blocking echo client: python client.py HOST PORT MESSAGE"""
import selectors
import socket
import sys


def main():
    host, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sel = selectors.DefaultSelector()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect((host, port))
    except BlockingIOError:
        pass
    sel.register(sock, selectors.EVENT_WRITE)
    sel.select(timeout=5)                     # writable -> connected
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
        print('connection failed')
        return 1
    sock.sendall(text.encode())
    sel.modify(sock, selectors.EVENT_READ)
    sel.select(timeout=5)                     # wait for the reply
    reply = sock.recv(65536)
    print(reply.decode())
    sel.close()
    sock.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
