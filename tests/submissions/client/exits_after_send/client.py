# Non-blocking and waits for the connection before sending, then exits at once: it never
# reads (or prints) the reply.
import selectors
import socket
import sys

client = socket.socket()
client.setblocking(False)
try:
    client.connect((sys.argv[1], int(sys.argv[2])))
except BlockingIOError:
    pass
selector = selectors.DefaultSelector()
selector.register(client, selectors.EVENT_WRITE)
selector.select()
client.sendall(sys.argv[3].encode())
