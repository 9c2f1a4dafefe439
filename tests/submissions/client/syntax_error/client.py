import socket
import sys

client = socket.socket()
client.setblocking(False)
try:
    client.connect((sys.argv[1], int(sys.argv[2]))
except BlockingIOError:
    pass
