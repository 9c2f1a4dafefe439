# Connects and sends properly, then prints its own message instead of reading the reply.
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
client.sendall(message)
print(sys.argv[3])
selector.unregister(client)
client.close()
