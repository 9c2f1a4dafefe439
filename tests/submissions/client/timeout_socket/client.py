# A timeout socket instead of a non-blocking one: connect() and recv() wait.
import socket
import sys

message = sys.argv[3].encode()
client = socket.socket()
client.settimeout(5)
client.connect((sys.argv[1], int(sys.argv[2])))
client.sendall(message)
reply = b""
while len(reply) < len(message):
    chunk = client.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.decode())
client.close()
