# Sends right after connect() and ignores a failed send: with a slow handshake the message
# is lost and the reply never comes.
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
try:
    client.send(message)
except OSError:
    pass
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
