# Non-blocking, but connect()'s BlockingIOError is not caught.
import selectors
import socket
import sys

message = sys.argv[3].encode()
client = socket.socket()
client.setblocking(False)
client.connect((sys.argv[1], int(sys.argv[2])))
selector = selectors.DefaultSelector()
selector.register(client, selectors.EVENT_WRITE)
selector.select()
client.sendall(message)
selector.modify(client, selectors.EVENT_READ)
reply = b""
while len(reply) < len(message):
    selector.select()
    reply += client.recv(4096)
print(reply.decode())
