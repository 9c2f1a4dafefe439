# The course's own retry pattern (使用非阻塞套接字实现阻塞的...): try again until it works.
# It busy-waits, but it never sends before the connection is up.
import socket
import sys

message = sys.argv[3].encode()
client = socket.socket()
client.setblocking(False)
try:
    client.connect((sys.argv[1], int(sys.argv[2])))
except BlockingIOError:
    pass
while True:
    try:
        sent = client.send(message)
        break
    except OSError:
        pass
while sent < len(message):
    try:
        sent += client.send(message[sent:])
    except BlockingIOError:
        pass
reply = b""
while len(reply) < len(message):
    try:
        chunk = client.recv(1024)
    except BlockingIOError:
        continue
    if not chunk:
        break
    reply += chunk
print(reply.decode())
client.close()
