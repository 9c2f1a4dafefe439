# echo client
import socket
import sys

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]

client = socket.socket()
client.settimeout(5)        # 不会一直阻塞
client.connect((host, port))
client.sendall(message.encode())

data = b''
while len(data) < len(message.encode()):
    chunk = client.recv(1024)
    if not chunk:
        break
    data += chunk
client.close()
print(data.decode())
