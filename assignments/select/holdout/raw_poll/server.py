# Echo server on raw select.poll (epoll needs Linux, poll also works on my Mac).
# Each connection has an output buffer; POLLOUT is only enabled while it is non-empty.
import os
import select
import socket

PORT = int(os.environ.get("PORT", 8080))

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", PORT))
listener.listen(128)
listener.setblocking(False)

poller = select.poll()
poller.register(listener.fileno(), select.POLLIN)

conns = {}     # fd -> socket
outbuf = {}    # fd -> bytearray
eof = set()    # fds whose peer has shut down its writing side
MAX_BUF = 256 * 1024


def drop(fd):
    poller.unregister(fd)
    conns.pop(fd).close()
    outbuf.pop(fd, None)
    eof.discard(fd)


def update(fd):
    mask = 0
    if fd not in eof and len(outbuf[fd]) < MAX_BUF:
        mask |= select.POLLIN
    if outbuf[fd]:
        mask |= select.POLLOUT
    if mask == 0:          # nothing left to read or write
        drop(fd)
    else:
        poller.modify(fd, mask)


while True:
    for fd, ev in poller.poll():
        if fd == listener.fileno():
            try:
                c, _ = listener.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            conns[c.fileno()] = c
            outbuf[c.fileno()] = bytearray()
            poller.register(c.fileno(), select.POLLIN)
            continue
        if fd not in conns:
            continue
        c = conns[fd]
        try:
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and fd not in eof:
                data = c.recv(65536)
                if data:
                    outbuf[fd] += data
                else:
                    eof.add(fd)
            if outbuf[fd]:
                n = c.send(outbuf[fd])
                del outbuf[fd][:n]
        except BlockingIOError:
            pass
        except OSError:          # reset by peer, broken pipe ...
            drop(fd)
            continue
        update(fd)
