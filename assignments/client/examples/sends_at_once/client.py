# Sends right after connect(): works when the handshake is instant (as on an idle loopback),
# crashes with BlockingIOError when it is not. Waits for the reply properly.
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
client.send(message)
selector = selectors.DefaultSelector()
selector.register(client, selectors.EVENT_READ)
reply = b""
while len(reply) < len(message):
    selector.select()
    chunk = client.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.decode())
selector.unregister(client)
client.close()
