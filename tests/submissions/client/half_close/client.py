# A correct non-blocking client that half-closes: after its message it shuts down its
# sending side (the server reads end-of-stream) and then reads the reply until it is whole.
import selectors
import socket
import sys

message = sys.argv[3].encode()
client = socket.socket()
client.setblocking(False)
try:
    client.connect((sys.argv[1], int(sys.argv[2])))
except BlockingIOError:
    pass
selector = selectors.DefaultSelector()
selector.register(client, selectors.EVENT_WRITE)
selector.select()
if client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
    sys.exit("could not connect")
view = memoryview(message)
while view:
    try:
        view = view[client.send(view):]
    except BlockingIOError:
        selector.select()
client.shutdown(socket.SHUT_WR)
selector.modify(client, selectors.EVENT_READ)
reply = b""
while len(reply) < len(message):
    selector.select()
    try:
        chunk = client.recv(65536)
    except BlockingIOError:
        continue
    if not chunk:
        break
    reply += chunk
print(reply.decode())
client.close()
