import socket
import sys
import time

HOST, PORT, MSG = sys.argv[1], int(sys.argv[2]), sys.argv[3]

client = socket.socket()
client.setblocking(False)
try:
    client.connect((HOST, PORT))
except BlockingIOError:
    pass

client.send(MSG.encode())

reply = b''
start = time.time()
while len(reply) < len(MSG.encode()) and time.time() - start < 10:
    try:
        data = client.recv(1024)
    except BlockingIOError:
        continue
    if not data:
        break
    reply += data
print(reply.decode())
client.close()
