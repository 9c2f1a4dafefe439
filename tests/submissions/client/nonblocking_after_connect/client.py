# Connects with an ordinary (blocking) socket, and only then makes it non-blocking.
import socket
import sys

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = socket.socket()
client.connect((host, port))
client.setblocking(False)
data = message.encode()
while data:
    try:
        data = data[client.send(data):]
    except BlockingIOError:
        pass
reply = b""
while len(reply) < len(message.encode()):
    try:
        chunk = client.recv(1024)
    except BlockingIOError:
        continue
    if not chunk:
        break
    reply += chunk
print(reply.decode())
