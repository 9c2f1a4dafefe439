import socket
import sys
import time

host = sys.argv[1]
port = int(sys.argv[2])
msg = sys.argv[3].encode()

client = socket.socket()
client.setblocking(False)
try:
    client.connect((host, port))
except BlockingIOError:
    pass

# 连接没有建立的时候 send 会引发 OSError,那就一直重试,直到发出去为止
deadline = time.time() + 8
sent = 0
while sent < len(msg):
    try:
        sent += client.send(msg[sent:])
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.001)

# 接收也一样:没有数据就 BlockingIOError,继续等
buf = b''
while len(buf) < len(msg):
    try:
        data = client.recv(1024)
    except BlockingIOError:
        if time.time() > deadline:
            break
        time.sleep(0.001)
        continue
    if not data:
        break
    buf += data

client.close()
print(buf.decode())
