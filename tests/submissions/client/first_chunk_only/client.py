# Waits properly for the connection and for the reply, but prints only what the first
# recv() returned.
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
selector.modify(client, selectors.EVENT_READ)
selector.select()
print(client.recv(65536).decode(errors="replace"))
selector.unregister(client)
client.close()
