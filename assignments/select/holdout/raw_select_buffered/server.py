"""Echo server on select.select: non-blocking sockets, one output buffer per connection,
a connection is in the write list only while its buffer has something in it."""
import os
import select
import socket

PORT = int(os.environ.get("PORT", "9000"))
LIMIT = 512 * 1024   # stop reading from a client that does not read its echoes

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("", PORT))
listener.listen(128)
listener.setblocking(False)

buffers = {}     # socket -> bytearray waiting to be sent
finished = set()  # sockets whose client sent EOF


def drop(s):
    buffers.pop(s, None)
    finished.discard(s)
    s.close()


while True:
    readers = [listener] + [s for s in buffers if s not in finished and len(buffers[s]) < LIMIT]
    writers = [s for s in buffers if buffers[s]]
    r, w, _ = select.select(readers, writers, [])
    for s in r:
        if s is listener:
            try:
                c, _ = listener.accept()
            except OSError:
                continue
            c.setblocking(False)
            buffers[c] = bytearray()
            continue
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            drop(s)
            continue
        if data:
            buffers[s] += data
        else:
            finished.add(s)
    for s in w:
        if s not in buffers:
            continue
        try:
            n = s.send(buffers[s])
        except BlockingIOError:
            continue
        except OSError:
            drop(s)
            continue
        del buffers[s][:n]
    for s in [s for s in finished if not buffers.get(s)]:
        drop(s)
