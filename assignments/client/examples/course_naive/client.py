# The course's notes on the non-blocking client, written out as they are:
# connect always raises BlockingIOError, so it is caught; then send and recv.
import socket
import sys

client = socket.socket()
client.setblocking(False)
try:
    client.connect((sys.argv[1], int(sys.argv[2])))
except BlockingIOError:
    pass
client.send(sys.argv[3].encode())
recv_data = client.recv(1024)
print(recv_data.decode())
client.close()
