# An ordinary (blocking) client that reads once: one recv() returns only what has arrived so
# far, which is the whole reply only when the server sent it in one piece.
import socket
import sys

message = sys.argv[3]
client = socket.socket()
client.connect((sys.argv[1], int(sys.argv[2])))
client.sendall(message.encode())
reply = client.recv(65536)
print(reply.decode(errors="replace"))
client.close()
