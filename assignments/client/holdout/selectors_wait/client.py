# 非阻塞客户端:用 selectors 等待连接建立,再发送,再把回复读完整
import selectors
import socket
import sys

host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = message.encode()

sel = selectors.DefaultSelector()
client = socket.socket()
client.setblocking(False)
try:
    client.connect((host, port))
except BlockingIOError:
    pass   # 非阻塞的 connect 一定会引发 BlockingIOError

# 等到套接字可写 = 连接建立(或失败)
sel.register(client, selectors.EVENT_WRITE)
if not sel.select(timeout=10):
    sys.exit('connect timed out')
err = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
if err:
    sys.exit('connect failed: ' + str(err))

while data:
    sel.select(timeout=10)
    try:
        n = client.send(data)
        data = data[n:]
    except BlockingIOError:
        pass

# 读回复,直到收到的字节数和发出去的一样多
expected = len(message.encode())
reply = b''
sel.modify(client, selectors.EVENT_READ)
while len(reply) < expected:
    if not sel.select(timeout=10):
        break
    try:
        chunk = client.recv(4096)
    except BlockingIOError:
        continue
    if not chunk:
        break
    reply += chunk

sel.unregister(client)
client.close()
print(reply.decode())
